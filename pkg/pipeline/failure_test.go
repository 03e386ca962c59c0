package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// flakyStore fails every write while down is set, as an unreachable store
// or a full disk would, and with readsDown every read too (as S3 answering
// 503 does).
type flakyStore struct {
	store.Store
	down      atomic.Bool
	readsDown atomic.Bool
	failures  atomic.Int64
}

func (s *flakyStore) failRead() error {
	if s.readsDown.Load() {
		s.failures.Add(1)
		return &store.Error{Op: "get", Location: s.Location(), Kind: store.ErrUnavailable, Err: errDown}
	}
	return nil
}

func (s *flakyStore) Get(ctx context.Context, name string) (io.ReadCloser, store.ObjectInfo, error) {
	if err := s.failRead(); err != nil {
		return nil, store.ObjectInfo{}, err
	}
	return s.Store.Get(ctx, name)
}

func (s *flakyStore) Open(ctx context.Context, name string) (store.Object, error) {
	if err := s.failRead(); err != nil {
		return nil, err
	}
	return s.Store.Open(ctx, name)
}

func (s *flakyStore) Stat(ctx context.Context, name string) (store.ObjectInfo, error) {
	if err := s.failRead(); err != nil {
		return store.ObjectInfo{}, err
	}
	return s.Store.Stat(ctx, name)
}

var errDown = errors.New("injected: store unreachable")

func (s *flakyStore) fail() error {
	if s.down.Load() {
		s.failures.Add(1)
		return &store.Error{Op: "put", Location: s.Location(), Kind: store.ErrUnavailable, Err: errDown}
	}
	return nil
}

func (s *flakyStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.Put(ctx, name, r, size)
}

func (s *flakyStore) PutIf(ctx context.Context, name string, r io.Reader, size int64, c store.Condition) (store.ObjectInfo, error) {
	if err := s.fail(); err != nil {
		return store.ObjectInfo{}, err
	}
	return s.Store.PutIf(ctx, name, r, size, c)
}

// flakyRepo opens the word count's store under dir/state behind a
// flakyStore.
func flakyRepo(t *testing.T, dir string) (*flakyStore, *checkpoint.Repo) {
	t.Helper()
	base, err := store.NewDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	store := &flakyStore{Store: base}
	repo, err := checkpoint.InitRepo(context.Background(), store, "wordcount", 128)
	if err != nil {
		t.Fatal(err)
	}
	return store, repo
}

// waitWhileRunning polls cond until it holds. The run ending first (done)
// or a minute passing fails t with what was awaited.
func waitWhileRunning(t *testing.T, done <-chan error, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("run ended before %s: %v", what, err)
		case <-deadline:
			t.Fatalf("no %s within a minute", what)
		case <-time.After(time.Millisecond):
		}
	}
}

// A failed checkpoint does not stop processing and commits no output; the
// next checkpoint succeeds and commits what the failed one could not.
func TestRunner_CheckpointFailure(t *testing.T) {
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 3000, 200, 9)
	store, repo := flakyRepo(t, dir)
	spec := wordCountSpec(t, dir, 2)
	// A slow input keeps the run going long enough to see checkpoints fail
	// and recover.
	spec.Input = &slowInput{Input: spec.Input, every: 20, pause: time.Millisecond}
	var results []CheckpointResult // appended on the coordinator's goroutine, read after Run
	r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond,
		OnCheckpoint: func(res CheckpointResult) { results = append(results, res) }})
	if err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()

	waitWhileRunning(t, done, "two failed checkpoints", func() bool { return r.Stats().CheckpointsFailed.Load() >= 2 })
	if n := len(readCounts(t, filepath.Join(dir, "out"))); n != 0 {
		t.Fatalf("%d keys committed while no checkpoint could complete", n)
	}
	// Health turns bad only after StaleAfter intervals without a checkpoint.
	if st := r.Status(); !st.Running || st.FailuresSinceSuccess < 2 || !st.Check(st.StartedAt.Add(time.Millisecond)).Healthy ||
		st.Check(st.StartedAt.Add(time.Second)).Healthy {
		t.Fatalf("status while the store is down: %+v", st)
	}
	in := r.Stats().RecordsIn.Load()
	time.Sleep(20 * time.Millisecond)
	if r.Stats().RecordsIn.Load() == in {
		t.Fatal("processing stopped while checkpoints failed")
	}
	store.down.Store(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Stats().CheckpointsCompleted.Load() == 0 {
		t.Fatal("no checkpoint completed after the store came back")
	}
	if st := r.Status(); st.FailuresSinceSuccess != 0 || st.CheckpointsFailed < 2 {
		t.Fatalf("status after the store came back: %+v", st)
	}
	var failed, completed int64
	for _, res := range results {
		if res.Err != nil {
			failed++
		} else {
			completed++
		}
	}
	if failed != r.Stats().CheckpointsFailed.Load() || completed != r.Stats().CheckpointsCompleted.Load() ||
		results[0].Err == nil || results[len(results)-1].Err != nil {
		t.Fatalf("OnCheckpoint saw %d failed and %d completed (%+v); stats say %d and %d",
			failed, completed, results, r.Stats().CheckpointsFailed.Load(), r.Stats().CheckpointsCompleted.Load())
	}
	got := readCounts(t, filepath.Join(dir, "out"))
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %s: %d, want %d", w, got[w], n)
		}
	}
}

