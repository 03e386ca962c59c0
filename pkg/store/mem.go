package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemStore keeps objects in memory: for tests and for `backend_type: memory`
// pipelines that accept losing their state with the process. It has the same
// semantics as the durable stores, including conditional writes.
type MemStore struct {
	name string

	mu     sync.RWMutex
	objs   map[string]memObject
	closed bool
}

var _ Store = (*MemStore)(nil)

// memObject is one stored version; data is never modified after it is
// stored, so readers may keep it after the lock is released.
type memObject struct {
	data []byte
	info ObjectInfo
}

// NewMem returns an empty memory store. name only labels it in Location and
// messages; two stores of the same name share nothing.
func NewMem(name string) *MemStore {
	return &MemStore{name: name, objs: make(map[string]memObject)}
}

// Location returns "mem://name".
func (s *MemStore) Location() string { return "mem://" + s.name }

// ReadsAreLocal implements LocalReads.
func (s *MemStore) ReadsAreLocal() {}

// Close drops the contents.
func (s *MemStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.objs = nil
	return nil
}

func (s *MemStore) fail(op, name string, err error) error {
	return &Error{Op: op, Location: s.Location(), Name: name, Err: err}
}

// begin runs the checks every operation starts with.
func (s *MemStore) begin(ctx context.Context, op, name string) error {
	if err := ValidateName(name); err != nil {
		return s.fail(op, name, err)
	}
	if err := ctx.Err(); err != nil {
		return s.fail(op, name, err)
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return s.fail(op, name, ErrClosed)
	}
	return nil
}

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := s.put(ctx, "put", name, r, size, Condition{})
	return err
}

// PutIf implements Store.
func (s *MemStore) PutIf(ctx context.Context, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error) {
	return s.put(ctx, "put-if", name, r, size, cond)
}

func (s *MemStore) put(ctx context.Context, op, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error) {
	if err := s.begin(ctx, op, name); err != nil {
		return ObjectInfo{}, err
	}
	if err := checkCondition(cond); err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	var buf bytes.Buffer
	// size comes from the caller, so growing to it is bounded by what a
	// successful copy would allocate anyway; cap the up-front part.
	buf.Grow(int(min(max(size, 0), 64<<20)))
	if err := copyExact(&buf, ctxReader{ctx, r}, size); err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	data := buf.Bytes()
	sum := sha256.Sum256(data)
	obj := memObject{data: data, info: ObjectInfo{
		Name:    name,
		Size:    int64(len(data)),
		ModTime: time.Now(),
		ETag:    hex.EncodeToString(sum[:]),
	}}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ObjectInfo{}, s.fail(op, name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	cur, exists := s.objs[name]
	switch {
	case cond.IfNoneMatch && exists:
		return ObjectInfo{}, s.fail(op, name, ErrPreconditionFailed)
	case cond.IfMatch != "" && (!exists || cur.info.ETag != cond.IfMatch):
		return ObjectInfo{}, s.fail(op, name, ErrPreconditionFailed)
	}
	s.objs[name] = obj
	return obj.info, nil
}

func (s *MemStore) lookup(ctx context.Context, op, name string) (memObject, error) {
	if err := s.begin(ctx, op, name); err != nil {
		return memObject{}, err
	}
	s.mu.RLock()
	obj, ok := s.objs[name]
	s.mu.RUnlock()
	if !ok {
		return memObject{}, s.fail(op, name, ErrNotExist)
	}
	return obj, nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, name string) (io.ReadCloser, ObjectInfo, error) {
	obj, err := s.lookup(ctx, "get", name)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return io.NopCloser(bytes.NewReader(obj.data)), obj.info, nil
}

// Open implements Store.
func (s *MemStore) Open(ctx context.Context, name string) (Object, error) {
	obj, err := s.lookup(ctx, "open", name)
	if err != nil {
		return nil, err
	}
	return &memReader{ctx: ctx, r: bytes.NewReader(obj.data)}, nil
}

// Stat implements Store.
func (s *MemStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	obj, err := s.lookup(ctx, "stat", name)
	return obj.info, err
}

// Delete implements Store.
func (s *MemStore) Delete(ctx context.Context, name string) error {
	if err := s.begin(ctx, "delete", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, name)
	return nil
}

// List implements Store. It lists a snapshot taken when iteration starts.
func (s *MemStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := ValidatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, s.fail("list", prefix, err))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(ObjectInfo{}, s.fail("list", prefix, err))
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(ObjectInfo{}, s.fail("list", prefix, ErrClosed))
			return
		}
		var infos []ObjectInfo
		for name, obj := range s.objs {
			if strings.HasPrefix(name, prefix) {
				infos = append(infos, obj.info)
			}
		}
		s.mu.RUnlock()
		slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
		for _, info := range infos {
			if err := ctx.Err(); err != nil {
				yield(ObjectInfo{}, s.fail("list", prefix, err))
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// memReader is an Object over one stored version.
type memReader struct {
	ctx context.Context
	r   *bytes.Reader

	mu     sync.RWMutex
	closed bool
}

func (o *memReader) ReadAt(p []byte, off int64) (int, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return 0, ErrClosed
	}
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.r.ReadAt(p, off)
}

func (o *memReader) Size() int64 { return o.r.Size() }

func (o *memReader) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	return nil
}
