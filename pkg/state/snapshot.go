package state

import (
	"encoding/binary"
	"fmt"
	"slices"
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
	// the layer frozen by this snapshot. Each view is [state][group].
	views    [][][]table
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
	b.active = b.newLayer()
	b.frozen = append(b.frozen, f)
	b.hasBase = true

	s := &Snapshot{kind: kind, seq: b.seq, at: b.now(), rangeStart: b.rng.Start, broken: &b.chainBroken}
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
	sw := snapWriter{w: w, at: s.at}
	for _, st := range s.states {
		tabs := make([]table, 0, len(s.views))
		for gi := range s.groups() {
			tabs = tabs[:0]
			for _, v := range s.views {
				if st.index < len(v) && v[st.index][gi] != nil {
					tabs = append(tabs, v[st.index][gi])
				}
			}
			if len(tabs) == 0 {
				continue
			}
			kg := s.rangeStart + uint32(gi)
			var err error
			if st.info.kind == KindMap {
				err = sw.mapGroup(st.info.name, kg, tabs, s.kind == Full)
			} else {
				err = sw.valueGroup(st.info.name, kg, tabs, s.kind == Full)
			}
			if err != nil {
				return fmt.Errorf("state: write snapshot %d, state %q, key group %d: %w", s.seq, st.info.name, kg, err)
			}
		}
	}
	return nil
}

func (s *Snapshot) groups() int {
	for _, v := range s.views {
		for _, g := range v {
			return len(g)
		}
	}
	return 0
}

// snapWriter merges a group's tables and feeds the segment writer, reusing
// its buffers across groups.
type snapWriter struct {
	w     *format.SegmentWriter
	at    int64
	keys  []string
	comps []compEntry
	e     format.Entry
}

type compEntry struct {
	key string
	e   entry
}

// resolve returns key's newest entry among tabs (oldest first).
func resolve(tabs []table, key string) entry {
	for i := len(tabs) - 1; i >= 0; i-- {
		if e, ok := tabs[i][key]; ok {
			return e
		}
	}
	return entry{deleted: true}
}

// unionKeys collects the distinct keys of tabs, sorted.
func unionKeys(dst []string, tabs []table) []string {
	dst = dst[:0]
	for _, t := range tabs {
		for k := range t {
			dst = append(dst, k)
		}
	}
	slices.Sort(dst)
	if len(tabs) > 1 {
		dst = slices.Compact(dst)
	}
	return dst
}

// emit writes one entry. In a full snapshot dead entries are left out; in a
// delta they become tombstones, because they must hide older layers' values.
func (sw *snapWriter) emit(state string, kg uint32, key string, e entry, full bool) error {
	dead := e.deleted || e.expired(sw.at)
	if dead && full {
		return nil
	}
	sw.e = format.Entry{State: state, KeyGroup: kg, Key: append(sw.e.Key[:0], key...)}
	if dead {
		sw.e.Tombstone = true
	} else {
		sw.e.Value, sw.e.ExpiresAt = e.value, e.expires
	}
	return sw.w.Add(&sw.e)
}

func (sw *snapWriter) valueGroup(state string, kg uint32, tabs []table, full bool) error {
	sw.keys = unionKeys(sw.keys, tabs)
	for _, k := range sw.keys {
		if err := sw.emit(state, kg, k, resolve(tabs, k), full); err != nil {
			return err
		}
	}
	return nil
}

// mapGroup flattens map state into composite keys (see compositeKey).
func (sw *snapWriter) mapGroup(state string, kg uint32, tabs []table, full bool) error {
	sw.keys = unionKeys(sw.keys, tabs)
	sw.comps = sw.comps[:0]
	subs := make([]table, 0, len(tabs))
	var mks []string
	for _, uk := range sw.keys {
		subs = subs[:0]
		for _, t := range tabs {
			if e, ok := t[uk]; ok && e.sub != nil {
				subs = append(subs, e.sub)
			}
		}
		mks = unionKeys(mks, subs)
		for _, mk := range mks {
			sw.comps = append(sw.comps, compEntry{key: compositeKey(uk, mk), e: resolve(subs, mk)})
		}
	}
	slices.SortFunc(sw.comps, func(a, b compEntry) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	for _, c := range sw.comps {
		if err := sw.emit(state, kg, c.key, c.e, full); err != nil {
			return err
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
