package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of HybridOptions.
const (
	defaultHybridMinBackoff   = 100 * time.Millisecond
	defaultHybridMaxBackoff   = 30 * time.Second
	defaultHybridCloseTimeout = time.Minute
)

// HybridOptions tune a HybridStore. The zero value is usable.
type HybridOptions struct {
	// MinBackoff and MaxBackoff bound the pause before a failed copy is
	// tried again (defaults 100ms and 30s). The pause doubles with each
	// failure of the same copy and is jittered.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// CloseTimeout bounds how long Close waits for queued copies (default
	// one minute). Copies still queued then are abandoned; the next
	// HybridStore over the same local store finds and copies them when it
	// starts.
	CloseTimeout time.Duration
	// Logger receives copy failures and conflicts (default: discarded; the
	// counts are in Stats either way).
	Logger *slog.Logger
	// Layout says what the names mean; the zero value treats every name
	// alike. A store that holds checkpoints needs checkpoint.HybridLayout,
	// which checkpoint.Open supplies.
	Layout HybridLayout
}

// HybridLayout gives a hybrid store the rules of the layout it holds, so
// that the store itself knows nothing of checkpoints. Every field is
// optional.
type HybridLayout struct {
	// RemoteOnly reports names that live on the remote store only: every
	// operation on them goes there, so that processes on different machines
	// sharing the remote store contend for them (leases).
	RemoteOnly func(name string) bool
	// ScanOrder ranks the objects the start-up scan queues: lower ranks are
	// copied first, names of one rank in listing order, and createOnly
	// copies use IfNoneMatch. It lets the copies keep an order that the
	// layout's commit rule needs (a manifest after its segments).
	ScanOrder func(name string) (rank int, createOnly bool)
	// ContentCheck wraps the reader of an object whose name fixes its
	// content (a content-addressed segment) so that it fails when the bytes
	// do not match; it returns nil for other names. A copy whose check
	// fails is refused: the remote store keeps what it had.
	ContentCheck func(name string, size int64, r io.Reader) io.Reader
}

// HybridStats counts a HybridStore's background copies since it opened.
type HybridStats struct {
	// Queued is the number of copies waiting or in progress (the start-up
	// scan counts as one while it runs), and QueuedBytes their sizes as
	// written.
	Queued      int
	QueuedBytes int64
	// Copied is the number of copies completed, and CopiedBytes their size.
	Copied      int64
	CopiedBytes int64
	// Resumed is the number of objects the start-up scan found on the local
	// store but not on the remote one (left behind by an earlier process)
	// and queued.
	Resumed int64
	// Failed counts failed copy attempts (and failed start-up scans); each
	// is retried after a pause, the queue waiting behind it.
	Failed int64
	// Conflicts counts create-only copies (manifests, the store marker)
	// that found a different object of the same name on the remote store:
	// another writer committed it there first. They are not retried.
	Conflicts int64
	// Skipped counts copies dropped because the object was deleted from
	// the local store before its turn.
	Skipped int64
	// ReadFromRemote counts objects a reader found damaged on the local
	// store and read from the remote copy instead (NoteLocalDamage; the
	// checkpoint restore does this for segments).
	// The local copies stay as they are, for verify to report.
	ReadFromRemote int64
	// DamagedLocal counts copies refused because the local copy fails the
	// layout's ContentCheck: the remote store keeps what it had (a
	// good copy there is never overwritten by a damaged one). They are not
	// retried; verify reports the local damage.
	DamagedLocal int64
	// LastError describes the last failure or conflict, "" if none.
	LastError string
}

