package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
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

// A table holds one state's entries in one layer: key -> stored value. A nil
// stored value is a tombstone, which hides the key in older layers; a live
// value is never nil. States with a TTL prefix the value with its expiry (8
// bytes, little-endian Unix nanoseconds), so entries of states without one
// cost no more than in a plain map[string][]byte.
//
// A table covers all the backend's key groups: a lookup then needs no key
// hash and touches one map, which keeps reads close to the speed of a plain
// map. Key groups are computed when a snapshot is written.
type table = map[string][]byte

// subTables are the tables of a map state: user key -> (map key -> value).
type subTables = map[string]table

// stateTables are one state's tables in one layer; only the field for the
// state's kind is used, and it is nil until the first write.
type stateTables struct {
	vals table
	subs subTables
	// tombs counts tombstones written into this layer (an upper bound:
	// overwritten ones are not subtracted). A table without tombstones can
	// be adopted by the base as it is.
	tombs int
}

// layer is a set of tables, one per state.
type layer struct {
	states []stateTables
	pins   atomic.Int32 // snapshots still reading this layer
}

// empty reports whether the layer holds no entry and no tombstone.
func (l *layer) empty() bool {
	for _, s := range l.states {
		if len(s.vals) > 0 || len(s.subs) > 0 {
			return false
		}
	}
	return true
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
	n     uint32
	rng   KeyGroupRange
	now   func() int64
	ratio int

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
	mergeSt   int // the state of frozen[0] being merged
	sweepSt   int // the TTL state swept last
	ttlStates int

	stats Stats

	observer func(*format.Entry) // SetObserver's; nil when none
	observed format.Entry        // reused for each observed change
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
	b := &Backend{n: n, rng: rng, now: now, ratio: ratio, byName: map[string]int{}}
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
		l.states = append(l.states, stateTables{})
	}
	return i, nil
}

// layers lists every layer the backend owns, oldest first.
func (b *Backend) layers() []*layer {
	ls := make([]*layer, 0, len(b.frozen)+2)
	ls = append(ls, b.base)
	ls = append(ls, b.frozen...)
	return append(ls, b.active)
}

func (b *Backend) newLayer() *layer {
	return &layer{states: make([]stateTables, len(b.states))}
}

// check confirms key belongs to one of the backend's key groups.
func (b *Backend) check(key string) error {
	if b.rng.Start == 0 && b.rng.End == b.n-1 {
		return nil
	}
	if kg := KeyGroupFor(key, b.n); !b.rng.Contains(kg) {
		return fmt.Errorf("%w: key %q is in key group %d, backend owns %v", ErrKeyGroupOutOfRange, key, kg, b.rng)
	}
	return nil
}

// lookup finds key's newest stored value across layers: nil when absent or
// deleted. The value may be expired; callers decide.
func (b *Backend) lookup(st int, key string) []byte {
	if v, ok := b.active.states[st].vals[key]; ok {
		return v
	}
	for i := len(b.frozen) - 1; i >= 0; i-- {
		if v, ok := b.frozen[i].states[st].vals[key]; ok {
			return v
		}
	}
	return b.base.states[st].vals[key]
}

