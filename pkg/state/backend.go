package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Kind names the shape of a state; it is recorded in checkpoint manifests.
type Kind string

// The kinds of keyed state.
const (
	KindValue       Kind = "value"       // one value per key
	KindMap         Kind = "map"         // a map per key; stored as one entry per map key
	KindList        Kind = "list"        // a list per key, stored as one entry
	KindReducing    Kind = "reducing"    // one value per key, folded by a reduce function
	KindAggregating Kind = "aggregating" // one accumulator per key
)

// Errors returned by the Backend.
var (
	// ErrKeyGroupOutOfRange means a key hashes to a key group this backend
	// does not own: the record was routed to the wrong subtask.
	ErrKeyGroupOutOfRange = errors.New("state: key group not owned by this backend")
	// ErrStateConflict means a state name is registered twice with different
	// kinds, codecs or TTLs, or a restored state does not match its registration.
	ErrStateConflict = errors.New("state: conflicting state registration")
	// ErrSnapshotInFlight means Restore was called while a snapshot still
	// holds the backend's layers.
	ErrSnapshotInFlight = errors.New("state: a snapshot is still in flight")
)

// Options configure a Backend. The zero value is usable: 128 key groups, all
// of them owned, wall-clock time.
type Options struct {
	// KeyGroups is the job's key-group count (default DefaultKeyGroups).
	KeyGroups uint32
	// Range is the key groups this backend owns (default: all of them).
	Range *KeyGroupRange
	// Now returns the current time in Unix nanoseconds; TTLs are measured
	// against it. Tests inject a fake clock here.
	Now func() int64
	// MaintenanceRatio is how many table entries background maintenance may
	// visit per write (default 4). Higher merges frozen layers sooner at the
	// price of longer pauses between writes.
	MaintenanceRatio int
}

// A table holds one state's entries of one key group in one layer: key ->
// stored value. A nil stored value is a tombstone, which hides the key in
// older layers; a live value is never nil. States with a TTL prefix the value
// with its expiry (8 bytes, little-endian Unix nanoseconds), so entries of
// states without one cost no more than a plain map[string][]byte, which keeps
// the working set, and so lookups, as small as possible.
type table = map[string][]byte

// subTables are the tables of a map state: user key -> (map key -> value).
type subTables = map[string]table

// groupTables are one state's tables in one layer, indexed by key group
// minus the range start. Only the field for the state's kind is used; a
// table slot is nil until its first write.
type groupTables struct {
	vals []table
	subs []subTables
}

// layer is a set of tables, one groupTables per state.
type layer struct {
	states []groupTables
	pins   atomic.Int32 // snapshots still reading this layer
}

// live is the stored form of an empty value without TTL: not nil, so it is
// not taken for a tombstone. Nothing ever appends to it in place (cap 0).
var live = make([]byte, 0)

const expiryLen = 8

// expiryOf returns the expiry of a stored value of a TTL state.
func expiryOf(v []byte) int64 { return int64(binary.LittleEndian.Uint64(v)) }

// stateInfo is a registered (or restored) state.
type stateInfo struct {
	name  string
	kind  Kind
	codec string
	ttl   time.Duration
}

// Backend is the layered in-memory keyed state of one operator for one range
// of key groups. See the package documentation for its concurrency rules.
type Backend struct {
	n      uint32
	rng    KeyGroupRange
	groups int
	now    func() int64
	ratio  int

	states []stateInfo
	byName map[string]int

	active *layer
	frozen []*layer // oldest first: deltas not yet folded into base
	base   *layer

	// chainBroken is set when a snapshot is released as not persisted: the
	// next incremental snapshot must then be a full one.
	chainBroken atomic.Bool
	// hasBase is true once a snapshot was taken or state restored, so an
	// incremental snapshot has something to be relative to.
	hasBase bool
	seq     uint64

	credit    int // maintenance budget earned by writes
	mergeSt   int // merge cursor into frozen[0]
	mergeGi   int
	sweepSt   int // TTL sweep cursor into base
	sweepGi   int
	ttlStates int

	stats Stats
}