// HybridStore writes objects to a local store first, for fast writes and
// fast local recovery, and copies every object to a remote store (S3) in
// the background, so that a machine that lost its disk recovers from the
// remote copy.
//
// Writes (Put, PutIf) complete on the local store and queue the name for
// copying. One worker copies the queue in FIFO order, reading the object's
// current local content, and does not move past a copy that fails: it
// retries it with backoff until it succeeds. The remote store therefore
// receives objects in the order they were written: since a checkpoint
// writes its segments before its MANIFEST, the remote store never holds a
// manifest whose segments it lacks. When a hybrid store opens, a scan
// queues every local object missing from the remote one in the layout's
// ScanOrder (for checkpoints: the marker first, manifests last), so copies
// a crash interrupted are completed in an order that keeps that rule. The
// scan lists both stores once and compares names and sizes only.
//
// Reads (Get, Open, Stat) try the local store and then the remote one, so
// a new machine with an empty directory reads everything from S3. List
// merges both listings. Delete removes the object from both, waiting for a
// copy of that name in progress so that the copy cannot bring it back.
//
// Create-only writes (PutIf with IfNoneMatch, which commits manifests and
// the store marker) fail if the remote store already holds the name, and
// are then decided by the local store; the background copy is create-only
// too, and finding another writer's object there is counted as a conflict.
// A compare-and-swap (IfMatch) is decided by the store whose version reads
// return: the local one, or the remote one when only it has the name.
//
// Names the layout calls remote-only (HybridLayout.RemoteOnly, the leases)
// live on the remote store only: every operation on them goes there, so
// that processes on different machines sharing the remote store contend for
// a lease on it.
type HybridStore struct {
	local, remote Store
	location      string
	minBackoff    time.Duration
	maxBackoff    time.Duration
	closeTimeout  time.Duration
	log           *slog.Logger
	layout        HybridLayout

	ctx    context.Context // the worker's; cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker has exited
	wake   chan struct{} // a token when work was queued

	mu         sync.Mutex
	queue      []copyJob
	inflight   bool          // the worker holds a job or is scanning
	idle       chan struct{} // closed while nothing is queued or in flight
	idleClosed bool
	busy       map[string]chan struct{} // names being copied or deleted
	stats      HybridStats              // Queued and QueuedBytes are computed
	queuedSize int64
	unreported int64  // conflicts no Flush has returned yet
	lastConfl  string // name of the last conflicting copy

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ Store          = (*HybridStore)(nil)
	_ RemoteFallback = (*HybridStore)(nil)
	_ Replicator     = (*HybridStore)(nil)
)

// RemoteFallback is a store with a second copy of every object to read
// when the first is damaged: restores ask for it with As.
type RemoteFallback interface {
	Store
	Remote() Store
	// NoteLocalDamage records that the local copy of name was found
	// damaged (err says how) and the remote copy read instead.
	NoteLocalDamage(name string, err error)
}

// Replicator is a store that copies its objects to another in the
// background (the hybrid store); a job's status reports its Stats.
type Replicator interface {
	Store
	Stats() HybridStats
}

// copyJob is one queued copy of a local object to the remote store.
type copyJob struct {
	name   string
	size   int64 // as written; for Stats only
	create bool  // copy with IfNoneMatch
}

// NewHybrid returns a hybrid store over local and remote with default
// options. It takes ownership of both: Close closes them.
func NewHybrid(local, remote Store) *HybridStore {
	return NewHybridWithOptions(local, remote, HybridOptions{})
}

