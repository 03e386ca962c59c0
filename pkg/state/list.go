package state

import (
	"encoding/binary"
	"fmt"
)

// List is keyed state holding a list of T per key. The list is stored as one
// entry: each element is a uvarint length followed by its encoding, so Add
// appends without decoding what is there.
type List[T any] struct {
	b     *Backend
	st    int
	codec Codec[T]
}

// NewList registers (or binds to restored) list state on b.
func NewList[T any](b *Backend, d Descriptor[T]) (*List[T], error) {
	c := d.codec()
	st, err := b.register(d.Name, KindList, c.Name(), d.TTL)
	if err != nil {
		return nil, err
	}
	return &List[T]{b: b, st: st, codec: c}, nil
}

// Get returns key's elements in insertion order; nil when there are none.
func (l *List[T]) Get(key string) ([]T, error) {
	err := l.b.check(key)
	if err != nil {
		return nil, err
	}
	raw, ok := l.b.get(l.st, key)
	if !ok {
		return nil, nil
	}
	var out []T
	for len(raw) > 0 {
		n, w := binary.Uvarint(raw)
		if w <= 0 || n > uint64(len(raw)-w) {
			return nil, fmt.Errorf("%w: state %q, key %q: malformed list element", ErrCodec, l.b.states[l.st].name, key)
		}
		v, err := l.codec.Decode(raw[w : w+int(n)])
		if err != nil {
			return nil, fmt.Errorf("state %q, key %q: %w", l.b.states[l.st].name, key, err)
		}
		out = append(out, v)
		raw = raw[w+int(n):]
	}
	return out, nil
}

// Add appends v to key's list, restarting its TTL.
func (l *List[T]) Add(key string, v T) error {
	err := l.b.check(key)
	if err != nil {
		return err
	}
	t := l.b.activeTable(l.st)
	cur, inActive := t[key]
	old, live := l.b.get(l.st, key)
	var buf []byte
	if inActive && live {
		// Owned by the active layer: append in place, renewing the TTL.
		buf = cur
		if ttl := l.b.states[l.st].ttl; ttl > 0 {
			binary.LittleEndian.PutUint64(buf, uint64(l.b.now()+int64(ttl)))
		}
	} else {
		// Copy: older layers are immutable.
		buf = l.b.startValue(l.st, nil)
		if live {
			buf = append(buf, old...)
		}
	}
	buf, err = appendElem(buf, l.codec, v)
	if err != nil {
		return fmt.Errorf("state %q, key %q: %w", l.b.states[l.st].name, key, err)
	}
	t[key] = buf
	l.b.observe(l.st, key, nil, buf)
	l.b.wrote()
	return nil
}

// Update replaces key's list with vs; an empty vs clears it.
func (l *List[T]) Update(key string, vs []T) error {
	if len(vs) == 0 {
		return l.Clear(key)
	}
	err := l.b.check(key)
	if err != nil {
		return err
	}
	buf := l.b.startValue(l.st, nil)
	for _, v := range vs {
		if buf, err = appendElem(buf, l.codec, v); err != nil {
			return fmt.Errorf("state %q, key %q: %w", l.b.states[l.st].name, key, err)
		}
	}
	l.b.activeTable(l.st)[key] = buf
	l.b.observe(l.st, key, nil, buf)
	l.b.wrote()
	return nil
}

// Clear removes key's list.
func (l *List[T]) Clear(key string) error {
	err := l.b.check(key)
	if err != nil {
		return err
	}
	l.b.remove(l.st, key)
	return nil
}

func appendElem[T any](buf []byte, c Codec[T], v T) ([]byte, error) {
	// Encode after a maximal-width length slot, then close the gap, so the
	// element is encoded once.
	start := len(buf)
	buf = append(buf, make([]byte, binary.MaxVarintLen64)...)
	buf, err := c.Append(buf, v)
	if err != nil {
		return buf[:start], err
	}
	n := len(buf) - start - binary.MaxVarintLen64
	w := binary.PutUvarint(buf[start:], uint64(n))
	copy(buf[start+w:], buf[start+binary.MaxVarintLen64:])
	return buf[:start+w+n], nil
}
