package state

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
)

// SnapshotKind says whether a snapshot holds every live entry or only the
// changes since the previous snapshot.
type SnapshotKind int

const (
	// Full snapshots write every live entry: a base segment.
	Full SnapshotKind = iota
	// Incremental snapshots write the puts and tombstones since the previous
	// snapshot: a delta segment to apply on top of the previous ones.
	Incremental
)

func (k SnapshotKind) String() string {
	if k == Incremental {
		return "incremental"
	}
	return "full"
}

// Snapshot is a frozen view of a backend's state, taken in O(1) by
// Backend.Snapshot. Write it with WriteTo from any goroutine while processing
// goes on, then Release it. Until it is released the backend keeps the
// layers it reads unchanged.
type Snapshot struct {
	kind       SnapshotKind
	seq        uint64
	at         int64 // entries expired at this time are left out
	rangeStart uint32
	states     []snapState // in name order
	// views are the layers the snapshot reads, oldest first: for a full
	// snapshot the base and every frozen layer, for an incremental one only
	// the layer frozen by this snapshot.
	views    [][]stateTables
	n        uint32 // the job's key-group count
	pins     []*atomic.Int32
	broken   *atomic.Bool
	released atomic.Bool
}

type snapState struct {
	index int
	info  stateInfo
}

// Snapshot freezes the active layer and returns a view of the state as of
// now. It does not copy or sort anything: its cost does not depend on the
// size of the state. An Incremental request is served as Full when there is
// no earlier snapshot to be relative to, or when an earlier one was released
// as not persisted.
func (b *Backend) Snapshot(kind SnapshotKind) *Snapshot {
	if kind == Incremental && (!b.hasBase || b.chainBroken.Load()) {
		kind = Full
	}
	if kind == Full {
		b.chainBroken.Store(false)
		b.stats.FullSnapshots++
	}
	b.stats.Snapshots++
	b.seq++
	f := b.active
	if f.empty() {
		// Nothing changed since the last snapshot: freezing an empty layer
		// would only lengthen the list every read walks while the operator
		// is idle.
		f = b.newLayer()
	} else {
		b.active = b.newLayer()
		b.frozen = append(b.frozen, f)
	}
	b.hasBase = true

	s := &Snapshot{kind: kind, seq: b.seq, at: b.now(), rangeStart: b.rng.Start, n: b.n, broken: &b.chainBroken}
	for _, i := range b.stateNamesSorted() {
		s.states = append(s.states, snapState{index: i, info: b.states[i]})
	}
	pin := func(l *layer) {
		l.pins.Add(1)
		s.pins = append(s.pins, &l.pins)
		// The slice header is copied now, on the owner goroutine; later
		// registrations append to l.states without touching this copy.
		s.views = append(s.views, l.states)
	}
	if kind == Full {
		pin(b.base)
		for _, l := range b.frozen {
			pin(l)
		}
	} else {
		pin(f)
	}
	return s
}

// Kind returns the kind the snapshot was taken as.
func (s *Snapshot) Kind() SnapshotKind { return s.kind }

// Seq numbers the backend's snapshots from 1.
func (s *Snapshot) Seq() uint64 { return s.seq }

// Descriptors describes the snapshot's states for a checkpoint manifest.
func (s *Snapshot) Descriptors() []format.StateDescriptor {
	ds := make([]format.StateDescriptor, len(s.states))
	for i, st := range s.states {
		ds[i] = format.StateDescriptor{Name: st.info.name, Kind: string(st.info.kind), Codec: st.info.codec, TTLMillis: st.info.ttl.Milliseconds()}
	}
	return ds
}

// Release unpins the snapshot's layers. persisted reports whether the
// snapshot became part of a completed checkpoint; if not, the next
// incremental snapshot is taken as a full one, since the changes this one
// held were never stored. Release is safe from any goroutine; calls after the
// first do nothing.
func (s *Snapshot) Release(persisted bool) {
	if s.released.Swap(true) {
		return
	}
	if !persisted {
		s.broken.Store(true)
	}
	for _, p := range s.pins {
		p.Add(-1)
	}
}

