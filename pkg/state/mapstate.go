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

// lookupSub finds the newest stored value of map key mk under user key uk;
// nil when absent or deleted.
func (m *Map[K, V]) lookupSub(uk, mk string) []byte {
	if v, ok := m.b.active.states[m.st].subs[uk][mk]; ok {
		return v
	}
	for i := len(m.b.frozen) - 1; i >= 0; i-- {
		if v, ok := m.b.frozen[i].states[m.st].subs[uk][mk]; ok {
			return v
		}
	}
	return m.b.base.states[m.st].subs[uk][mk]
}

// payload strips a live stored value's TTL header; ok is false when the
// value is deleted or expired.
func (m *Map[K, V]) payload(v []byte, now func() int64) ([]byte, bool) {
	if v == nil {
		return nil, false
	}
	if m.b.states[m.st].ttl > 0 {
		if expiryOf(v) <= now() {
			return nil, false
		}
		return v[expiryLen:], true
	}
	return v, true
}

// Get returns the value at mk in key's map.
func (m *Map[K, V]) Get(key string, mk K) (V, bool, error) {
	var zero V
	err := m.b.check(key)
	if err != nil {
		return zero, false, err
	}
	m.scr, err = m.keys.Append(m.scr[:0], mk)
	if err != nil {
		return zero, false, m.errf(key, err)
	}
	raw, ok := m.payload(m.lookupSub(key, string(m.scr)), m.b.now)
	if !ok {
		return zero, false, nil
	}
	v, err := m.values.Decode(raw)
	if err != nil {
		return zero, false, m.errf(key, err)
	}
	return v, true, nil
}

// Put sets mk to v in key's map, restarting that entry's TTL.
func (m *Map[K, V]) Put(key string, mk K, v V) error {
	err := m.b.check(key)
	if err != nil {
		return err
	}
	m.scr, err = m.keys.Append(m.scr[:0], mk)
	if err != nil {
		return m.errf(key, err)
	}
	sub := m.activeSub(key)
	val, err := m.values.Append(m.b.startValue(m.st, sub[string(m.scr)]), v)
	if err != nil {
		return m.errf(key, err)
	}
	sub[string(m.scr)] = finishValue(val)
	m.b.observe(m.st, key, m.scr, sub[string(m.scr)])
	m.b.wrote()
	return nil
}

func (m *Map[K, V]) activeSub(key string) table {
	g := &m.b.active.states[m.st]
	if g.subs == nil {
		g.subs = make(subTables)
	}
	sub := g.subs[key]
	if sub == nil {
		sub = make(table)
		g.subs[key] = sub
	}
	return sub
}

// Delete removes mk from key's map.
func (m *Map[K, V]) Delete(key string, mk K) error {
	err := m.b.check(key)
	if err != nil {
		return err
	}
	m.scr, err = m.keys.Append(m.scr[:0], mk)
	if err != nil {
		return m.errf(key, err)
	}
	m.deleteRaw(key, string(m.scr))
	return nil
}

func (m *Map[K, V]) deleteRaw(key, mk string) {
	if m.b.observer != nil {
		m.b.report(m.st, key, []byte(mk), nil)
	}
	below := false
	for _, f := range m.b.frozen {
		if _, ok := f.states[m.st].subs[key][mk]; ok {
			below = true
		}
	}
	if _, ok := m.b.base.states[m.st].subs[key][mk]; ok {
		below = true
	}
	if below {
		m.activeSub(key)[mk] = nil
	} else if sub := m.b.active.states[m.st].subs[key]; sub != nil {
		delete(sub, mk)
	}
	m.b.wrote()
}

// liveKeys returns key's live map keys (encoded), sorted.
func (m *Map[K, V]) liveKeys(key string) []string {
	var mks []string
	for _, l := range m.b.layers() {
		for mk := range l.states[m.st].subs[key] {
			mks = append(mks, mk)
		}
	}
	slices.Sort(mks)
	mks = slices.Compact(mks)
	return slices.DeleteFunc(mks, func(mk string) bool {
		_, ok := m.payload(m.lookupSub(key, mk), m.b.now)
		return !ok
	})
}

// All calls fn for each entry of key's map in the order of the encoded map
// keys, until fn returns false.
func (m *Map[K, V]) All(key string, fn func(K, V) bool) error {
	err := m.b.check(key)
	if err != nil {
		return err
	}
	for _, mk := range m.liveKeys(key) {
		raw, _ := m.payload(m.lookupSub(key, mk), m.b.now)
		k, err := m.keys.Decode([]byte(mk))
		if err != nil {
			return m.errf(key, err)
		}
		v, err := m.values.Decode(raw)
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
	err := m.b.check(key)
	if err != nil {
		return 0, err
	}
	return len(m.liveKeys(key)), nil
}

// Clear removes every entry of key's map.
func (m *Map[K, V]) Clear(key string) error {
	err := m.b.check(key)
	if err != nil {
		return err
	}
	for _, mk := range m.liveKeys(key) {
		m.deleteRaw(key, mk)
	}
	return nil
}