// A checkpoint that fails before it is written (the parent manifest cannot
// be read, the lease cannot be renewed) must keep the epoch's pre-committed
// output: the next checkpoint lists and commits it. Before the coordinator
// took the transactions over ahead of writing, they were dropped on this
// path and every word lost the counts of the failed epochs.
func TestRunner_CheckpointFailureWithLease(t *testing.T) {
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 3000, 200, 11)
	store, repo := flakyRepo(t, dir)
	spec := wordCountSpec(t, dir, 2)
	spec.Input = &slowInput{Input: spec.Input, every: 20, pause: time.Millisecond}
	r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond, Owner: "test-owner", LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	waitWhileRunning(t, done, "a completed checkpoint", func() bool { return r.Stats().CheckpointsCompleted.Load() >= 1 })
	// Reads and writes fail for a few checkpoints, as S3 answering 503.
	store.readsDown.Store(true)
	store.down.Store(true)
	waitWhileRunning(t, done, "three failed checkpoints", func() bool { return r.Stats().CheckpointsFailed.Load() >= 3 })
	store.readsDown.Store(false)
	store.down.Store(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := readCounts(t, filepath.Join(dir, "out"))
	if !maps.Equal(got, want) {
		for w, n := range want {
			if got[w] != n {
				t.Fatalf("word %s: %d committed, want %d", w, got[w], n)
			}
		}
		t.Fatalf("%d words committed, want %d", len(got), len(want))
	}
}

// failingCommitOutput fails its first failures commits, as a full disk or an
// S3 outage during CompleteMultipartUpload would.
type failingCommitOutput struct {
	*FileOutput
	failures atomic.Int64 // commits still to fail; -1 fails them all
}

var errCommitDown = errors.New("injected: commit failed")

func (o *failingCommitOutput) Commit(ctx context.Context, txns []format.PendingTxn) error {
	if len(txns) > 0 {
		if n := o.failures.Load(); n != 0 {
			o.failures.Add(-1)
			return errCommitDown
		}
	}
	return o.FileOutput.Commit(ctx, txns)
}

