package state

import "fmt"

// SimpleMemoryState is the plain in-memory key/value state of ArkFlow's
// state-management document: string keys, typed values through PutTyped and GetTyped. It is a
// Backend with one byte-valued state, so it snapshots and restores like any
// other.
type SimpleMemoryState struct {
	b *Backend
	v *Value[[]byte]
}

// SimpleStateName is the state name SimpleMemoryState stores its entries under.
const SimpleStateName = "simple"

// NewSimpleMemoryState returns an empty state owning every key group.
func NewSimpleMemoryState() *SimpleMemoryState {
	b, err := NewBackend(Options{})
	if err != nil {
		panic(err) // the zero Options are always valid
	}
	v, err := NewValue(b, Descriptor[[]byte]{Name: SimpleStateName})
	if err != nil {
		panic(err)
	}
	return &SimpleMemoryState{b: b, v: v}
}

// Backend returns the backend underneath, for snapshots and restores.
func (s *SimpleMemoryState) Backend() *Backend { return s.b }

// Put stores a copy of value under key.
func (s *SimpleMemoryState) Put(key string, value []byte) error { return s.v.Put(key, value) }

// Get returns the raw bytes stored under key.
func (s *SimpleMemoryState) Get(key string) ([]byte, bool, error) { return s.v.Get(key) }

// Delete removes key.
func (s *SimpleMemoryState) Delete(key string) error { return s.v.Delete(key) }

// PutTyped stores v under key with T's default codec (see CodecFor).
func PutTyped[T any](s *SimpleMemoryState, key string, v T) error {
	b, err := CodecFor[T]().Append(nil, v)
	if err != nil {
		return fmt.Errorf("state: put %q: %w", key, err)
	}
	return s.v.Put(key, b)
}

// GetTyped reads key's value as a T; reading it as a different type than it
// was stored as fails when the encodings disagree (wrong width, bad JSON).
func GetTyped[T any](s *SimpleMemoryState, key string) (T, bool, error) {
	var zero T
	raw, ok, err := s.v.Get(key)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := CodecFor[T]().Decode(raw)
	if err != nil {
		return zero, false, fmt.Errorf("state: get %q: %w", key, err)
	}
	return v, true, nil
}