// WriteTo writes the snapshot's entries to w in segment order. It does not
// close w. Safe to call from any goroutine before Release.
func (s *Snapshot) WriteTo(w *format.SegmentWriter) error {
	if s.released.Load() {
		return fmt.Errorf("state: snapshot %d written after Release", s.seq)
	}
	sw := snapWriter{w: w, at: s.at, full: s.kind == Full, n: s.n}
	keys := bucketScratch.Get().(*[]groupedKey)
	sw.keys = (*keys)[:0]
	defer func() {
		clear(sw.keys[:cap(sw.keys)]) // drop references to keys and values
		*keys = sw.keys[:0]
		bucketScratch.Put(keys)
	}()
	var tabs []table
	var subs []subTables
	for _, st := range s.states {
		sw.state, sw.ttl = st.info.name, st.info.ttl > 0
		tabs, subs = tabs[:0], subs[:0]
		for _, v := range s.views {
			if st.index >= len(v) {
				continue // registered after this layer was pinned
			}
			if g := v[st.index]; g.subs != nil {
				subs = append(subs, g.subs)
			} else if g.vals != nil {
				tabs = append(tabs, g.vals)
			}
		}
		var err error
		switch {
		case len(subs) > 0:
			err = sw.mapState(subs)
		case len(tabs) > 0:
			err = sw.valueState(tabs)
		}
		if err != nil {
			return fmt.Errorf("state: write snapshot %d, state %q: %w", s.seq, sw.state, err)
		}
	}
	return nil
}

// snapWriter merges a state's tables and feeds the segment writer, reusing
// its buffers across states.
type snapWriter struct {
	w      *format.SegmentWriter
	at     int64
	full   bool
	n      uint32
	state  string
	ttl    bool
	keys   []groupedKey
	sorter keySorter
	comps  []compEntry
	e      format.Entry
}

type compEntry struct {
	key    string
	stored []byte
}

// emit writes one entry. In a full snapshot dead entries are left out; in a
// delta they become tombstones, because they must hide older layers' values.
func (sw *snapWriter) emit(kg uint32, key string, stored []byte) error {
	dead := stored == nil || (sw.ttl && expiryOf(stored) <= sw.at)
	if dead && sw.full {
		return nil
	}
	sw.e = format.Entry{State: sw.state, KeyGroup: kg, Key: append(sw.e.Key[:0], key...)}
	switch {
	case dead:
		sw.e.Tombstone = true
	case sw.ttl:
		sw.e.Value, sw.e.ExpiresAt = stored[expiryLen:], expiryOf(stored)
	default:
		sw.e.Value = stored
	}
	return sw.w.Add(&sw.e)
}

func (sw *snapWriter) valueState(tabs []table) error {
	var bounds []int
	var lcp int
	sw.keys, bounds, lcp = groupKeys(sw.keys, sw.n, tabs)
	for g := range sw.n {
		for _, k := range sw.sorter.sortGroup(sw.keys[bounds[g]:bounds[g+1]], len(tabs), lcp) {
			if err := sw.emit(k.kg, k.key, k.val); err != nil {
				return err
			}
		}
	}
	return nil
}

// mapState flattens map state into composite keys (see compositeKey), in
// the segment order: key group, then composite key.
func (sw *snapWriter) mapState(layers []subTables) error {
	var bounds []int
	var lcp int
	sw.keys, bounds, lcp = groupKeys(sw.keys, sw.n, layers)
	subs := make([]table, 0, len(layers))
	var mks []groupedKey
	for g := range sw.n {
		group := sw.sorter.sortGroup(sw.keys[bounds[g]:bounds[g+1]], len(layers), lcp)
		if len(group) == 0 {
			continue
		}
		sw.comps = sw.comps[:0]
		for _, k := range group {
			subs = subs[:0]
			for _, l := range layers {
				if t, ok := l[k.key]; ok {
					subs = append(subs, t)
				}
			}
			mks = distinctKeys(&sw.sorter, mks, subs)
			for _, mk := range mks {
				sw.comps = append(sw.comps, compEntry{key: compositeKey(k.key, mk.key), stored: mk.val})
			}
		}
		slices.SortFunc(sw.comps, func(a, b compEntry) int { return strings.Compare(a.key, b.key) })
		for _, c := range sw.comps {
			if err := sw.emit(g, c.key, c.stored); err != nil {
				return err
			}
		}
	}
	return nil
}

// compositeKey is how a map-state entry is stored: a 4-byte big-endian
// length of the user key, the user key, then the encoded map key. The key
// group is the user key's.
func compositeKey(uk, mk string) string {
	b := make([]byte, 4, 4+len(uk)+len(mk))
	binary.BigEndian.PutUint32(b, uint32(len(uk)))
	b = append(b, uk...)
	return string(append(b, mk...))
}

// splitCompositeKey is the inverse of compositeKey.
func splitCompositeKey(ck []byte) (uk, mk []byte, ok bool) {
	if len(ck) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(ck)
	if uint64(n) > uint64(len(ck)-4) {
		return nil, nil, false
	}
	return ck[4 : 4+n], ck[4+n:], true
}

// ttlFromMillis converts a manifest TTL back to a duration.
func ttlFromMillis(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