// Stats are the backend's counters, for metrics and tests.
type Stats struct {
	States         int    // registered states
	FrozenLayers   int    // frozen layers not yet folded into the base
	Snapshots      uint64 // snapshots taken
	FullSnapshots  uint64 // of which full (including downgraded incrementals)
	TablesMerged   uint64 // frozen tables folded into the base
	TablesSwept    uint64 // base tables swept for expired entries
	ExpiredDropped uint64 // expired entries removed by sweeps
}

// NewBackend returns an empty backend.
func NewBackend(opts Options) (*Backend, error) {
	n := opts.KeyGroups
	if n == 0 {
		n = DefaultKeyGroups
	}
	if n > MaxKeyGroups {
		return nil, fmt.Errorf("state: %d key groups exceeds the limit of %d", n, MaxKeyGroups)
	}
	rng := KeyGroupRange{Start: 0, End: n - 1}
	if opts.Range != nil {
		rng = *opts.Range
		if rng.Start > rng.End || rng.End >= n {
			return nil, fmt.Errorf("state: key-group range %v is outside [0,%d]", rng, n-1)
		}
	}
	now := opts.Now
	if now == nil {
		now = func() int64 { return time.Now().UnixNano() }
	}
	ratio := opts.MaintenanceRatio
	if ratio <= 0 {
		ratio = 4
	}
	b := &Backend{n: n, rng: rng, groups: rng.Len(), now: now, ratio: ratio, byName: map[string]int{}}
	b.active, b.base = &layer{}, &layer{}
	return b, nil
}

// KeyGroups returns the job's key-group count.
func (b *Backend) KeyGroups() uint32 { return b.n }

// Range returns the key groups this backend owns.
func (b *Backend) Range() KeyGroupRange { return b.rng }

// Stats returns the backend's counters.
func (b *Backend) Stats() Stats {
	s := b.stats
	s.States = len(b.states)
	s.FrozenLayers = len(b.frozen)
	return s
}

// register returns the index of the named state, creating it if needed.
func (b *Backend) register(name string, kind Kind, codec string, ttl time.Duration) (int, error) {
	if name == "" {
		return 0, fmt.Errorf("state: empty state name")
	}
	if ttl < 0 {
		return 0, fmt.Errorf("state %q: negative TTL %v", name, ttl)
	}
	if i, ok := b.byName[name]; ok {
		s := b.states[i]
		if s.kind != kind || s.codec != codec || s.ttl != ttl {
			return 0, fmt.Errorf("%w: %q is %s/%s/ttl=%v, not %s/%s/ttl=%v", ErrStateConflict, name, s.kind, s.codec, s.ttl, kind, codec, ttl)
		}
		return i, nil
	}
	i := len(b.states)
	b.states = append(b.states, stateInfo{name: name, kind: kind, codec: codec, ttl: ttl})
	b.byName[name] = i
	if ttl > 0 {
		b.ttlStates++
	}
	for _, l := range b.layers() {
		l.states = append(l.states, b.newGroupTables(kind))
	}
	return i, nil
}

func (b *Backend) newGroupTables(kind Kind) groupTables {
	if kind == KindMap {
		return groupTables{subs: make([]subTables, b.groups)}
	}
	return groupTables{vals: make([]table, b.groups)}
}

// layers lists every layer the backend owns, oldest first.
func (b *Backend) layers() []*layer {
	ls := make([]*layer, 0, len(b.frozen)+2)
	ls = append(ls, b.base)
	ls = append(ls, b.frozen...)
	return append(ls, b.active)
}

func (b *Backend) newLayer() *layer {
	l := &layer{states: make([]groupTables, len(b.states))}
	for i, s := range b.states {
		l.states[i] = b.newGroupTables(s.kind)
	}
	return l
}

// slot returns the table index of key: its key group relative to the range.
func (b *Backend) slot(key string) (int, error) {
	kg := KeyGroupFor(key, b.n)
	if !b.rng.Contains(kg) {
		return 0, fmt.Errorf("%w: key %q is in key group %d, backend owns %v", ErrKeyGroupOutOfRange, key, kg, b.rng)
	}
	return int(kg - b.rng.Start), nil
}