// An output commit that fails keeps its transactions with the coordinator:
// the stream is unhealthy with the reason while it fails, the next
// checkpoint commits everything, and a commit that never succeeds stops
// the stream with ErrCommitStuck instead of wedging it silently.
func TestRunner_CommitFailure(t *testing.T) {
	t.Run("Recovers", func(t *testing.T) {
		dir := t.TempDir()
		want := writeWords(t, filepath.Join(dir, "input.txt"), 3000, 200, 13)
		repo := openRepo(t, filepath.Join(dir, "state"))
		spec := wordCountSpec(t, dir, 2)
		spec.Input = &slowInput{Input: spec.Input, every: 20, pause: time.Millisecond}
		out := &failingCommitOutput{FileOutput: spec.Output.(*FileOutput)}
		out.failures.Store(4)
		spec.Output = out
		var unhealthy atomic.Value
		r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(context.Background()) }()
		for out.failures.Load() > 0 {
			if st := r.Status(); st.CommitFailures > 0 {
				if h := st.Check(time.Now()); !h.Healthy {
					unhealthy.Store(h.Reason)
				}
			}
			select {
			case err := <-done:
				t.Fatalf("run ended while commits failed: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if reason, _ := unhealthy.Load().(string); !strings.Contains(reason, "output commit failed") || !strings.Contains(reason, errCommitDown.Error()) {
			t.Fatalf("health while commits failed: %q; want unhealthy with the reason", reason)
		}
		if got := readCounts(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
			t.Fatalf("%d words committed, want %d, or counts differ", len(got), len(want))
		}
		if st := r.Status(); st.CommitFailures != 0 || !st.Check(time.Now()).Healthy && st.Running {
			t.Fatalf("status after the commits recovered: %+v", st)
		}
	})
	t.Run("ErrCommitStuck", func(t *testing.T) {
		dir := t.TempDir()
		writeWords(t, filepath.Join(dir, "input.txt"), 3000, 200, 13)
		repo := openRepo(t, filepath.Join(dir, "state"))
		spec := wordCountSpec(t, dir, 2)
		spec.Input = &slowInput{Input: spec.Input, every: 20, pause: time.Millisecond}
		out := &failingCommitOutput{FileOutput: spec.Output.(*FileOutput)}
		out.failures.Store(-1)
		spec.Output = out
		r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond, RetryFor: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Run(context.Background())
		if !errors.Is(err, ErrCommitStuck) || !errors.Is(err, errCommitDown) {
			t.Fatalf("Run = %v; want ErrCommitStuck wrapping the commit's error", err)
		}
		if n := len(readCounts(t, filepath.Join(dir, "out"))); n != 0 {
			t.Fatalf("%d words visible although no commit succeeded", n)
		}
		// The last checkpoint lists every transaction: a restart with a
		// working output commits them all.
		m, err := repo.Manifest(context.Background(), r.Stats().LastCheckpointID.Load())
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Pending) == 0 {
			t.Fatal("the last checkpoint lists no pending transactions")
		}
	})
}

// slowInput pauses every so many records.
type slowInput struct {
	Input
	every int
	pause time.Duration
	n     int
}

func (in *slowInput) Next(ctx context.Context) (Record, json.RawMessage, error) {
	in.n++
	if in.n%in.every == 0 {
		time.Sleep(in.pause)
	}
	rec, pos, err := in.Input.Next(ctx)
	return rec, pos, err
}

