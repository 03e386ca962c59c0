package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/arkstate/arkstate/internal/fsutil"
)

// Files of the dir store's own, named with ReservedPrefix so that no object
// name can collide with them and List skips them.
const (
	dirTempPattern = ReservedPrefix + "tmp-*"
	dirLockName    = ReservedPrefix + "lock"
)

// DirStore keeps objects as files under a local directory: object "a/b" is
// the file ROOT/a/b.
//
// Writes go to a temporary file in the target's directory, which is fsynced,
// then renamed (Put) or hard-linked (PutIf create-only) into place, and the
// directory is fsynced, so a crash leaves the old object or the new one.
// Publishing steps (rename, link, the read-compare-rename of a
// compare-and-swap, and deletes) run under an exclusive lock on
// ROOT/.arkstate-lock, taken with flock(2) or LockFileEx, so conditional
// writes are atomic across goroutines and processes sharing the directory.
// Writers of large objects hold the lock only to publish, not while copying.
//
// The ETag is the hex SHA-256 of the content, so Stat and Get read the whole
// file to compute it; random-access readers use Open, which does not.
// A crash can leave temporary files behind; they are never listed.
type DirStore struct {
	root     string
	location string

	// sem serialises publishing within this process; lock serialises it
	// across processes. flock.Flock is not safe for concurrent use, so it is
	// only touched while holding sem.
	sem  chan struct{}
	lock *flock.Flock

	closed atomic.Bool
}

var _ Store = (*DirStore)(nil)

// NewDir opens the directory store at root, creating the directory if it is
// missing.
func NewDir(root string) (*DirStore, error) { return openDir(root, true) }

// OpenDir opens the directory store at root, which must exist: commands
// that only read a store must not leave an empty directory behind a
// mistyped path.
func OpenDir(root string) (*DirStore, error) { return openDir(root, false) }

func openDir(root string, create bool) (*DirStore, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, &Error{Op: "open store", Location: root, Kind: ErrConfig, Err: err}
	}
	loc := dirLocation(abs)
	if !create {
		if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Op: "open store", Location: loc, Kind: ErrConfig, Err: errors.New("no such directory")}
		}
	}
	if err := fsutil.MkdirAll(abs, 0o755); err != nil {
		kind := ErrUnavailable
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			kind = ErrConfig
		}
		return nil, &Error{Op: "open store", Location: loc, Kind: kind, Err: err}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, &Error{Op: "open store", Location: loc, Kind: ErrUnavailable, Err: err}
	}
	if !fi.IsDir() {
		return nil, &Error{Op: "open store", Location: loc, Kind: ErrConfig, Err: errors.New("not a directory")}
	}
	return &DirStore{
		root:     abs,
		location: loc,
		sem:      make(chan struct{}, 1),
		lock:     flock.New(filepath.Join(abs, dirLockName), flock.SetPermissions(0o644)),
	}, nil
}

// dirLocation renders an absolute path as a file URL, also for Windows paths
// ("C:\x" becomes "file:///C:/x").
func dirLocation(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return "file://" + p
}

// Location returns the store's directory as a file URL.
func (s *DirStore) Location() string { return s.location }

// ReadsAreLocal implements LocalReads.
func (s *DirStore) ReadsAreLocal() {}

// Close marks the store closed and releases the lock file.
func (s *DirStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// Wait for a publisher in flight so that the lock is not closed under it.
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	return s.lock.Close()
}

// fail wraps err for op on name, classifying file-system failures as
// ErrUnavailable.
func (s *DirStore) fail(op, name string, err error) error {
	var kind error
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	var sysErr *os.SyscallError
	if errors.As(err, &pathErr) || errors.As(err, &linkErr) || errors.As(err, &sysErr) {
		kind = ErrUnavailable
	}
	return &Error{Op: op, Location: s.location, Name: name, Kind: kind, Err: err}
}

func (s *DirStore) begin(ctx context.Context, op, name string) error {
	if err := ValidateName(name); err != nil {
		return s.fail(op, name, err)
	}
	if err := ctx.Err(); err != nil {
		return s.fail(op, name, err)
	}
	if s.closed.Load() {
		return s.fail(op, name, ErrClosed)
	}
	return nil
}

// path maps a validated name into the root; ValidateName guarantees that
// the result stays below it.
func (s *DirStore) path(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name))
}

// acquire takes the publishing lock, giving up when ctx is done.
func (s *DirStore) acquire(ctx context.Context) (release func(), err error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.closed.Load() {
		<-s.sem
		return nil, ErrClosed
	}
	ok, err := s.lock.TryLockContext(ctx, 2*time.Millisecond)
	if err == nil && !ok {
		err = ctx.Err()
	}
	if err != nil {
		<-s.sem
		return nil, fmt.Errorf("lock %s: %w", s.lock.Path(), err)
	}
	return func() {
		// An unlock failure leaves the descriptor locked; closing it in the
		// next Unlock or Close releases it, so there is nothing better to do.
		_ = s.lock.Unlock()
		<-s.sem
	}, nil
}