// NewHybridWithOptions is NewHybrid with options.
func NewHybridWithOptions(local, remote Store, opts HybridOptions) *HybridStore {
	ctx, cancel := context.WithCancel(context.Background())
	h := &HybridStore{
		local:        local,
		remote:       remote,
		location:     "hybrid(" + local.Location() + " + " + remote.Location() + ")",
		minBackoff:   positiveOr(opts.MinBackoff, defaultHybridMinBackoff),
		maxBackoff:   positiveOr(opts.MaxBackoff, defaultHybridMaxBackoff),
		closeTimeout: positiveOr(opts.CloseTimeout, defaultHybridCloseTimeout),
		log:          opts.Logger,
		layout:       opts.Layout,
		ctx:          ctx,
		cancel:       cancel,
		done:         make(chan struct{}),
		wake:         make(chan struct{}, 1),
		inflight:     true, // the start-up scan
		idle:         make(chan struct{}),
		busy:         map[string]chan struct{}{},
	}
	h.maxBackoff = max(h.maxBackoff, h.minBackoff)
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	go h.run()
	return h
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Location returns "hybrid(<local location> + <remote location>)".
func (h *HybridStore) Location() string { return h.location }

// Local returns the local store.
func (h *HybridStore) Local() Store { return h.local }

// Remote returns the remote store.
func (h *HybridStore) Remote() Store { return h.remote }

// remoteOnly reports whether name lives on the remote store only.
func (h *HybridStore) remoteOnly(name string) bool {
	return h.layout.RemoteOnly != nil && h.layout.RemoteOnly(name)
}

func (h *HybridStore) fail(op, name string, err error) error {
	return &Error{Op: op, Location: h.location, Name: name, Err: err}
}

func (h *HybridStore) begin(ctx context.Context, op, name string) error {
	if err := ValidateName(name); err != nil {
		return h.fail(op, name, err)
	}
	if err := ctx.Err(); err != nil {
		return h.fail(op, name, err)
	}
	if h.closed.Load() {
		return h.fail(op, name, ErrClosed)
	}
	return nil
}

// Put implements Store: it writes to the local store and queues the copy.
func (h *HybridStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := h.begin(ctx, "put", name); err != nil {
		return err
	}
	if h.remoteOnly(name) {
		return h.remote.Put(ctx, name, r, size)
	}
	if err := h.local.Put(ctx, name, r, size); err != nil {
		return err
	}
	h.enqueue(copyJob{name: name, size: size})
	return nil
}

// PutIf implements Store; see HybridStore for who decides each condition.
func (h *HybridStore) PutIf(ctx context.Context, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error) {
	if err := h.begin(ctx, "put-if", name); err != nil {
		return ObjectInfo{}, err
	}
	if h.remoteOnly(name) {
		return h.remote.PutIf(ctx, name, r, size, cond)
	}
	if err := checkCondition(cond); err != nil {
		return ObjectInfo{}, h.fail("put-if", name, err)
	}
	switch {
	case cond.IfNoneMatch:
		// An object the remote store holds exists for every reader of this
		// store, even if this disk never saw it (a replaced machine), so a
		// create-only write must lose against it.
		_, err := h.remote.Stat(ctx, name)
		switch {
		case err == nil:
			return ObjectInfo{}, h.fail("put-if", name, fmt.Errorf("%w: the object exists in %s", ErrPreconditionFailed, h.remote.Location()))
		case ctx.Err() != nil:
			return ObjectInfo{}, h.fail("put-if", name, ctx.Err())
		case !errors.Is(err, ErrNotExist):
			// The remote store is unreachable: the local store decides, as
			// it would with the remote check passed; the background copy
			// reports a conflict should another writer have won there.
			h.log.Warn("hybrid store: cannot check the remote store before a create-only write; the local store decides",
				"store", h.location, "name", name, "err", err)
		}
	case cond.IfMatch != "":
		_, err := h.local.Stat(ctx, name)
		if errors.Is(err, ErrNotExist) {
			// Reads return the remote version then, so the caller's ETag
			// is the remote one.
			return h.remote.PutIf(ctx, name, r, size, cond)
		}
		if err != nil {
			return ObjectInfo{}, err
		}
	}
	info, err := h.local.PutIf(ctx, name, r, size, cond)
	if err != nil {
		return ObjectInfo{}, err
	}
	h.enqueue(copyJob{name: name, size: size, create: cond.IfNoneMatch})
	return info, nil
}

// Get implements Store: the local object, else the remote one.
func (h *HybridStore) Get(ctx context.Context, name string) (io.ReadCloser, ObjectInfo, error) {
	if err := h.begin(ctx, "get", name); err != nil {
		return nil, ObjectInfo{}, err
	}
	if h.remoteOnly(name) {
		return h.remote.Get(ctx, name)
	}
	rc, info, err := h.local.Get(ctx, name)
	if errors.Is(err, ErrNotExist) {
		rc, info, err = h.remote.Get(ctx, name)
		if errors.Is(err, ErrNotExist) {
			err = h.fail("get", name, ErrNotExist)
		}
	}
	return rc, info, err
}

// Open implements Store: the local object, else the remote one.
func (h *HybridStore) Open(ctx context.Context, name string) (Object, error) {
	if err := h.begin(ctx, "open", name); err != nil {
		return nil, err
	}
	if h.remoteOnly(name) {
		return h.remote.Open(ctx, name)
	}
	obj, err := h.local.Open(ctx, name)
	if errors.Is(err, ErrNotExist) {
		obj, err = h.remote.Open(ctx, name)
		if errors.Is(err, ErrNotExist) {
			err = h.fail("open", name, ErrNotExist)
		}
	}
	return obj, err
}

// Stat implements Store: the local object's info, else the remote one's.
func (h *HybridStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := h.begin(ctx, "stat", name); err != nil {
		return ObjectInfo{}, err
	}
	if h.remoteOnly(name) {
		return h.remote.Stat(ctx, name)
	}
	info, err := h.local.Stat(ctx, name)
	if errors.Is(err, ErrNotExist) {
		info, err = h.remote.Stat(ctx, name)
		if errors.Is(err, ErrNotExist) {
			err = h.fail("stat", name, ErrNotExist)
		}
	}
	return info, err
}

// List implements Store: the union of both listings, in order, each name
// once with the local object's info where both have it (as Stat returns).
// A failure of either listing ends it with that error: a partial union
// could hide a checkpoint from retention and garbage collection.
func (h *HybridStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := ValidatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, h.fail("list", prefix, err))
			return
		}
		if h.closed.Load() {
			yield(ObjectInfo{}, h.fail("list", prefix, ErrClosed))
			return
		}
		for e, err := range mergeLists(h.local.List(ctx, prefix), h.remote.List(ctx, prefix)) {
			if err != nil {
				yield(ObjectInfo{}, err)
				return
			}
			info := e.local
			if !e.inLocal {
				info = e.remote
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// mergedEntry is one name of two merged listings with its info in each;
// inLocal and inRemote say where it was listed.
type mergedEntry struct {
	local, remote     ObjectInfo
	inLocal, inRemote bool
}

// mergeLists merges two listings, each in lexical order of name, into one
// in that order. The first error of either ends it.
func mergeLists(a, b iter.Seq2[ObjectInfo, error]) iter.Seq2[mergedEntry, error] {
	return func(yield func(mergedEntry, error) bool) {
		nextA, stopA := iter.Pull2(a)
		defer stopA()
		nextB, stopB := iter.Pull2(b)
		defer stopB()
		ai, aerr, aok := nextA()
		bi, berr, bok := nextB()
		for aok || bok {
			if aok && aerr != nil {
				yield(mergedEntry{}, aerr)
				return
			}
			if bok && berr != nil {
				yield(mergedEntry{}, berr)
				return
			}
			var e mergedEntry
			switch {
			case aok && (!bok || ai.Name < bi.Name):
				e.local, e.inLocal = ai, true
			case bok && (!aok || bi.Name < ai.Name):
				e.remote, e.inRemote = bi, true
			default:
				e.local, e.inLocal = ai, true
				e.remote, e.inRemote = bi, true
			}
			if !yield(e, nil) {
				return
			}
			if e.inLocal {
				ai, aerr, aok = nextA()
			}
			if e.inRemote {
				bi, berr, bok = nextB()
			}
		}
	}
}

// Delete implements Store: it removes the object from the local store,
// then from the remote one. A failure on the remote store leaves the
// object readable there, so the store stays consistent and the Delete can
// be repeated.
func (h *HybridStore) Delete(ctx context.Context, name string) error {
	if err := h.begin(ctx, "delete", name); err != nil {
		return err
	}
	if h.remoteOnly(name) {
		return h.remote.Delete(ctx, name)
	}
	// A copy of this name in progress could otherwise land on the remote
	// store after the delete there. Queued copies find the local object
	// gone and are skipped.
	release, err := h.lockName(ctx, name)
	if err != nil {
		return h.fail("delete", name, err)
	}
	defer release()
	if err := h.local.Delete(ctx, name); err != nil {
		return err
	}
	return h.remote.Delete(ctx, name)
}

// lockName waits until no copy or delete of name is in progress and marks
// one in progress; release ends it.
func (h *HybridStore) lockName(ctx context.Context, name string) (release func(), err error) {
	for {
		h.mu.Lock()
		ch, ok := h.busy[name]
		if !ok {
			ch = make(chan struct{})
			h.busy[name] = ch
			h.mu.Unlock()
			return func() {
				h.mu.Lock()
				delete(h.busy, name)
				h.mu.Unlock()
				close(ch)
			}, nil
		}
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Flush waits until every copy queued before the call has been made (or
// dropped as a conflict or because its object was deleted). It returns an
// error wrapping ErrPreconditionFailed if copies ended in conflict since
// the previous Flush returned, and the context's error if ctx ends first: a
// copy that keeps failing holds the queue, so Flush may wait as long as the
// remote store is unreachable.
func (h *HybridStore) Flush(ctx context.Context) error {
	if h.closed.Load() {
		return h.fail("flush", "", ErrClosed)
	}
	return h.flush(ctx)
}

func (h *HybridStore) flush(ctx context.Context) error {
	h.mu.Lock()
	idle := h.idle
	h.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
		st := h.Stats()
		msg := fmt.Sprintf("%d copies to %s still queued", st.Queued, h.remote.Location())
		if st.LastError != "" {
			msg += "; last failure: " + st.LastError
		}
		return &Error{Op: "flush", Location: h.location, Err: fmt.Errorf("%s: %w", msg, ctx.Err())}
	case <-h.done:
		return h.fail("flush", "", ErrClosed)
	}
	h.mu.Lock()
	n, last := h.unreported, h.lastConfl
	h.unreported = 0
	h.mu.Unlock()
	if n > 0 {
		return &Error{Op: "flush", Location: h.location, Name: last,
			Err: fmt.Errorf("%w: %d create-only copies found another writer's object on %s", ErrPreconditionFailed, n, h.remote.Location())}
	}
	return nil
}

// noteLocalDamage records that a restore found the local copy of name
// damaged and reads the remote one instead.
func (h *HybridStore) NoteLocalDamage(name string, err error) {
	h.mu.Lock()
	h.stats.ReadFromRemote++
	h.mu.Unlock()
	h.log.Warn("local copy is damaged; reading the remote copy", "name", name, "err", err)
}

// Stats returns the copy counters.
func (h *HybridStore) Stats() HybridStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stats
	st.Queued = len(h.queue)
	if h.inflight {
		st.Queued++
	}
	st.QueuedBytes = h.queuedSize
	return st
}

// Close waits up to CloseTimeout for the queued copies, stops the worker
// and closes both stores. Copies it abandons are reported in its error
// (wrapping ErrUnavailable) and made by the next HybridStore over the same
// local store.
func (h *HybridStore) Close() error {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), h.closeTimeout)
		ferr := h.flush(ctx)
		cancel()
		h.cancel()
		<-h.done
		var errs []error
		if ferr != nil && !errors.Is(ferr, ErrPreconditionFailed) {
			errs = append(errs, &Error{Op: "close", Location: h.location, Kind: ErrUnavailable,
				Err: fmt.Errorf("%d copies abandoned after %v; they are made when the store is opened again: %w", h.Stats().Queued, h.closeTimeout, ferr)})
		} else if ferr != nil {
			errs = append(errs, ferr)
		}
		errs = append(errs, h.local.Close(), h.remote.Close())
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

// enqueue appends a copy to the queue and wakes the worker.
func (h *HybridStore) enqueue(jobs ...copyJob) {
	h.mu.Lock()
	h.queue = append(h.queue, jobs...)
	for _, j := range jobs {
		h.queuedSize += j.size
	}
	h.updateIdleLocked()
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// updateIdleLocked keeps h.idle closed exactly while there is no work.
func (h *HybridStore) updateIdleLocked() {
	idle := len(h.queue) == 0 && !h.inflight
	switch {
	case idle && !h.idleClosed:
		close(h.idle)
		h.idleClosed = true
	case !idle && h.idleClosed:
		h.idle = make(chan struct{})
		h.idleClosed = false
	}
}

// run is the worker: the start-up scan, then the queue in order.
func (h *HybridStore) run() {
	defer close(h.done)
	if !h.retry("scan", "", h.scan) {
		return
	}
	h.finish(copyJob{})
	for {
		job, ok := h.take()
		if !ok {
			return
		}
		h.retry("copy", job.name, func(ctx context.Context) error { return h.copy(ctx, job) })
		h.finish(job)
	}
}

// take waits for the next job and marks it in flight.
func (h *HybridStore) take() (copyJob, bool) {
	for {
		h.mu.Lock()
		if len(h.queue) > 0 {
			j := h.queue[0]
			h.queue[0] = copyJob{}
			h.queue = h.queue[1:]
			if len(h.queue) == 0 {
				h.queue = nil // let the backing array go
			}
			h.inflight = true
			h.mu.Unlock()
			return j, true
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-h.ctx.Done():
			return copyJob{}, false
		}
	}
}

func (h *HybridStore) finish(j copyJob) {
	h.mu.Lock()
	h.inflight = false
	h.queuedSize -= j.size
	h.updateIdleLocked()
	h.mu.Unlock()
}

// errConflict marks a create-only copy that another writer's object
// refused; retrying cannot help.
var errConflict = errors.New("the remote store holds a different object of that name")

// errLocalDamaged marks a copy refused because the local bytes fail the
// layout's ContentCheck; retrying cannot help.
var errLocalDamaged = errors.New("the local copy is damaged; the remote copy is left as it was")

// retry runs op until it succeeds or ends in a conflict, pausing with
// exponential backoff between failures. It returns false if Close stopped
// it first.
func (h *HybridStore) retry(what, name string, op func(context.Context) error) bool {
	backoff := h.minBackoff
	for {
		err := op(h.ctx)
		if err == nil {
			return true
		}
		if h.ctx.Err() != nil {
			return false
		}
		h.mu.Lock()
		h.stats.LastError = err.Error()
		switch {
		case errors.Is(err, errConflict):
			h.stats.Conflicts++
			h.unreported++
			h.lastConfl = name
		case errors.Is(err, errLocalDamaged):
			h.stats.DamagedLocal++
		default:
			h.stats.Failed++
		}
		h.mu.Unlock()
		if errors.Is(err, errConflict) {
			h.log.Error("hybrid store: another writer committed this object on the remote store first; the local copy differs",
				"store", h.location, "name", name, "err", err)
			return true
		}
		if errors.Is(err, errLocalDamaged) {
			h.log.Error("hybrid store: not copying a damaged local object; run checkpoint verify",
				"store", h.location, "name", name, "err", err)
			return true
		}
		h.log.Warn("hybrid store: "+what+" failed; retrying", "store", h.location, "name", name, "retry_in", backoff, "err", err)
		// Full jitter in the upper half, so that stores failing together do
		// not retry in lockstep.
		pause := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, h.maxBackoff)
	}
}

// copy makes one attempt at copying job's object from the local store to
// the remote one, reading the object's current local content.
func (h *HybridStore) copy(ctx context.Context, job copyJob) error {
	release, err := h.lockName(ctx, job.name)
	if err != nil {
		return err
	}
	defer release()
	obj, err := h.local.Open(ctx, job.name)
	if errors.Is(err, ErrNotExist) {
		h.mu.Lock()
		h.stats.Skipped++
		h.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	defer obj.Close()
	size := obj.Size()
	source := &errRecorder{r: io.NewSectionReader(obj, 0, size)}
	var r io.Reader = source
	var check *errRecorder
	if h.layout.ContentCheck != nil {
		if cr := h.layout.ContentCheck(job.name, size, source); cr != nil {
			// Bytes that do not match the name are damage, and copying
			// them would replace what may be the only good copy. A store
			// never publishes an object whose reader failed.
			check = &errRecorder{r: cr}
			r = check
		}
	}
	if job.create {
		_, err = h.remote.PutIf(ctx, job.name, r, size, Condition{IfNoneMatch: true})
		if errors.Is(err, ErrPreconditionFailed) {
			// Our own earlier attempt may have won without us hearing of
			// it, and a scan after a crash finds objects copied already:
			// equal content is a success.
			same, cerr := h.sameContent(ctx, job.name, obj)
			switch {
			case cerr != nil:
				return cerr
			case same:
				err = nil
			default:
				return h.fail("copy", job.name, errConflict)
			}
		}
	} else {
		err = h.remote.Put(ctx, job.name, r, size)
	}
	if check != nil && check.err != nil && source.err == nil {
		return h.fail("copy", job.name, fmt.Errorf("%w: %v", errLocalDamaged, check.err))
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.stats.Copied++
	h.stats.CopiedBytes += size
	h.mu.Unlock()
	return nil
}

// sameContent reports whether the remote object name has obj's content.
func (h *HybridStore) sameContent(ctx context.Context, name string, obj Object) (bool, error) {
	rc, info, err := h.remote.Get(ctx, name)
	if errors.Is(err, ErrNotExist) {
		// Deleted since the conditional write failed: try again.
		return false, h.fail("copy", name, fmt.Errorf("remote object vanished during a create-only copy: %w", ErrUnavailable))
	}
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if info.Size != obj.Size() {
		return false, nil
	}
	local := io.NewSectionReader(obj, 0, obj.Size())
	a, b := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		n, err := io.ReadFull(local, a)
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return false, err
		}
		if _, err := io.ReadFull(rc, b[:n]); err != nil {
			return false, err
		}
		if !bytes.Equal(a[:n], b[:n]) {
			return false, nil
		}
	}
	return true, nil
}

// scan queues, ahead of anything queued meanwhile, every local object the
// remote store lacks or holds with another size, in the layout's ScanOrder
// (for checkpoints: the store marker first, then everything but manifests,
// then manifests in checkpoint order, so that the copies keep the rule that
// a manifest follows its segments).
func (h *HybridStore) scan(ctx context.Context) error {
	type ranked struct {
		job  copyJob
		rank int
	}
	var found []ranked
	for e, err := range mergeLists(h.local.List(ctx, ""), h.remote.List(ctx, "")) {
		if err != nil {
			return err
		}
		l := e.local
		if !e.inLocal || h.remoteOnly(l.Name) || (e.inRemote && e.remote.Size == l.Size) {
			continue
		}
		j := ranked{job: copyJob{name: l.Name, size: l.Size}}
		if h.layout.ScanOrder != nil {
			j.rank, j.job.create = h.layout.ScanOrder(l.Name)
		}
		found = append(found, j)
	}
	slices.SortStableFunc(found, func(a, b ranked) int { return cmp.Compare(a.rank, b.rank) })
	jobs := make([]copyJob, len(found))
	for i, f := range found {
		jobs[i] = f.job
	}
	if len(jobs) == 0 {
		return nil
	}
	h.mu.Lock()
	h.queue = append(jobs, h.queue...)
	for _, j := range jobs {
		h.queuedSize += j.size
	}
	h.stats.Resumed += int64(len(jobs))
	h.mu.Unlock()
	h.log.Info("hybrid store: copying objects an earlier process left uncopied", "store", h.location, "objects", len(jobs))
	return nil
}

// errRecorder passes reads through and keeps the first error other than
// io.EOF, so that a failed copy can tell whose reader failed.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
