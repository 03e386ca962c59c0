package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
)

// Restore replaces the backend's contents with the state stored in layers:
// a base segment followed by the deltas written after it, oldest first, as a
// checkpoint manifest lists them. descs describes the states (from the
// manifest); states registered before Restore must match them, and states
// registered after are bound to the restored data by name.
//
// Only entries in the backend's key-group range are read, using each
// segment's block index to skip the rest. Every block's checksum is checked
// as it is read; an entry whose key does not hash to its recorded key group
// is reported as corruption. Expired entries are dropped. On error the
// backend is left empty.
func (b *Backend) Restore(descs []format.StateDescriptor, layers []*format.SegmentReader) error {
	for _, l := range b.layers() {
		if l.pins.Load() > 0 {
			return ErrSnapshotInFlight
		}
	}
	kept := b.states
	b.states, b.byName, b.ttlStates = nil, map[string]int{}, 0
	b.active, b.base, b.frozen = &layer{}, &layer{}, nil
	b.mergeSt, b.sweepSt, b.credit = 0, 0, 0
	b.hasBase, b.seq = false, 0
	b.chainBroken.Store(false)
	// States registered before the restore keep their indices, which their
	// typed handles hold; the manifest's other states are added after them.
	for _, s := range kept {
		if _, err := b.register(s.name, s.kind, s.codec, s.ttl); err != nil {
			return err
		}
	}
	for _, d := range descs {
		ttl := ttlFromMillis(d.TTLMillis)
		if i, ok := b.byName[d.Name]; ok && roundTTL(b.states[i].ttl) == ttl {
			ttl = b.states[i].ttl // manifests keep milliseconds
		}
		if _, err := b.register(d.Name, Kind(d.Kind), d.Codec, ttl); err != nil {
			return err
		}
	}
	err := b.load(layers)
	if err != nil {
		b.active, b.base = b.newLayer(), b.newLayer()
		return err
	}
	b.hasBase = true
	return nil
}

// roundTTL truncates a TTL to the millisecond precision manifests keep, so a
// registration compares equal to its own restored descriptor.
func roundTTL(d time.Duration) time.Duration { return d.Truncate(time.Millisecond) }

func (b *Backend) load(layers []*format.SegmentReader) error {
	now := b.now()
	for i, seg := range layers {
		it := seg.Iter(b.rng.Start, b.rng.End)
		for it.Next() {
			e := it.Entry()
			if err := b.apply(e, now); err != nil {
				return fmt.Errorf("state: restore layer %d: %w", i, err)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("state: restore: %w", err)
		}
	}
	return nil
}

// apply puts one restored entry into the base layer.
func (b *Backend) apply(e *format.Entry, now int64) error {
	st, ok := b.byName[e.State]
	if !ok {
		return fmt.Errorf("entry for state %q, which the manifest does not describe", e.State)
	}
	if !b.rng.Contains(e.KeyGroup) {
		return fmt.Errorf("state %q: key group %d outside the restored range %v", e.State, e.KeyGroup, b.rng)
	}
	dead := e.Tombstone || (e.ExpiresAt != 0 && e.ExpiresAt <= now)
	if !dead && e.ExpiresAt != 0 && b.states[st].ttl == 0 {
		return fmt.Errorf("state %q has no TTL, but key %q carries an expiry", e.State, e.Key)
	}
	key := e.Key
	var t table
	g := &b.base.states[st]
	if b.states[st].kind == KindMap {
		uk, mk, ok := splitCompositeKey(e.Key)
		if !ok {
			return fmt.Errorf("state %q: malformed map-state key %x", e.State, e.Key)
		}
		if kg := KeyGroupFor(string(uk), b.n); kg != e.KeyGroup {
			return fmt.Errorf("state %q: key %q is recorded in key group %d but hashes to %d", e.State, uk, e.KeyGroup, kg)
		}
		if g.subs == nil {
			g.subs = make(subTables)
		}
		t = g.subs[string(uk)]
		if t == nil {
			if dead {
				return nil
			}
			t = make(table)
			g.subs[string(uk)] = t
		}
		defer func() {
			if len(t) == 0 {
				delete(g.subs, string(uk))
			}
		}()
		key = mk
	} else {
		if kg := KeyGroupFor(string(key), b.n); kg != e.KeyGroup {
			return fmt.Errorf("state %q: key %q is recorded in key group %d but hashes to %d", e.State, key, e.KeyGroup, kg)
		}
		if g.vals == nil {
			g.vals = make(table)
		}
		t = g.vals
	}
	if dead {
		delete(t, string(key))
		return nil
	}
	stored := make([]byte, 0, expiryLen+len(e.Value))
	if b.states[st].ttl > 0 {
		// A restored entry keeps its own expiry; a TTL state's entry written
		// without one (ExpiresAt 0) must still read as live.
		exp := e.ExpiresAt
		if exp == 0 {
			exp = math.MaxInt64
		}
		stored = binary.LittleEndian.AppendUint64(stored, uint64(exp))
	}
	t[string(key)] = finishValue(append(stored, e.Value...))
	return nil
}
