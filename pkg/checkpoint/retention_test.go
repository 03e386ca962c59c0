package checkpoint_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// longHistory writes 10 checkpoints of the synthetic job into a new
// directory store: 1 full and 2..8 incremental on it (a chain of 8 layers,
// DefaultMaxChain), then 9 full and 10 incremental on 9.
func longHistory(t *testing.T) (*checkpoint.Repo, *checkpointtest.Job, string) {
	t.Helper()
	root := t.TempDir()
	s := storetest.NewDir(t, root)
	j := checkpointtest.NewJob(t, s)
	for i := range 10 {
		j.Apply(t, i*50, i*50+300)
		if i == 4 {
			j.Delete(t, 0, 20)
		}
		j.Checkpoint(t)
	}
	if m := checkpointtest.Manifest(t, j.Repo, 9); m.Kind != format.KindFull {
		t.Fatalf("checkpoint 9 is %s, the history needs it full", m.Kind)
	}
	return j.Repo, j, root
}

func ids(t testing.TB, r *checkpoint.Repo) []uint64 {
	t.Helper()
	out, err := r.IDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// orphanNames returns the names of the orphans with the given action.
func orphanNames(rep *checkpoint.GCReport, action string) []string {
	var out []string
	for _, o := range rep.Orphans {
		if o.Action == action {
			out = append(out, o.Name)
		}
	}
	return out
}

// setAge backdates a file of a directory store.
func setAge(t testing.TB, root, name string, age time.Duration) {
	t.Helper()
	at := time.Now().Add(-age)
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(name)), at, at); err != nil {
		t.Fatal(err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		r, j, _ := longHistory(t)
		var calls int
		var last, total int64
		progress := func(done, tot int64) { calls, last, total = calls+1, done, tot }
		rep, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 1, Grace: -1, Progress: progress})
		if err != nil {
			t.Fatal(err)
		}
		// The progress follows the GC that frees the deleted checkpoints' bytes.
		if rep.GC == nil || calls != rep.GC.Deleted || last != total || total != rep.GC.DeletedBytes || total == 0 {
			t.Fatalf("%d progress calls ending at %d of %d; gc %+v", calls, last, total, rep.GC)
		}
		if got := ids(t, r); !slices.Equal(got, []uint64{9, 10}) {
			t.Fatalf("checkpoints left %v", got)
		}
		if !slices.Equal(rep.Deleted, []uint64{1, 2, 3, 4, 5, 6, 7, 8}) || len(rep.Kept) != 2 {
			t.Fatalf("report %+v", rep)
		}
		if rep.Kept[0].ID != 9 || !strings.Contains(rep.Kept[0].Reason, "ancestor of 10") {
			t.Fatalf("kept %+v, want 9 kept as the ancestor of 10", rep.Kept)
		}
		if len(checkpointtest.Names(t, r.Store(), "checkpoints/")) != 2 {
			t.Fatalf("checkpoint directories left: %v", checkpointtest.Names(t, r.Store(), "checkpoints/"))
		}
		if rep.GC == nil || rep.GC.Deleted == 0 || rep.GC.Deleted != len(orphanNames(rep.GC, checkpoint.ActionDeleted)) {
			t.Fatalf("gc %+v", rep.GC)
		}
		// What is left is exactly what 9 and 10 reference, and it restores.
		gc, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(gc.Orphans) != 0 || gc.Referenced != gc.Segments || !slices.Equal(gc.Checkpoints, []uint64{9, 10}) {
			t.Fatalf("second gc %+v", gc)
		}
		checkCounts(t, r, checkpointtest.Manifest(t, r, 10), j)
	})

	t.Run("OKKeepsChain", func(t *testing.T) {
		r, _, root := longHistory(t)
		before := checkpointtest.TreeHashes(t, root)
		// Checkpoint 8 is incremental all the way back to 1.
		rep, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 3, Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Deleted) != 0 || len(rep.Kept) != 10 || rep.GC.Deleted != 0 {
			t.Fatalf("report %+v", rep)
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("prune that keeps everything changed the store")
		}
	})

	t.Run("OKDryRun", func(t *testing.T) {
		r, _, root := longHistory(t)
		before := checkpointtest.TreeHashes(t, root)
		dry, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 1, DryRun: true, Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("dry run changed the store")
		}
		real, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 1, Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		would, did := orphanNames(dry.GC, checkpoint.ActionWouldDelete), orphanNames(real.GC, checkpoint.ActionDeleted)
		if !slices.Equal(dry.Deleted, real.Deleted) || len(would) == 0 || !slices.Equal(would, did) {
			t.Fatalf("dry run would delete %v and %d objects, prune deleted %v and %d", dry.Deleted, len(would), real.Deleted, len(did))
		}
	})

	t.Run("OKGraceKeepsYoungSegments", func(t *testing.T) {
		r, _, _ := longHistory(t)
		rep, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Everything was written just now: the pruned checkpoints'
		// segments wait for a later gc.
		if rep.GC.Deleted != 0 || len(orphanNames(rep.GC, checkpoint.ActionGrace)) == 0 || rep.GC.Grace != time.Hour || rep.GC.GraceMS != 3600000 {
			t.Fatalf("gc %+v", rep.GC)
		}
	})

	t.Run("ErrUnreadableManifest", func(t *testing.T) {
		r, _, root := longHistory(t)
		checkpointtest.FlipByte(t, filepath.Join(root, format.ManifestPath(9)), -20)
		before := checkpointtest.TreeHashes(t, root)
		rep, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 1, Grace: -1})
		if !errors.Is(err, checkpoint.ErrUnreadableManifest) || rep == nil || len(rep.Unreadable) != 1 || rep.Unreadable[0].Checkpoint != 9 {
			t.Fatalf("got %v, report %+v", err, rep)
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("prune deleted something although an ancestor's manifest is damaged")
		}
	})

	t.Run("ErrParentMissing", func(t *testing.T) {
		r, _, root := longHistory(t)
		if err := os.Remove(filepath.Join(root, format.ManifestPath(9))); err != nil {
			t.Fatal(err)
		}
		before := checkpointtest.TreeHashes(t, root)
		rep, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 1, Grace: -1})
		if !errors.Is(err, checkpoint.ErrUnreadableManifest) || !strings.Contains(rep.Unreadable[0].Error, "checkpoint 10 builds on it") {
			t.Fatalf("got %v, report %+v", err, rep)
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("prune deleted something although a kept chain is broken")
		}
	})

	t.Run("ErrKeepLast", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		if _, err := checkpoint.Prune(ctx, r, checkpoint.PruneOptions{KeepLast: 0}); err == nil {
			t.Fatal("keep-last 0 accepted")
		}
	})
}