// lookup finds key's newest stored value across layers: nil when absent or
// deleted. The value may be expired; callers decide.
func (b *Backend) lookup(st, gi int, key string) []byte {
	if v, ok := b.active.states[st].vals[gi][key]; ok {
		return v
	}
	for i := len(b.frozen) - 1; i >= 0; i-- {
		if v, ok := b.frozen[i].states[st].vals[gi][key]; ok {
			return v
		}
	}
	return b.base.states[st].vals[gi][key]
}

// get returns key's live payload.
func (b *Backend) get(st, gi int, key string) ([]byte, bool) {
	v := b.lookup(st, gi, key)
	if v == nil {
		return nil, false
	}
	if b.states[st].ttl > 0 {
		if expiryOf(v) <= b.now() {
			return nil, false
		}
		return v[expiryLen:], true
	}
	return v, true
}

// inLower reports whether key has an entry below the active layer, i.e.
// whether deleting it needs a tombstone.
func (b *Backend) inLower(st, gi int, key string) bool {
	for _, f := range b.frozen {
		if _, ok := f.states[st].vals[gi][key]; ok {
			return true
		}
	}
	_, ok := b.base.states[st].vals[gi][key]
	return ok
}

// activeTable returns the active layer's table for (st, gi), creating it.
func (b *Backend) activeTable(st, gi int) table {
	t := b.active.states[st].vals[gi]
	if t == nil {
		t = make(table)
		b.active.states[st].vals[gi] = t
	}
	return t
}

// startValue begins a stored value in buf (reusing its memory): the expiry
// header of a TTL state, or nothing.
func (b *Backend) startValue(st int, buf []byte) []byte {
	buf = buf[:0]
	if ttl := b.states[st].ttl; ttl > 0 {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(b.now()+int64(ttl)))
	}
	return buf
}

// finishValue makes sure a live stored value is not nil.
func finishValue(v []byte) []byte {
	if v == nil {
		return live
	}
	return v
}

// remove deletes key from state st.
func (b *Backend) remove(st, gi int, key string) {
	if b.inLower(st, gi, key) {
		b.activeTable(st, gi)[key] = nil
	} else if t := b.active.states[st].vals[gi]; t != nil {
		delete(t, key)
	}
	b.wrote()
}

// maxCredit caps saved-up maintenance credit so a long stretch in which
// nothing could be done (a snapshot held the layers) does not turn into one
// long pause later.
const maxCredit = 1 << 14

// wrote earns maintenance credit and spends it when there is enough. A table
// bigger than the credit leaves a debt that later writes pay off first, so the
// work per write stays at MaintenanceRatio on average.
func (b *Backend) wrote() {
	b.credit = min(b.credit+b.ratio, maxCredit)
	if b.credit >= 256 && (len(b.frozen) > 0 || b.ttlStates > 0) {
		b.credit -= b.maintain(b.credit)
	}
}

// Maintain folds frozen layers into the base and sweeps expired entries,
// visiting about budget entries (at least one table, and each base table at
// most once per call). Writes call it with the credit they earn; an idle
// operator may call it directly. It reports whether frozen layers are still
// waiting to be folded in, for instance because a snapshot is reading them.
func (b *Backend) Maintain(budget int) (pending bool) {
	b.maintain(budget)
	return len(b.frozen) > 0
}

// maintain returns the number of entries it visited.
func (b *Backend) maintain(budget int) int {
	spent, sweeps := 0, 0
	for spent < budget {
		if len(b.frozen) == 0 {
			if sweeps >= len(b.states)*b.groups {
				break
			}
			sweeps++
		}
		n, ok := b.step()
		if !ok {
			break
		}
		spent += n + 1
	}
	return spent
}

