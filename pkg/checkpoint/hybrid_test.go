package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/faults"
	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// hybridOpts retries failed copies quickly, so fault tests run in
// milliseconds.
var hybridOpts = store.HybridOptions{
	Layout:       checkpoint.HybridLayout(),
	MinBackoff:   2 * time.Millisecond,
	MaxBackoff:   20 * time.Millisecond,
	CloseTimeout: time.Minute,
}

// newHybrid opens a hybrid store over a dir store at root and remote.
func newHybrid(t *testing.T, root string, remote store.Store, opts store.HybridOptions) *store.HybridStore {
	t.Helper()
	local, err := store.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	h := store.NewHybridWithOptions(local, remote, opts)
	t.Cleanup(func() { h.Close() })
	return h
}

// proxiedS3 returns an S3 store of bucket/prefix whose requests pass
// through a fault proxy.
func proxiedS3(t *testing.T, srv *s3test.Server, bucket, prefix string) (*store.S3Store, *faults.Proxy) {
	t.Helper()
	p, err := faults.New(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	opts := storetest.S3Options(srv)
	opts.Endpoint = p.URL
	opts.MaxAttempts = 2
	opts.MaxBackoff = time.Millisecond
	return storetest.NewS3(t, bucket, prefix, opts), p
}

// hybridObjects lists a store's names outside leases/.
func hybridObjects(t *testing.T, s store.Store) []string {
	t.Helper()
	var names []string
	for info, err := range s.List(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(info.Name, "leases/") {
			names = append(names, info.Name)
		}
	}
	return names
}

// checkReplicated flushes h and checks that its remote store holds exactly
// the local objects with the same bytes. A closed store is left alone.
func checkReplicated(t *testing.T, h *store.HybridStore) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Flush(ctx); errors.Is(err, store.ErrClosed) {
		return
	} else if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	local, remote := hybridObjects(t, h.Local()), hybridObjects(t, h.Remote())
	if !slices.Equal(local, remote) {
		t.Fatalf("after Flush the remote store holds %q; the local one %q", remote, local)
	}
	for _, name := range local {
		if !bytes.Equal(checkpointtest.ReadObject(t, h.Local(), name), checkpointtest.ReadObject(t, h.Remote(), name)) {
			t.Fatalf("%s differs between the local and the remote store", name)
		}
	}
	if st := h.Stats(); st.Queued != 0 || st.QueuedBytes != 0 || st.Conflicts != 0 {
		t.Fatalf("Stats after Flush = %+v; want nothing queued and no conflicts", st)
	}
}

// TestHybridStore runs the conformance suite against a directory plus the
// real S3 server, and after every case checks that the background copies
// left S3 holding exactly the directory's objects.
func TestHybridStore(t *testing.T) {
	srv := s3Server.Get(t)
	bucket := srv.NewBucket(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		remote := storetest.NewS3(t, bucket, fmt.Sprintf("hybrid/%d", n.Add(1)), storetest.S3Options(srv))
		h := newHybrid(t, t.TempDir(), remote, hybridOpts)
		// Cleanups run last first: this one before the Close above.
		t.Cleanup(func() { checkReplicated(t, h) })
		return h
	})
}

func TestHybridStore_Location(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		local, remote := store.NewMem("local"), store.NewMem("remote")
		h := store.NewHybrid(local, remote)
		defer h.Close()
		if got, want := h.Location(), "hybrid("+local.Location()+" + "+remote.Location()+")"; got != want {
			t.Fatalf("Location() = %q; want %q", got, want)
		}
	})
}

