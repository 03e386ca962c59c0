package state

import (
	"fmt"
	"slices"
)

// Map is keyed state holding a map from K to V per key. Each map entry is
// stored, snapshotted and expires on its own, like Flink's MapState; the key
// group is that of the primary key.
type Map[K, V any] struct {
	b      *Backend
	st     int
	keys   Codec[K]
	values Codec[V]
	scr    []byte
}

// NewMap registers (or binds to restored) map state on b. keys encodes the
// map keys (nil picks CodecFor[K]()); d describes the values. Map keys are
// compared by their encoding.
func NewMap[K, V any](b *Backend, d Descriptor[V], keys Codec[K]) (*Map[K, V], error) {
	if keys == nil {
		keys = CodecFor[K]()
	}
	vc := d.codec()
	st, err := b.register(d.Name, KindMap, keys.Name()+"/"+vc.Name(), d.TTL)
	if err != nil {
		return nil, err
	}
	return &Map[K, V]{b: b, st: st, keys: keys, values: vc}, nil
}

func (m *Map[K, V]) errf(key string, err error) error {
	return fmt.Errorf("state %q, key %q: %w", m.b.states[m.st].name, key, err)
}

// lookupSub finds the newest entry of map key mk under user key uk.
func (m *Map[K, V]) lookupSub(gi int, uk, mk string) (entry, bool) {
	if e, ok := m.b.active.states[m.st][gi][uk].sub[mk]; ok {
		return e, true
	}
	for i := len(m.b.frozen) - 1; i >= 0; i-- {
		if e, ok := m.b.frozen[i].states[m.st][gi][uk].sub[mk]; ok {
			return e, true
		}
	}
	e, ok := m.b.base.states[m.st][gi][uk].sub[mk]
	return e, ok
}

// Get returns the value at mk in key's map.
func (m *Map[K, V]) Get(key string, mk K) (V, bool, error) {
	var zero V
	gi, err := m.b.slot(key)
	if err != nil {
		return zero, false, err
	}
	m.scr, err = m.keys.Append(m.scr[:0], mk)
	if err != nil {
		return zero, false, m.errf(key, err)
	}
	e, ok := m.lookupSub(gi, key, string(m.scr))
	if !ok || e.deleted || e.expired(m.b.now()) {
		return zero, false, nil
	}
	v, err := m.values.Decode(e.value)
	if err != nil {
		return zero, false, m.errf(key, err)
	}
	return v, true, nil
}

// Put sets mk to v in key's map, restarting that entry's TTL.
func (m *Map[K, V]) Put(key string, mk K, v V) error {
	gi, err := m.b.slot(key)
	if err != nil {
		return err
	}
	m.scr, err = m.keys.Append(m.scr[:0], mk)
	if err != nil {
		return m.errf(key, err)
	}
	val, err := m.values.Append(nil, v)
	if err != nil {
		return m.errf(key, err)
	}
	m.activeSub(gi, key)[string(m.scr)] = entry{value: val, expires: m.b.expiry(m.st)}
	m.b.wrote()
	return nil
}

func (m *Map[K, V]) activeSub(gi int, key string) table {
	t := m.b.activeTable(m.st, gi)
	e, ok := t[key]
	if !ok || e.sub == nil {
		e = entry{sub: make(table)}
		t[key] = e
	}
	return e.sub
}

// Delete removes mk from key's map.
func (m *Map[K, V]) Delete(key string, mk K) error {
	gi, err := m.b.slot(key)
	if err != nil {
		return err
	}
	m.scr, err = m.keys.Append(m.scr[:0], mk)
	if err != nil {
		return m.errf(key, err)
	}
	m.deleteRaw(gi, key, string(m.scr))
	return nil
}

func (m *Map[K, V]) deleteRaw(gi int, key, mk string) {
	below := false
	for _, f := range m.b.frozen {
		if _, ok := f.states[m.st][gi][key].sub[mk]; ok {
			below = true
		}
	}
	if _, ok := m.b.base.states[m.st][gi][key].sub[mk]; ok {
		below = true
	}
	if below {
		m.activeSub(gi, key)[mk] = entry{deleted: true}
	} else if sub := m.b.active.states[m.st][gi][key].sub; sub != nil {
		delete(sub, mk)
	}
	m.b.wrote()
}

// liveKeys returns key's live map keys (encoded), sorted.
func (m *Map[K, V]) liveKeys(gi int, key string) []string {
	var mks []string
	for _, l := range m.b.layers() {
		for mk := range l.states[m.st][gi][key].sub {
			mks = append(mks, mk)
		}
	}
	slices.Sort(mks)
	mks = slices.Compact(mks)
	now := m.b.now()
	return slices.DeleteFunc(mks, func(mk string) bool {
		e, ok := m.lookupSub(gi, key, mk)
		return !ok || e.deleted || e.expired(now)
	})
}

// All calls fn for each entry of key's map in the order of the encoded map
// keys, until fn returns false.
func (m *Map[K, V]) All(key string, fn func(K, V) bool) error {
	gi, err := m.b.slot(key)
	if err != nil {
		return err
	}
	for _, mk := range m.liveKeys(gi, key) {
		e, _ := m.lookupSub(gi, key, mk)
		k, err := m.keys.Decode([]byte(mk))
		if err != nil {
			return m.errf(key, err)
		}
		v, err := m.values.Decode(e.value)
		if err != nil {
			return m.errf(key, err)
		}
		if !fn(k, v) {
			return nil
		}
	}
	return nil
}

// Len returns the number of live entries in key's map.
func (m *Map[K, V]) Len(key string) (int, error) {
	gi, err := m.b.slot(key)
	if err != nil {
		return 0, err
	}
	return len(m.liveKeys(gi, key)), nil
}

// Clear removes every entry of key's map.
func (m *Map[K, V]) Clear(key string) error {
	gi, err := m.b.slot(key)
	if err != nil {
		return err
	}
	for _, mk := range m.liveKeys(gi, key) {
		m.deleteRaw(gi, key, mk)
	}
	return nil
}
