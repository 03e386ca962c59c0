package state

import (
	"encoding/binary"
	"errors"

	"github.com/arkstate/arkstate/pkg/format"
)

// SetObserver makes fn see every change a typed state makes (Put, Add,
// Update, Delete, Clear), as it is made, in the form a segment holds it: a
// format.Entry with the state's name, the key group, the stored key (map
// states: the composite key of user key and map key), the encoded value and
// its expiry, or a tombstone. This is what a transaction log records, and
// Apply replays it. The entry and its byte slices are reused: fn must copy
// what it keeps. Expiry dropping entries is not a change: replaying the
// entries with their expiries drops them alike. nil removes the observer.
func (b *Backend) SetObserver(fn func(e *format.Entry)) { b.observer = fn }

// observe reports a change of key (and map key mk for map states) in state
// st; stored is the new stored value, nil for a delete. It is small enough
// to inline, so writes without an observer pay only the nil check.
func (b *Backend) observe(st int, key string, mk []byte, stored []byte) {
	if b.observer != nil {
		b.report(st, key, mk, stored)
	}
}

// report is observe's work when there is an observer.
func (b *Backend) report(st int, key string, mk []byte, stored []byte) {
	e := &b.observed
	e.State = b.states[st].name
	e.KeyGroup = KeyGroupFor(key, b.n)
	if b.states[st].kind == KindMap {
		e.Key = binary.BigEndian.AppendUint32(e.Key[:0], uint32(len(key)))
		e.Key = append(append(e.Key, key...), mk...)
	} else {
		e.Key = append(e.Key[:0], key...)
	}
	e.Value, e.ExpiresAt, e.Tombstone = nil, 0, stored == nil
	switch {
	case stored == nil:
	case b.states[st].ttl > 0:
		e.Value, e.ExpiresAt = stored[expiryLen:], expiryOf(stored)
	default:
		e.Value = stored
	}
	b.observer(e)
}

// Apply writes one change, as an observer saw it (or a transaction log
// holds it), into the backend: the entry replaces the key's value, or
// removes it if it is a tombstone or has expired. It is for rebuilding
// state after Restore: it writes to the restored base, below the active
// layer, so it must not be mixed with writes through typed states. The
// state must be registered or restored. An entry outside the backend's
// key-group range, of an unknown state or with a key that does not hash to
// its key group is an error.
func (b *Backend) Apply(e *format.Entry) error {
	for _, l := range b.layers() {
		if l.pins.Load() > 0 {
			return ErrSnapshotInFlight
		}
	}
	if len(b.frozen) > 0 || !b.active.empty() {
		return errors.New("state: Apply after writes through typed states")
	}
	return b.apply(e, b.now())
}