// get returns key's live payload.
func (b *Backend) get(st int, key string) ([]byte, bool) {
	v := b.lookup(st, key)
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
func (b *Backend) inLower(st int, key string) bool {
	for _, f := range b.frozen {
		if _, ok := f.states[st].vals[key]; ok {
			return true
		}
	}
	_, ok := b.base.states[st].vals[key]
	return ok
}

// activeTable returns the active layer's table for state st, creating it.
func (b *Backend) activeTable(st int) table {
	t := b.active.states[st].vals
	if t == nil {
		t = make(table)
		b.active.states[st].vals = t
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
func (b *Backend) remove(st int, key string) {
	b.observe(st, key, nil, nil)
	if b.inLower(st, key) {
		b.activeTable(st)[key] = nil
		b.active.states[st].tombs++
	} else if t := b.active.states[st].vals; t != nil {
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

// MaintainIdle is Maintain for an operator with nothing else to do: it does
// up to about budget entries of work and reports whether calling it again
// right away would do more. That is false when nothing is left, and also when
// what is left waits for a snapshot to be released, so a caller that loops
// on it while idle never spins.
func (b *Backend) MaintainIdle(budget int) (more bool) {
	return b.maintain(budget) > 0 && len(b.frozen) > 0
}

// maintain returns the number of entries it visited.
func (b *Backend) maintain(budget int) int {
	spent, sweeps := 0, 0
	for spent < budget {
		if len(b.frozen) == 0 {
			// Each TTL state is swept once per call at most.
			if sweeps >= b.ttlStates {
				break
			}
			sweeps++
		}
		n, ok := b.step(budget - spent)
		if !ok {
			break
		}
		spent += n + 1
	}
	return spent
}

// step does a bounded piece of maintenance work. It never touches a layer
// a snapshot is reading: merges and sweeps mutate the base and frozen[0].
func (b *Backend) step(budget int) (visited int, ok bool) {
	if b.base.pins.Load() > 0 {
		return 0, false
	}
	if len(b.frozen) > 0 {
		f := b.frozen[0]
		if f.pins.Load() > 0 {
			return 0, false
		}
		for b.mergeSt < len(f.states) {
			st := b.mergeSt
			if n := b.mergeState(st, &f.states[st], budget); n > 0 {
				b.stats.TablesMerged++
				return n, true
			}
			b.mergeSt++
		}
		b.frozen[0] = nil
		b.frozen = b.frozen[1:]
		b.mergeSt = 0
		return 0, true
	}
	if b.ttlStates == 0 {
		return 0, false
	}
	return b.sweepStep(budget), true
}

// mergeState moves up to budget entries of a released frozen state table
// into the base, deleting them from src (which no snapshot reads any more)
// so the next step resumes with what is left. A base table that is empty
// adopts a tombstone-free src whole, which saves rehashing every key of the
// first fold after a big initial load. It returns the entries visited, 0
// when src is done.
func (b *Backend) mergeState(st int, src *stateTables, budget int) int {
	dst := &b.base.states[st]
	if src.subs != nil {
		if len(dst.subs) == 0 && src.tombs == 0 {
			dst.subs, src.subs = src.subs, nil
			return 1
		}
		if dst.subs == nil {
			dst.subs = make(subTables, len(src.subs))
		}
		n := 0
		for uk, sub := range src.subs {
			d := dst.subs[uk]
			if d == nil {
				d = make(table, len(sub))
				dst.subs[uk] = d
			}
			n += applyTable(d, sub)
			if len(d) == 0 {
				delete(dst.subs, uk)
			}
			delete(src.subs, uk)
			if n >= budget {
				return n
			}
		}
		src.subs = nil
		return n
	}
	if src.vals == nil {
		return 0
	}
	if len(dst.vals) == 0 && src.tombs == 0 {
		dst.vals, src.vals = src.vals, nil
		return 1
	}
	if dst.vals == nil {
		dst.vals = make(table, len(src.vals))
	}
	n := 0
	for k, v := range src.vals {
		if v == nil {
			delete(dst.vals, k)
		} else {
			dst.vals[k] = v
		}
		delete(src.vals, k)
		if n++; n >= budget {
			return n
		}
	}
	src.vals = nil
	return max(n, 1)
}

// applyTable applies src's puts and tombstones to dst and returns how many
// entries it visited.
func applyTable(dst, src table) int {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
	return len(src)
}

// sweepStep removes up to about budget expired entries and leftover
// tombstones from the base tables of states with a TTL, moving on to the
// next such state each call. Map iteration starts at a random place, so
// repeated sweeps reach every entry without keeping a cursor into the map.
func (b *Backend) sweepStep(budget int) int {
	for range len(b.states) + 1 {
		b.sweepSt = (b.sweepSt + 1) % len(b.states)
		if b.states[b.sweepSt].ttl > 0 {
			break
		}
	}
	b.stats.TablesSwept++
	now := b.now()
	g := &b.base.states[b.sweepSt]
	if g.subs != nil {
		visited := 0
		for uk, sub := range g.subs {
			visited += b.sweepTable(sub, now, budget-visited)
			if len(sub) == 0 {
				delete(g.subs, uk)
			}
			if visited >= budget {
				break
			}
		}
		return visited
	}
	return b.sweepTable(g.vals, now, budget)
}

func (b *Backend) sweepTable(t table, now int64, budget int) int {
	n := 0
	for k, v := range t {
		if v == nil || expiryOf(v) <= now {
			delete(t, k)
			b.stats.ExpiredDropped++
		}
		if n++; n >= budget {
			break
		}
	}
	return n
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
