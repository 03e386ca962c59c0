package state

import (
	"fmt"
	"time"
)

// Descriptor names a state and says how its values are encoded and how long
// they live, like Flink's state descriptors.
type Descriptor[T any] struct {
	// Name identifies the state within its operator; it is stored in
	// checkpoints and must stay stable across restarts.
	Name string
	// Codec encodes the values; nil picks CodecFor[T]().
	Codec Codec[T]
	// TTL is how long an entry lives after its last write; 0 keeps it
	// forever. Expired entries are never returned.
	TTL time.Duration
}

func (d Descriptor[T]) codec() Codec[T] {
	if d.Codec != nil {
		return d.Codec
	}
	return CodecFor[T]()
}

// Value is keyed state holding one value of type T per key.
type Value[T any] struct {
	b     *Backend
	st    int
	codec Codec[T]
}

// NewValue registers (or binds to restored) value state on b.
func NewValue[T any](b *Backend, d Descriptor[T]) (*Value[T], error) {
	c := d.codec()
	st, err := b.register(d.Name, KindValue, c.Name(), d.TTL)
	if err != nil {
		return nil, err
	}
	return &Value[T]{b: b, st: st, codec: c}, nil
}

// Get returns key's value and whether it has one.
func (v *Value[T]) Get(key string) (T, bool, error) {
	var zero T
	err := v.b.check(key)
	if err != nil {
		return zero, false, err
	}
	raw, ok := v.b.get(v.st, key)
	if !ok {
		return zero, false, nil
	}
	val, err := v.codec.Decode(raw)
	if err != nil {
		return zero, false, fmt.Errorf("state %q, key %q: %w", v.b.states[v.st].name, key, err)
	}
	return val, true, nil
}

// Put sets key's value, restarting its TTL.
func (v *Value[T]) Put(key string, val T) error {
	err := v.b.check(key)
	if err != nil {
		return err
	}
	t := v.b.activeTable(v.st)
	// A value already in the active layer owns its buffer: no snapshot reads
	// the active layer, so it can be reused instead of allocating.
	buf, err := v.codec.Append(v.b.startValue(v.st, t[key]), val)
	if err != nil {
		return fmt.Errorf("state %q, key %q: %w", v.b.states[v.st].name, key, err)
	}
	t[key] = finishValue(buf)
	v.b.observe(v.st, key, nil, t[key])
	v.b.wrote()
	return nil
}

// Delete removes key's value.
func (v *Value[T]) Delete(key string) error {
	err := v.b.check(key)
	if err != nil {
		return err
	}
	v.b.remove(v.st, key)
	return nil
}
