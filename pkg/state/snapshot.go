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
	views    [][]groupTables
	groups   int
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

	s := &Snapshot{kind: kind, seq: b.seq, at: b.now(), rangeStart: b.rng.Start, groups: b.groups, broken: &b.chainBroken}
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
	sw := snapWriter{w: w, at: s.at, full: s.kind == Full}
	var tabs []table
	var subs []subTables
	for _, st := range s.states {
		sw.state, sw.ttl = st.info.name, st.info.ttl > 0
		for gi := range s.groups {
			tabs, subs = tabs[:0], subs[:0]
			for _, v := range s.views {
				if st.index >= len(v) {
					continue // registered after this layer was pinned
				}
				if g := v[st.index]; g.subs != nil {
					if g.subs[gi] != nil {
						subs = append(subs, g.subs[gi])
					}
				} else if g.vals[gi] != nil {
					tabs = append(tabs, g.vals[gi])
				}
			}
			sw.kg = s.rangeStart + uint32(gi)
			var err error
			switch {
			case len(subs) > 0:
				err = sw.mapGroup(subs)
			case len(tabs) > 0:
				err = sw.valueGroup(tabs)
			}
			if err != nil {
				return fmt.Errorf("state: write snapshot %d, state %q, key group %d: %w", s.seq, sw.state, sw.kg, err)
			}
		}
	}
	return nil
}

// snapWriter merges a group's tables and feeds the segment writer, reusing
// its buffers across groups.
type snapWriter struct {
	w     *format.SegmentWriter
	at    int64
	full  bool
	state string
	kg    uint32
	ttl   bool
	keys  []string
	sorts []prefixed
	comps []compEntry
	e     format.Entry
}

type compEntry struct {
	key    string
	stored []byte
}

// resolve returns key's newest stored value among tabs (oldest first); nil
// when it is deleted or absent.
func resolve(tabs []table, key string) []byte {
	for i := len(tabs) - 1; i >= 0; i-- {
		if v, ok := tabs[i][key]; ok {
			return v
		}
	}
	return nil
}

// unionKeys collects the distinct keys of maps, sorted; scratch is the
// sort's reusable buffer.
func unionKeys[V any](dst []string, scratch *[]prefixed, maps []map[string]V) []string {
	dst = dst[:0]
	for _, t := range maps {
		for k := range t {
			dst = append(dst, k)
		}
	}
	*scratch = sortKeys(dst, *scratch)
	if len(maps) > 1 {
		dst = slices.Compact(dst)
	}
	return dst
}

// emit writes one entry. In a full snapshot dead entries are left out; in a
// delta they become tombstones, because they must hide older layers' values.
func (sw *snapWriter) emit(key string, stored []byte) error {
	dead := stored == nil || (sw.ttl && expiryOf(stored) <= sw.at)
	if dead && sw.full {
		return nil
	}
	sw.e = format.Entry{State: sw.state, KeyGroup: sw.kg, Key: append(sw.e.Key[:0], key...)}
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

func (sw *snapWriter) valueGroup(tabs []table) error {
	sw.keys = unionKeys(sw.keys, &sw.sorts, tabs)
	for _, k := range sw.keys {
		if err := sw.emit(k, resolve(tabs, k)); err != nil {
			return err
		}
	}
	return nil
}

// mapGroup flattens map state into composite keys (see compositeKey).
func (sw *snapWriter) mapGroup(layers []subTables) error {
	sw.keys = unionKeys(sw.keys, &sw.sorts, layers)
	sw.comps = sw.comps[:0]
	subs := make([]table, 0, len(layers))
	var mks []string
	for _, uk := range sw.keys {
		subs = subs[:0]
		for _, l := range layers {
			if t, ok := l[uk]; ok {
				subs = append(subs, t)
			}
		}
		mks = unionKeys(mks, &sw.sorts, subs)
		for _, mk := range mks {
			sw.comps = append(sw.comps, compEntry{key: compositeKey(uk, mk), stored: resolve(subs, mk)})
		}
	}
	slices.SortFunc(sw.comps, func(a, b compEntry) int { return strings.Compare(a.key, b.key) })
	for _, c := range sw.comps {
		if err := sw.emit(c.key, c.stored); err != nil {
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