// jobState reads the synthetic job's whole state for words [0, 700) from
// backends restored from checkpoint m of r, one per operator at parallelism
// 1, as a printable list.
func jobState(t *testing.T, r *checkpoint.Repo, m *format.Manifest) []string {
	t.Helper()
	ctx := context.Background()
	backends := map[string]*state.Backend{}
	for _, op := range []string{"count", "dedupe"} {
		b, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.RestoreBackend(ctx, m, op, b); err != nil {
			t.Fatalf("RestoreBackend(%s) from %s: %v", op, r.Store().Location(), err)
		}
		backends[op] = b
	}
	counts, err := state.NewValue(backends["count"], state.Descriptor[uint64]{Name: "count"})
	if err != nil {
		t.Fatal(err)
	}
	windows, err := state.NewMap[string](backends["count"], state.Descriptor[uint64]{Name: "windows"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := state.NewList(backends["dedupe"], state.Descriptor[string]{Name: "seen"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range 700 {
		w := checkpointtest.Word(i)
		n, ok, err := counts.Get(w)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%s count=%d,%t", w, n, ok)
		if err := windows.All(w, func(k string, v uint64) bool {
			line += fmt.Sprintf(" %s=%d", k, v)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		l, err := seen.Get(w)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s seen=%q", line, l))
	}
	return out
}

func TestHybridStore_Restore(t *testing.T) {
	t.Run("OKFromS3OnAnEmptyDisk", func(t *testing.T) {
		// A machine writes checkpoints and loses its disk; a new machine
		// with an empty directory restores the latest one from S3 alone,
		// and goes on checkpointing there.
		ctx := context.Background()
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		root := t.TempDir()
		h := newHybrid(t, root, storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)), hybridOpts)
		j := checkpointtest.Standard(t, h)
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		st := h.Stats()
		if st.Queued != 0 || st.Copied == 0 || st.Failed != 0 || st.Conflicts != 0 || st.CopiedBytes == 0 {
			t.Fatalf("Stats after Flush = %+v", st)
		}
		want := jobState(t, j.Repo, checkpointtest.Manifest(t, j.Repo, 3))
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}

		fresh := newHybrid(t, t.TempDir(), storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)), hybridOpts)
		if _, err := checkpoint.InitRepo(ctx, fresh, "another-job", checkpointtest.KeyGroups); !errors.Is(err, checkpoint.ErrJobMismatch) {
			t.Fatalf("InitRepo of another job over the S3 copy: %v; want ErrJobMismatch", err)
		}
		r, err := checkpoint.InitRepo(ctx, fresh, checkpointtest.JobID, checkpointtest.KeyGroups)
		if err != nil {
			t.Fatal(err)
		}
		latest, err := r.Latest(ctx)
		if err != nil || latest != 3 {
			t.Fatalf("Latest = %d, %v; want 3", latest, err)
		}
		m := checkpointtest.Manifest(t, r, latest)
		if got := jobState(t, r, m); !slices.Equal(got, want) {
			t.Fatalf("state restored from S3 differs from the original:\n%s", firstDiff(got, want))
		}
		for i := range 700 {
			w := checkpointtest.Word(i)
			if live, _ := j.Count(t, w); !strings.Contains(want[i], fmt.Sprintf("count=%d,", live)) {
				t.Fatalf("%s: restored %q; the live job counts %d", w, want[i], live)
			}
		}
		if got := hybridObjects(t, fresh.Local()); len(got) != 0 {
			t.Fatalf("restoring wrote %q to the local store", got)
		}
		if err := r.Commit(ctx, m); !errors.Is(err, checkpoint.ErrCheckpointExists) {
			t.Fatalf("committing checkpoint 3 again on the new machine: %v; want ErrCheckpointExists", err)
		}

		// Checkpoint 4 from the restored state reaches S3 with its segments.
		bld, err := r.NewCheckpoint(ctx, 4, 3, checkpoint.BuilderOptions{SpoolDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"count", "dedupe"} {
			b, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.RestoreBackend(ctx, m, op, b); err != nil {
				t.Fatal(err)
			}
			snap := b.Snapshot(state.Full)
			err = bld.AddSnapshot(ctx, op, b.Range(), snap)
			snap.Release(err == nil)
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := bld.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := fresh.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		s3Only, err := checkpoint.OpenRepo(ctx, storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)))
		if err != nil {
			t.Fatal(err)
		}
		if got := jobState(t, s3Only, checkpointtest.Manifest(t, s3Only, 4)); !slices.Equal(got, want) {
			t.Fatalf("checkpoint 4 read from S3 differs from the original state:\n%s", firstDiff(got, want))
		}
	})
}

// A restore through a hybrid store whose local copy of a segment is damaged
// reads that segment from S3 and gets the whole state; the local copy is
// left for verify to report. Damage on both sides is an error naming the
// segment.
func TestHybridStore_RestoreLocalDamage(t *testing.T) {
	ctx := context.Background()
	srv := s3Server.Get(t)
	bucket := srv.NewBucket(t)
	root := t.TempDir()
	remote := storetest.NewS3(t, bucket, "job", storetest.S3Options(srv))
	h := newHybrid(t, root, remote, hybridOpts)
	j := checkpointtest.Standard(t, h)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m := checkpointtest.Manifest(t, j.Repo, 3)
	want := jobState(t, j.Repo, m)

	// Flip a byte inside the first block of checkpoint 3's base layer.
	ref := m.Operators[0].Ranges[0].Layers[0]
	name := format.SegmentPath(ref.Hash)
	local := filepath.Join(root, filepath.FromSlash(name))
	data, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	good := slices.Clone(data)
	data[len(data)/4] ^= 0x40
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A plain directory store over the same files refuses it.
	dir, err := store.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	dirRepo, err := checkpoint.OpenRepo(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
	var ce *format.CorruptError
	if err := dirRepo.RestoreBackend(ctx, m, m.Operators[0].ID, b); !errors.As(err, &ce) || ce.File != name {
		t.Fatalf("restore from the damaged directory: %v; want a CorruptError naming %s", err, name)
	}

	if got := jobState(t, j.Repo, m); !slices.Equal(got, want) {
		t.Fatalf("state restored past a damaged local segment differs:\n%s", firstDiff(got, want))
	}
	if st := h.Stats(); st.ReadFromRemote != 1 {
		t.Fatalf("ReadFromRemote = %d, want 1", st.ReadFromRemote)
	}
	if !bytes.Equal(checkpointtest.ReadObject(t, h.Local(), name), data) {
		t.Fatal("the damaged local copy was changed")
	}

	// The remote copy damaged too: the error names the segment.
	bad := slices.Clone(good)
	bad[len(bad)/4] ^= 0x40
	if err := remote.Put(ctx, name, bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	b, _ = state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
	if err := j.Repo.RestoreBackend(ctx, m, m.Operators[0].ID, b); !errors.As(err, &ce) || ce.File != name {
		t.Fatalf("restore with both copies damaged: %v; want a CorruptError naming %s", err, name)
	}
}

// TestHybridStore_ScanKeepsRemoteCopy damages a local segment's size, which
// the start-up scan takes for an interrupted copy: the copy must be refused,
// or the damaged bytes would replace the good remote copy.
func TestHybridStore_ScanKeepsRemoteCopy(t *testing.T) {
	ctx := context.Background()
	srv := s3Server.Get(t)
	bucket := srv.NewBucket(t)
	root := t.TempDir()
	remote := storetest.NewS3(t, bucket, "job", storetest.S3Options(srv))
	h := newHybrid(t, root, remote, hybridOpts)
	j := checkpointtest.Standard(t, h)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m := checkpointtest.Manifest(t, j.Repo, 3)
	name := format.SegmentPath(m.Operators[0].Ranges[0].Layers[0].Hash)
	good := checkpointtest.ReadObject(t, remote, name)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(root, filepath.FromSlash(name))
	if err := os.Truncate(local, int64(len(good)/2)); err != nil {
		t.Fatal(err)
	}

	h2 := newHybrid(t, root, storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)), hybridOpts)
	if err := h2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := checkpointtest.ReadObject(t, h2.Remote(), name); !bytes.Equal(got, good) {
		t.Fatalf("the remote copy of %s changed (%d bytes, was %d): the scan copied a damaged local segment", name, len(got), len(good))
	}
	if st := h2.Stats(); st.DamagedLocal != 1 || st.Copied != 0 || !strings.Contains(st.LastError, name) {
		t.Fatalf("Stats = %+v; want one DamagedLocal naming %s and no copies", st, name)
	}
	if fi, err := os.Stat(local); err != nil || fi.Size() != int64(len(good)/2) {
		t.Fatalf("the damaged local copy was changed: %v, %v", fi, err)
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("got  %s\nwant %s", got[i], want[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(got), len(want))
}

// putLog records the object names of the PUT requests a fault proxy let
// through to the server, in order, failing those its policy picks.
type putLog struct {
	prefix string // "/bucket/prefix/"
	fail   func(n int) bool

	mu     sync.Mutex
	n      int
	passed []string
}

// rule returns the proxy rule that applies the log's policy to every PUT.
func (l *putLog) rule() faults.Rule {
	return faults.Rule{Method: http.MethodPut, Fault: faults.InternalError, Match: func(r *http.Request) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.n++
		if l.fail != nil && l.fail(l.n) {
			return true
		}
		if name, ok := strings.CutPrefix(r.URL.Path, l.prefix); ok {
			l.passed = append(l.passed, name)
		}
		return false
	}}
}

func (l *putLog) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.passed)
}