// failedCheckpoint leaves what a checkpoint that crashed before its commit
// leaves: an uploaded segment and a file in a checkpoint directory without
// MANIFEST. It returns both names.
func failedCheckpoint(t *testing.T, r *checkpoint.Repo, id uint64) (seg, other string) {
	t.Helper()
	ctx := context.Background()
	ref := putSegment(t, r, []liveEntry{{state: "count", kg: 3, key: "orphan", value: "x"}}, format.LayerBase, id)
	other = "checkpoints/" + format.CheckpointDir(id) + "/ack-count"
	if err := r.Store().Put(ctx, other, strings.NewReader("ack"), 3); err != nil {
		t.Fatal(err)
	}
	return format.SegmentPath(ref.Hash), other
}

func TestGC(t *testing.T) {
	ctx := context.Background()

	t.Run("OKNothingToDo", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		before := checkpointtest.TreeHashes(t, root)
		rep, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Orphans) != 0 || rep.Deleted != 0 || rep.Segments == 0 || rep.Referenced != rep.Segments {
			t.Fatalf("report %+v", rep)
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("gc of a clean store changed it")
		}
	})

	t.Run("OKFailedCheckpoint", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		seg, other := failedCheckpoint(t, r, 4)
		rep, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Orphans) != 2 || rep.Deleted != 0 {
			t.Fatalf("report %+v", rep)
		}
		want := map[string]checkpoint.Orphan{
			other: {Kind: checkpoint.OrphanUnfinished, Reason: "checkpoint directory without MANIFEST (unfinished or failed checkpoint)", Bytes: 3},
			seg:   {Kind: checkpoint.OrphanSegment, Reason: "segment not referenced by any checkpoint"},
		}
		for _, o := range rep.Orphans {
			w, ok := want[o.Name]
			if !ok || o.Kind != w.Kind || o.Reason != w.Reason || (w.Bytes != 0 && o.Bytes != w.Bytes) || o.Bytes == 0 || o.Action != checkpoint.ActionGrace {
				t.Fatalf("orphan %+v", o)
			}
		}
		// Once older than the grace period they go.
		setAge(t, root, seg, 2*time.Hour)
		setAge(t, root, other, 2*time.Hour)
		rep, err = checkpoint.GC(ctx, r, checkpoint.GCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Deleted != 2 || len(orphanNames(rep, checkpoint.ActionDeleted)) != 2 {
			t.Fatalf("report %+v", rep)
		}
		for _, name := range []string{seg, other} {
			if _, err := r.Store().Stat(ctx, name); !errors.Is(err, store.ErrNotExist) {
				t.Fatalf("%s survived gc: %v", name, err)
			}
		}
		checkCounts(t, r, checkpointtest.Manifest(t, r, 3), j)
	})

	t.Run("OKGrace", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		old, _ := failedCheckpoint(t, r, 4)
		young := format.SegmentPath(putSegment(t, r, []liveEntry{{state: "count", kg: 9, key: "young", value: "y"}}, format.LayerBase, 5).Hash)
		setAge(t, root, old, 61*time.Minute)
		setAge(t, root, young, 59*time.Minute)
		rep, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(orphanNames(rep, checkpoint.ActionDeleted), []string{old}) || !slices.Contains(orphanNames(rep, checkpoint.ActionGrace), young) {
			t.Fatalf("report %+v", rep)
		}
	})

	t.Run("OKDryRun", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		seg, other := failedCheckpoint(t, r, 4)
		before := checkpointtest.TreeHashes(t, root)
		rep, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{DryRun: true, Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		if got := orphanNames(rep, checkpoint.ActionWouldDelete); !slices.Equal(got, []string{other, seg}) || rep.Deleted != 0 {
			t.Fatalf("would delete %v", got)
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("dry run changed the store")
		}
	})

	t.Run("OKTemporaryFiles", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		tmpOld := "segments/ab/.arkstate-tmp-111"
		tmpYoung := ".arkstate-tmp-222"
		for _, name := range []string{tmpOld, tmpYoung} {
			p := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		setAge(t, root, tmpOld, 2*time.Hour)
		rep, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Orphans) != 2 || rep.Orphans[0].Kind != checkpoint.OrphanTemporary || rep.Orphans[0].Reason != "temporary upload" || rep.Orphans[1].Bytes != 7 {
			t.Fatalf("orphans %+v", rep.Orphans)
		}
		if got := orphanNames(rep, checkpoint.ActionDeleted); !slices.Equal(got, []string{tmpOld}) {
			t.Fatalf("deleted %v", got)
		}
		if _, err := os.Stat(filepath.Join(root, tmpOld)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s survived: %v", tmpOld, err)
		}
		if _, err := os.Stat(filepath.Join(root, ".arkstate-lock")); err != nil {
			t.Fatalf("the store's lock file is gone: %v", err)
		}
	})

	t.Run("OKUnknownObjectKept", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		if err := r.Store().Put(ctx, "segments/README", strings.NewReader("hi"), 2); err != nil {
			t.Fatal(err)
		}
		rep, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Orphans) != 1 || rep.Orphans[0].Kind != checkpoint.OrphanUnknown || rep.Orphans[0].Action != checkpoint.ActionUnknown {
			t.Fatalf("orphans %+v", rep.Orphans)
		}
		if _, err := r.Store().Stat(ctx, "segments/README"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("OKS3", func(t *testing.T) {
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		s := storetest.NewS3(t, bucket, "gc/job", storetest.S3Options(srv))
		j := checkpointtest.Standard(t, s)
		seg, other := failedCheckpoint(t, j.Repo, 4)
		// A crashed writer's multipart upload, one part uploaded.
		key := "gc/job/segments/ff/" + strings.Repeat("f", 64) + ".seg"
		client := srv.Client()
		up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: strings.NewReader("part one")}); err != nil {
			t.Fatal(err)
		}
		rep, err := checkpoint.GC(ctx, j.Repo, checkpoint.GCOptions{Grace: -1})
		if err != nil {
			t.Fatal(err)
		}
		if got := orphanNames(rep, checkpoint.ActionDeleted); len(got) != 3 || !slices.Contains(got, seg) || !slices.Contains(got, other) {
			t.Fatalf("deleted %v", got)
		}
		var tmp checkpoint.Orphan
		for _, o := range rep.Orphans {
			if o.Kind == checkpoint.OrphanTemporary {
				tmp = o
			}
		}
		if tmp.Upload != aws.ToString(up.UploadId) || tmp.Bytes != 8 || tmp.Name != strings.TrimPrefix(key, "gc/job/") {
			t.Fatalf("temporary upload %+v", tmp)
		}
		uploads, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(uploads.Uploads); n != 0 {
			t.Fatalf("%d multipart uploads left", n)
		}
		checkCounts(t, j.Repo, checkpointtest.Manifest(t, j.Repo, 3), j)
	})

	t.Run("ErrUnreadableManifest", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		failedCheckpoint(t, r, 4)
		checkpointtest.FlipByte(t, filepath.Join(root, format.ManifestPath(2)), -30)
		before := checkpointtest.TreeHashes(t, root)
		rep, err := checkpoint.GC(ctx, r, checkpoint.GCOptions{Grace: -1})
		if !errors.Is(err, checkpoint.ErrUnreadableManifest) || rep == nil {
			t.Fatalf("got %v", err)
		}
		if len(rep.Unreadable) != 1 || rep.Unreadable[0].Checkpoint != 2 || rep.Deleted != 0 {
			t.Fatalf("report %+v", rep)
		}
		// The failed checkpoint's objects are orphans, but checkpoint 2
		// might have named them: they stay.
		if len(rep.Orphans) != 2 || len(orphanNames(rep, checkpoint.ActionBlocked)) != len(rep.Orphans) {
			t.Fatalf("orphans %+v", rep.Orphans)
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("gc deleted something although a manifest is unreadable")
		}
	})
}