// Put implements Store.
func (s *DirStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := s.put(ctx, "put", name, r, size, Condition{})
	return err
}

// PutIf implements Store.
func (s *DirStore) PutIf(ctx context.Context, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error) {
	return s.put(ctx, "put-if", name, r, size, cond)
}

func (s *DirStore) put(ctx context.Context, op, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error) {
	if err := s.begin(ctx, op, name); err != nil {
		return ObjectInfo{}, err
	}
	if err := checkCondition(cond); err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	target := s.path(name)
	dir := filepath.Dir(target)
	tmp, info, err := s.writeTemp(ctx, dir, r, size)
	if err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	info.Name = name
	// An unpublished temporary file must not outlive put. Once renamed, its
	// name is free and may already belong to another writer's file, so it is
	// removed only while it is still ours.
	published := false
	defer func() {
		if !published {
			os.Remove(tmp)
		}
	}()

	release, err := s.acquire(ctx)
	if err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	defer release()
	if err := s.publish(ctx, tmp, target, cond); err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	published = true
	if err := syncDir(dir); err != nil {
		return ObjectInfo{}, s.fail(op, name, err)
	}
	return info, nil
}

// publish moves the finished temporary file to target under cond. The caller
// holds the publishing lock, which makes the compare-and-swap atomic.
func (s *DirStore) publish(ctx context.Context, tmp, target string, cond Condition) error {
	switch {
	case cond.IfNoneMatch:
		// link(2) fails if target exists, so create-only holds even against a
		// writer that ignores the lock.
		err := os.Link(tmp, target)
		if errors.Is(err, fs.ErrExist) {
			return ErrPreconditionFailed
		}
		if err != nil {
			return err
		}
		// The object is published; the second name is only a leftover.
		_ = os.Remove(tmp)
		return nil
	case cond.IfMatch != "":
		etag, _, err := s.statFile(ctx, target)
		if errors.Is(err, ErrNotExist) {
			return ErrPreconditionFailed
		}
		if err != nil {
			return err
		}
		if etag != cond.IfMatch {
			return ErrPreconditionFailed
		}
	}
	return os.Rename(tmp, target)
}

// writeTemp copies exactly size bytes of r into a new fsynced temporary file
// in dir and returns its path and the resulting object's size, time and ETag.
func (s *DirStore) writeTemp(ctx context.Context, dir string, r io.Reader, size int64) (string, ObjectInfo, error) {
	f, err := createTemp(dir)
	if err != nil {
		return "", ObjectInfo{}, err
	}
	tmp := f.Name()
	info, err := fillTemp(ctx, f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", ObjectInfo{}, err
	}
	return tmp, info, nil
}

func fillTemp(ctx context.Context, f *os.File, r io.Reader, size int64) (ObjectInfo, error) {
	// Temporary files are created 0600; objects are ordinary data files.
	if err := f.Chmod(0o644); err != nil {
		return ObjectInfo{}, err
	}
	h := sha256.New()
	if err := copyExact(io.MultiWriter(f, h), ctxReader{ctx, r}, size); err != nil {
		return ObjectInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return ObjectInfo{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Size: size, ModTime: fi.ModTime(), ETag: hex.EncodeToString(h.Sum(nil))}, nil
}

// createTemp creates a temporary file in dir, creating dir as needed. A
// concurrent Delete may remove the freshly made, still empty directory, so a
// vanished directory is recreated a few times before giving up.
func createTemp(dir string) (*os.File, error) {
	var err error
	for range 5 {
		if err = fsutil.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		var f *os.File
		f, err = os.CreateTemp(dir, dirTempPattern)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// syncDir makes the entries changed in dir durable.
var syncDir = fsutil.SyncDir

// openFile opens the object file at path; a missing file or a directory (a
// name prefix, not an object) is ErrNotExist.
func openFile(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil, ErrNotExist
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, ErrNotExist
	}
	return f, fi, nil
}

// statFile returns the ETag and info of the object file at path.
func (s *DirStore) statFile(ctx context.Context, path string) (string, fs.FileInfo, error) {
	f, fi, err := openFile(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	etag, err := hashReader(ctx, f)
	return etag, fi, err
}

func hashReader(ctx context.Context, r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, r}); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Stat implements Store. It reads the object to compute its ETag.
func (s *DirStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := s.begin(ctx, "stat", name); err != nil {
		return ObjectInfo{}, err
	}
	etag, fi, err := s.statFile(ctx, s.path(name))
	if err != nil {
		return ObjectInfo{}, s.fail("stat", name, err)
	}
	return ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag}, nil
}

// Get implements Store. It reads the object once to compute its ETag before
// returning the reader; the file is replaced only by rename, so the open
// descriptor keeps the content that was hashed.
func (s *DirStore) Get(ctx context.Context, name string) (io.ReadCloser, ObjectInfo, error) {
	if err := s.begin(ctx, "get", name); err != nil {
		return nil, ObjectInfo{}, err
	}
	f, fi, err := openFile(s.path(name))
	if err != nil {
		return nil, ObjectInfo{}, s.fail("get", name, err)
	}
	etag, err := hashReader(ctx, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, ObjectInfo{}, s.fail("get", name, err)
	}
	info := ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag}
	return ctxReadCloser{ctxReader{ctx, f}, f}, info, nil
}