// checkManifestOrder checks that every manifest in puts follows the puts of
// all the segments it names that were not on S3 before (in already),
// reading the manifests from s.
func checkManifestOrder(t *testing.T, s store.Store, already, puts []string) {
	t.Helper()
	ctx := context.Background()
	r, err := checkpoint.OpenRepo(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	manifests := 0
	for i, name := range puts {
		id, ok := manifestID(name)
		if !ok {
			continue
		}
		manifests++
		before := append(slices.Clone(already), puts[:i]...)
		for _, o := range checkpointtest.Manifest(t, r, id).Operators {
			for _, rs := range o.Ranges {
				for _, l := range rs.Layers {
					if !slices.Contains(before, format.SegmentPath(l.Hash)) {
						t.Fatalf("%s reached S3 before its segment %s; uploads in order: %q", name, format.SegmentPath(l.Hash), puts)
					}
				}
			}
		}
	}
	if manifests == 0 {
		t.Fatalf("no manifest among the uploads %q", puts)
	}
}

func manifestID(name string) (uint64, bool) {
	dir, ok := strings.CutPrefix(name, "checkpoints/")
	if !ok {
		return 0, false
	}
	dir, ok = strings.CutSuffix(dir, "/MANIFEST")
	if !ok {
		return 0, false
	}
	return format.ParseCheckpointDir(dir)
}

// checkS3Complete checks what S3 holds right now: every manifest listed
// names only segments that are there already.
func checkS3Complete(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	r, err := checkpoint.OpenRepo(ctx, s)
	if errors.Is(err, checkpoint.ErrNotRepo) {
		return // nothing copied yet: the marker goes first
	}
	if err != nil {
		t.Fatal(err)
	}
	ids, err := r.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		for _, o := range checkpointtest.Manifest(t, r, id).Operators {
			for _, rs := range o.Ranges {
				for _, l := range rs.Layers {
					if _, err := s.Stat(ctx, format.SegmentPath(l.Hash)); err != nil {
						t.Fatalf("S3 lists checkpoint %d but not its segment: %v", id, err)
					}
				}
			}
		}
	}
}