// step does one table of maintenance work. It never touches a layer a
// snapshot is reading: merges and sweeps mutate the base and frozen[0].
func (b *Backend) step() (visited int, ok bool) {
	if b.base.pins.Load() > 0 {
		return 0, false
	}
	if len(b.frozen) > 0 {
		f := b.frozen[0]
		if f.pins.Load() > 0 {
			return 0, false
		}
		for b.mergeSt < len(f.states) {
			g := &f.states[b.mergeSt]
			for b.mergeGi < b.groups {
				gi := b.mergeGi
				b.mergeGi++
				var n int
				if g.subs != nil {
					src := g.subs[gi]
					if src == nil {
						continue
					}
					g.subs[gi] = nil
					n = b.mergeSubs(b.mergeSt, gi, src)
				} else {
					src := g.vals[gi]
					if src == nil {
						continue
					}
					g.vals[gi] = nil
					n = b.mergeVals(b.mergeSt, gi, src)
				}
				b.stats.TablesMerged++
				return n, true
			}
			b.mergeSt++
			b.mergeGi = 0
		}
		b.frozen[0] = nil
		b.frozen = b.frozen[1:]
		b.mergeSt, b.mergeGi = 0, 0
		return 0, true
	}
	if b.ttlStates == 0 {
		return 0, false
	}
	return b.sweepStep(), true
}

// mergeVals folds a released frozen table into the base. An empty base
// table adopts src once its tombstones are dropped, which saves rehashing
// every key of the first fold after a big initial load.
func (b *Backend) mergeVals(st, gi int, src table) int {
	dst := b.base.states[st].vals[gi]
	if len(dst) == 0 {
		dropTombstones(src)
		b.base.states[st].vals[gi] = src
		return len(src)
	}
	applyTable(dst, src)
	return len(src)
}

func dropTombstones(t table) {
	for k, v := range t {
		if v == nil {
			delete(t, k)
		}
	}
}

// applyTable applies src's puts and tombstones to dst.
func applyTable(dst, src table) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

func (b *Backend) mergeSubs(st, gi int, src subTables) int {
	dst := b.base.states[st].subs[gi]
	if dst == nil {
		dst = make(subTables, len(src))
		b.base.states[st].subs[gi] = dst
	}
	for uk, sub := range src {
		d := dst[uk]
		if d == nil {
			dropTombstones(sub)
			if len(sub) > 0 {
				dst[uk] = sub
			}
			continue
		}
		applyTable(d, sub)
		if len(d) == 0 {
			delete(dst, uk)
		}
	}
	return len(src)
}

// sweepStep removes expired entries and leftover tombstones from one base
// table of a state with a TTL, advancing a cursor over all of them.
func (b *Backend) sweepStep() int {
	for range len(b.states) + 1 {
		if b.sweepSt >= len(b.states) {
			b.sweepSt, b.sweepGi = 0, 0
		}
		if b.states[b.sweepSt].ttl > 0 {
			break
		}
		b.sweepSt++
		b.sweepGi = 0
	}
	st, gi := b.sweepSt, b.sweepGi
	b.sweepGi++
	if b.sweepGi >= b.groups {
		b.sweepSt++
		b.sweepGi = 0
	}
	b.stats.TablesSwept++
	now := b.now()
	g := &b.base.states[st]
	if g.subs != nil {
		visited := 0
		for uk, sub := range g.subs[gi] {
			visited += b.sweepTable(sub, now)
			if len(sub) == 0 {
				delete(g.subs[gi], uk)
			}
		}
		return visited
	}
	return b.sweepTable(g.vals[gi], now)
}

func (b *Backend) sweepTable(t table, now int64) int {
	for k, v := range t {
		if v == nil || expiryOf(v) <= now {
			delete(t, k)
			b.stats.ExpiredDropped++
		}
	}
	return len(t)
}

// stateNamesSorted returns state indices in name order, the order segments
// store states in.
func (b *Backend) stateNamesSorted() []int {
	idx := make([]int, len(b.states))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int {
		switch {
		case b.states[x].name < b.states[y].name:
			return -1
		case b.states[x].name > b.states[y].name:
			return 1
		}
		return 0
	})
	return idx
}