// A run whose lease another writer takes over stops with ErrLeaseLost
// instead of failing every checkpoint while duplicating the new owner's
// work.
func TestRunner_ErrLeaseLost(t *testing.T) {
	dir := t.TempDir()
	writeWords(t, filepath.Join(dir, "input.txt"), 3000, 200, 9)
	repo := openRepo(t, dir)
	spec := wordCountSpec(t, dir, 1)
	spec.Input = &slowInput{Input: spec.Input, every: 10, pause: time.Millisecond}
	r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond, Owner: "first"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	for r.Stats().CheckpointsCompleted.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("run ended before its first checkpoint: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	// A second writer declares the first one dead and takes the lease.
	if _, err := repo.AcquireLease(context.Background(), "wordcount", "second", checkpoint.LeaseOptions{Abandoned: func(checkpoint.LeaseRecord) bool { return true }}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, checkpoint.ErrLeaseLost) {
			t.Fatalf("run ended with %v, want ErrLeaseLost", err)
		}
		if h := r.Status().Check(time.Now()); h.Healthy || !strings.Contains(h.Reason, "lease") {
			t.Fatalf("health after losing the lease: %+v", h)
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not stop after losing its lease")
	}
}

// Recovery refuses a latest checkpoint whose segment is damaged, with an
// error naming the file, instead of resuming from an older checkpoint and
// committing its epochs' output twice.
func TestRunner_RestoreErrDamagedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	writeWords(t, filepath.Join(dir, "input.txt"), 4000, 300, 11)
	spec := wordCountSpec(t, dir, 2)
	spec.Input = &slowInput{Input: spec.Input, every: 20, pause: time.Millisecond}
	r, err := NewRunner(spec, Options{Repo: openRepo(t, dir), Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for r.Stats().CheckpointsCompleted.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done

	repo := openRepo(t, dir)
	ids, err := repo.IDs(context.Background())
	if err != nil || len(ids) == 0 {
		t.Fatalf("checkpoints %v, %v", ids, err)
	}
	newest, err := repo.Manifest(context.Background(), ids[len(ids)-1])
	if err != nil {
		t.Fatal(err)
	}
	l := newest.Operators[0].Ranges[0].Layers[0]
	seg := filepath.Join(dir, "state", filepath.FromSlash(format.SegmentPath(l.Hash)))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x40
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := readCounts(t, filepath.Join(dir, "out"))

	r, err = NewRunner(wordCountSpec(t, dir, 2), Options{Repo: openRepo(t, dir), Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background())
	var ce *format.CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), l.Hash) {
		t.Fatalf("restore of a damaged checkpoint: %v; want a CorruptError naming %s", err, l.Hash)
	}
	if after := readCounts(t, filepath.Join(dir, "out")); !maps.Equal(before, after) {
		t.Fatal("output changed although nothing could be restored")
	}
}

// A standby started with WaitForLease waits while the active runner holds
// the lease, reports itself healthy meanwhile, and takes over when the active
// one stops: from its last checkpoint, with every count committed exactly
// once.
func TestRunner_WaitForLease(t *testing.T) {
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 3000, 200, 11)
	repo := openRepo(t, dir)
	spec := wordCountSpec(t, dir, 1)
	// The active runner follows the file, so it holds the lease until it
	// is stopped however fast or slow the machine is.
	spec.Input = &FileInput{Path: filepath.Join(dir, "input.txt"), Follow: true}
	active, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond, Owner: "active", LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopActive := context.WithCancel(context.Background())
	activeDone := make(chan error, 1)
	go func() { activeDone <- active.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for active.Stats().CheckpointsCompleted.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the active runner completed no checkpoint")
		}
		time.Sleep(time.Millisecond)
	}

	standby, err := NewRunner(wordCountSpec(t, dir, 2), Options{Repo: repo, Interval: 5 * time.Millisecond, Owner: "standby",
		LeaseTTL: time.Minute, WaitForLease: true})
	if err != nil {
		t.Fatal(err)
	}
	standbyDone := make(chan error, 1)
	go func() { standbyDone <- standby.Run(context.Background()) }()
	for !standby.Status().WaitingForLease {
		if time.Now().After(deadline) {
			t.Fatal("the standby never waited for the lease")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if st := standby.Status(); st.RecordsIn != 0 || !st.Check(time.Now().Add(time.Hour)).Healthy {
		t.Fatalf("standby while waiting: %+v", st)
	}

	stopActive()
	if err := <-activeDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("active runner: %v", err)
	}
	if err := <-standbyDone; err != nil {
		t.Fatalf("standby after taking over: %v", err)
	}
	if st := standby.Status(); st.WaitingForLease || st.RestoredFrom == 0 || st.CheckpointsCompleted == 0 {
		t.Fatalf("standby after taking over: %+v", st)
	}
	got := readCounts(t, filepath.Join(dir, "out"))
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %s: %d, want %d", w, got[w], n)
		}
	}
}

// Checkpoints that keep failing stop the stream with ErrCheckpointStuck,
// naming the store's error, instead of retrying for ever (a bounded job
// would never end); nothing becomes visible, and a restart with the store
// back resumes from the last checkpoint and commits every count once.
func TestRunner_ErrCheckpointStuck(t *testing.T) {
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 3000, 200, 9)
	store, repo := flakyRepo(t, dir)
	spec := wordCountSpec(t, dir, 2)
	store.down.Store(true)
	r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond, RetryFor: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cancel()
		<-done
		t.Fatalf("still running after %d failed checkpoints over 30 s", r.Stats().CheckpointsFailed.Load())
	}
	if !errors.Is(err, ErrCheckpointStuck) || !errors.Is(err, errDown) {
		t.Fatalf("Run = %v; want ErrCheckpointStuck wrapping the store's error", err)
	}
	if n := r.Stats().CheckpointsFailed.Load(); n < MinFailures {
		t.Fatalf("stopped after %d failed checkpoints, want at least %d", n, MinFailures)
	}
	if n := len(readCounts(t, filepath.Join(dir, "out"))); n != 0 {
		t.Fatalf("%d words visible although no checkpoint completed", n)
	}
	store.down.Store(false)
	r, err = NewRunner(wordCountSpec(t, dir, 2), Options{Repo: repo, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("restart with the store back: %v", err)
	}
	if got := readCounts(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
		t.Fatalf("%d words committed, want %d, or counts differ", len(got), len(want))
	}
}