func TestHybridStore_Faults(t *testing.T) {
	t.Run("OKRetriedInOrder", func(t *testing.T) {
		ctx := context.Background()
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		remote, p := proxiedS3(t, srv, bucket, "job")
		direct := storetest.NewS3(t, bucket, "job", storetest.S3Options(srv))
		// S3 refuses every upload while the job writes its checkpoints.
		down := &putLog{prefix: "/" + bucket + "/job/", fail: func(int) bool { return true }}
		p.Add(down.rule())
		h := newHybrid(t, t.TempDir(), remote, hybridOpts)
		checkpointtest.Standard(t, h)
		for h.Stats().Failed < 3 {
			time.Sleep(time.Millisecond)
		}
		if got := hybridObjects(t, direct); len(got) != 0 {
			t.Fatalf("S3 holds %q while every upload fails", got)
		}
		if st := h.Stats(); st.Queued == 0 || st.Copied != 0 || st.LastError == "" {
			t.Fatalf("Stats while S3 fails = %+v; want copies queued, none made, a last error", st)
		}

		// Now two of every three uploads fail: each copy fails once (two
		// attempts of the S3 store) and then passes.
		p.Clear()
		flaky := &putLog{prefix: "/" + bucket + "/job/", fail: func(n int) bool { return n%3 != 0 }}
		p.Add(flaky.rule())
		failedBefore := h.Stats().Failed
		for h.Stats().Queued > 0 {
			checkS3Complete(t, direct)
			time.Sleep(time.Millisecond)
		}
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		st := h.Stats()
		if st.Failed-failedBefore < st.Copied || st.Conflicts != 0 {
			t.Fatalf("Stats = %+v; want a failed attempt (beyond the %d before) per copy and no conflicts", st, failedBefore)
		}
		checkManifestOrder(t, direct, nil, flaky.names())
		checkS3Complete(t, direct)
		checkReplicated(t, h)
	})
}