type ctxReadCloser struct {
	ctxReader
	io.Closer
}

// Open implements Store.
func (s *DirStore) Open(ctx context.Context, name string) (Object, error) {
	if err := s.begin(ctx, "open", name); err != nil {
		return nil, err
	}
	f, fi, err := openFile(s.path(name))
	if err != nil {
		return nil, s.fail("open", name, err)
	}
	return &dirObject{ctx: ctx, f: f, size: fi.Size()}, nil
}

// dirObject reads an open file with pread, which is safe for concurrent use.
type dirObject struct {
	ctx  context.Context
	f    *os.File
	size int64
}

func (o *dirObject) ReadAt(p []byte, off int64) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.f.ReadAt(p, off)
}

func (o *dirObject) Size() int64  { return o.size }
func (o *dirObject) Close() error { return o.f.Close() }

// Delete implements Store. It also removes directories that the deletion
// left empty, up to the root, so that pruned checkpoints leave nothing behind.
func (s *DirStore) Delete(ctx context.Context, name string) error {
	if err := s.begin(ctx, "delete", name); err != nil {
		return err
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return s.fail("delete", name, err)
	}
	defer release()
	target := s.path(name)
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return s.fail("delete", name, err)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("delete", name, err)
	}
	dir := filepath.Dir(target)
	if err := syncDir(dir); err != nil {
		return s.fail("delete", name, err)
	}
	// Best effort: a directory that is not empty (or gained a file) stays.
	for d := dir; d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// List implements Store. It walks only the directory named by the prefix up
// to its last slash, visiting each directory's entries in an order that makes
// the walk yield names in lexical order without collecting them: a directory
// "a" sorts as "a/", before any sibling whose name continues with a byte
// above '/'.
func (s *DirStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := ValidatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, s.fail("list", prefix, err))
			return
		}
		if s.closed.Load() {
			yield(ObjectInfo{}, s.fail("list", prefix, ErrClosed))
			return
		}
		start := prefix[:strings.LastIndex(prefix, "/")+1]
		w := dirWalk{ctx: ctx, root: s.root, prefix: prefix, yield: yield}
		if err := w.walk(start); err != nil && err != errStopped {
			yield(ObjectInfo{}, s.fail("list", prefix, err))
		}
	}
}

type dirWalk struct {
	ctx    context.Context
	root   string
	prefix string
	yield  func(ObjectInfo, error) bool
}

// errStopped unwinds the walk when the consumer stops iterating.
var errStopped = errors.New("stopped")

type dirEntry struct {
	key string // the name relative to the root, with "/" appended for directories
	fs.DirEntry
}

// walk yields the objects below the directory rel ("" or ending in "/").
func (w *dirWalk) walk(rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(w.root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // the prefix names nothing, or the directory went away
	}
	if err != nil {
		return err
	}
	entries := make([]dirEntry, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ReservedPrefix) {
			continue
		}
		key := rel + e.Name()
		if e.IsDir() {
			key += "/"
		}
		entries = append(entries, dirEntry{key, e})
	}
	slices.SortFunc(entries, func(a, b dirEntry) int { return cmp.Compare(a.key, b.key) })
	for _, e := range entries {
		switch {
		case e.IsDir():
			// Descend only where names can match: below the prefix, or on the
			// way down to it.
			if strings.HasPrefix(e.key, w.prefix) || strings.HasPrefix(w.prefix, e.key) {
				if err := w.walk(e.key); err != nil {
					return err
				}
			}
		case e.Type().IsRegular() && strings.HasPrefix(e.key, w.prefix):
			if ValidateName(e.key) != nil {
				continue // a file placed by hand that no name can address
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err != nil {
				return err
			}
			if err := w.ctx.Err(); err != nil {
				return err
			}
			if !w.yield(ObjectInfo{Name: e.key, Size: fi.Size(), ModTime: fi.ModTime()}, nil) {
				return errStopped
			}
		}
	}
	return nil
}