func TestHybridStore_Copy(t *testing.T) {
	ctx := context.Background()
	const name = "checkpoints/chk-00000000000000000007/MANIFEST"
	// twoWriters commits name with content a through a hybrid store whose
	// uploads fail, then with content b through another over the same S3
	// prefix, and lets the first one's uploads through again.
	twoWriters := func(t *testing.T, a, b string) (first *store.HybridStore, direct *store.S3Store) {
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		remote, p := proxiedS3(t, srv, bucket, "job")
		p.Add(faults.Rule{Method: http.MethodPut, Fault: faults.SlowDown})
		first = newHybrid(t, t.TempDir(), remote, hybridOpts)
		second := newHybrid(t, t.TempDir(), storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)), hybridOpts)
		if _, err := first.PutIf(ctx, name, strings.NewReader(a), int64(len(a)), store.Condition{IfNoneMatch: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := second.PutIf(ctx, name, strings.NewReader(b), int64(len(b)), store.Condition{IfNoneMatch: true}); err != nil {
			t.Fatal(err)
		}
		if err := second.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for first.Stats().Failed == 0 {
			time.Sleep(time.Millisecond)
		}
		p.Clear()
		return first, storetest.NewS3(t, bucket, "job", storetest.S3Options(srv))
	}
	t.Run("ErrConflict", func(t *testing.T) {
		first, direct := twoWriters(t, "first writer", "second writer")
		err := first.Flush(ctx)
		if !errors.Is(err, store.ErrPreconditionFailed) || !strings.Contains(err.Error(), name) {
			t.Fatalf("Flush after a lost create-only copy: %v; want ErrPreconditionFailed naming %s", err, name)
		}
		if st := first.Stats(); st.Conflicts != 1 || st.Queued != 0 || !strings.Contains(st.LastError, name) {
			t.Fatalf("Stats = %+v; want one conflict naming the object and nothing queued", st)
		}
		if got := string(checkpointtest.ReadObject(t, direct, name)); got != "second writer" {
			t.Fatalf("S3 holds %q; want the second writer's object kept", got)
		}
		// The conflict is not retried, and reported once.
		if err := first.Flush(ctx); err != nil {
			t.Fatalf("second Flush: %v", err)
		}
	})
	t.Run("OKSameContent", func(t *testing.T) {
		// A create-only copy that finds its own bytes (its earlier attempt
		// won unheard) succeeds.
		first, direct := twoWriters(t, "same", "same")
		if err := first.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st := first.Stats(); st.Conflicts != 0 || st.Copied != 1 {
			t.Fatalf("Stats = %+v; want one copy and no conflict", st)
		}
		if got := string(checkpointtest.ReadObject(t, direct, name)); got != "same" {
			t.Fatalf("S3 holds %q", got)
		}
	})
	t.Run("ErrCreateOverRemote", func(t *testing.T) {
		// A create-only write loses against an object only S3 holds.
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		direct := storetest.NewS3(t, bucket, "job", storetest.S3Options(srv))
		if err := direct.Put(ctx, name, strings.NewReader("on s3"), 5); err != nil {
			t.Fatal(err)
		}
		h := newHybrid(t, t.TempDir(), storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)), hybridOpts)
		_, err := h.PutIf(ctx, name, strings.NewReader("local"), 5, store.Condition{IfNoneMatch: true})
		if !errors.Is(err, store.ErrPreconditionFailed) {
			t.Fatalf("create-only write over an S3 object: %v; want ErrPreconditionFailed", err)
		}
		if got := hybridObjects(t, h.Local()); len(got) != 0 {
			t.Fatalf("the lost write left %q in the local store", got)
		}
		// A compare-and-swap on that object is S3's to decide.
		info, err := h.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.PutIf(ctx, name, strings.NewReader("swapped"), 7, store.Condition{IfMatch: info.ETag}); err != nil {
			t.Fatalf("compare-and-swap with the S3 ETag: %v", err)
		}
		if got := string(checkpointtest.ReadObject(t, direct, name)); got != "swapped" {
			t.Fatalf("S3 holds %q after the swap", got)
		}
	})
}

func TestHybridStore_Close(t *testing.T) {
	t.Run("ErrAbandonedThenResumed", func(t *testing.T) {
		// Copies that Close gives up on are made, segments before manifests,
		// by the next hybrid store over the same directory.
		ctx := context.Background()
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		root := t.TempDir()
		remote, p := proxiedS3(t, srv, bucket, "job")
		p.Add(faults.Rule{Method: http.MethodPut, Fault: faults.InternalError})
		opts := hybridOpts
		opts.CloseTimeout = 50 * time.Millisecond
		h := newHybrid(t, root, remote, opts)
		checkpointtest.Standard(t, h)
		local := hybridObjects(t, h.Local())
		err := h.Close()
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "abandoned") {
			t.Fatalf("Close with S3 refusing uploads: %v; want ErrUnavailable about abandoned copies", err)
		}
		direct := storetest.NewS3(t, bucket, "job", storetest.S3Options(srv))
		if got := hybridObjects(t, direct); len(got) != 0 {
			t.Fatalf("S3 holds %q", got)
		}

		// Half the segments reach S3 by other means (a partial earlier
		// copy); the scan must copy only the rest.
		var segs []string
		for _, name := range local {
			if strings.HasPrefix(name, "segments/") {
				segs = append(segs, name)
			}
		}
		for _, name := range segs[:len(segs)/2] {
			data := checkpointtest.ReadObject(t, storetest.NewDir(t, root), name)
			if err := direct.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
		}
		already := hybridObjects(t, direct)
		remote2, p2 := proxiedS3(t, srv, bucket, "job")
		log := &putLog{prefix: "/" + bucket + "/job/"}
		p2.Add(log.rule())
		h2 := newHybrid(t, root, remote2, hybridOpts)
		if err := h2.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st := h2.Stats(); st.Resumed != int64(len(local)-len(already)) || st.Copied != st.Resumed {
			t.Fatalf("Stats = %+v; want %d objects resumed and copied", st, len(local)-len(already))
		}
		puts := log.names()
		if len(puts) == 0 || puts[0] != checkpoint.MarkerName {
			t.Fatalf("resumed uploads %q; want the marker first", puts)
		}
		checkManifestOrder(t, direct, already, puts)
		checkReplicated(t, h2)
	})
	t.Run("ErrClosed", func(t *testing.T) {
		h := store.NewHybrid(store.NewMem("l"), store.NewMem("r"))
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if err := h.Flush(context.Background()); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Flush after Close: %v; want ErrClosed", err)
		}
	})
}

func TestHybridStore_Lease(t *testing.T) {
	t.Run("OKContendedOnS3", func(t *testing.T) {
		// Two machines with their own disks share one S3 prefix: the lease
		// lives on S3 only, so one of them holds it.
		ctx := context.Background()
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		a := newHybrid(t, t.TempDir(), storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)), hybridOpts)
		b := newHybrid(t, t.TempDir(), storetest.NewS3(t, bucket, "job", storetest.S3Options(srv)), hybridOpts)
		ra, err := checkpoint.InitRepo(ctx, a, "job", 16)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rb, err := checkpoint.InitRepo(ctx, b, "job", 16)
		if err != nil {
			t.Fatal(err)
		}
		la, err := ra.AcquireLease(ctx, "writer", "machine-a", checkpoint.LeaseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rb.AcquireLease(ctx, "writer", "machine-b", checkpoint.LeaseOptions{}); !errors.Is(err, checkpoint.ErrLeaseHeld) {
			t.Fatalf("second machine's AcquireLease: %v; want ErrLeaseHeld", err)
		}
		for _, h := range []*store.HybridStore{a, b} {
			for info, err := range h.Local().List(ctx, "leases/") {
				t.Fatalf("lease written to the local store: %q, %v", info.Name, err)
			}
		}
		if err := la.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := rb.AcquireLease(ctx, "writer", "machine-b", checkpoint.LeaseOptions{}); err != nil {
			t.Fatalf("AcquireLease after the release: %v", err)
		}
	})
}

// BenchmarkHybridStore_Checkpoint writes the standard fixture history (3
// checkpoints, 12 segments) to a directory, to S3, and to a hybrid of both
// (timing the writes only, and the writes plus the wait for the copies).
func BenchmarkHybridStore_Checkpoint(b *testing.B) {
	srv := s3Server.Get(b)
	bucket := srv.NewBucket(b)
	var n atomic.Int64
	newRemote := func(b *testing.B) *store.S3Store {
		return storetest.NewS3(b, bucket, fmt.Sprintf("bench/%d", n.Add(1)), storetest.S3Options(srv))
	}
	newLocal := func(b *testing.B) *store.DirStore {
		s, err := store.NewDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	run := func(b *testing.B, open func(b *testing.B) store.Store, flush bool) {
		for b.Loop() {
			b.StopTimer()
			s := open(b)
			b.StartTimer()
			checkpointtest.Standard(b, s)
			if h, ok := s.(*store.HybridStore); ok && flush {
				if err := h.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("dir", func(b *testing.B) {
		run(b, func(b *testing.B) store.Store { return newLocal(b) }, false)
	})
	b.Run("s3", func(b *testing.B) {
		run(b, func(b *testing.B) store.Store { return newRemote(b) }, false)
	})
	b.Run("hybrid", func(b *testing.B) {
		run(b, func(b *testing.B) store.Store {
			return store.NewHybridWithOptions(newLocal(b), newRemote(b), hybridOpts)
		}, false)
	})
	b.Run("hybrid-flushed", func(b *testing.B) {
		run(b, func(b *testing.B) store.Store {
			return store.NewHybridWithOptions(newLocal(b), newRemote(b), hybridOpts)
		}, true)
	})
}
