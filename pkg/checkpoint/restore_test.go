package checkpoint_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// checkRestored checks that dst holds checkpoint id of src and its chain
// byte for byte, that every segment verifies, and that the restored state
// is the live job's.
func checkRestored(t *testing.T, src *checkpoint.Repo, dst store.Store, plan *checkpoint.RestorePlan, j *checkpointtest.Job) {
	t.Helper()
	ctx := context.Background()
	if !plan.Completed {
		t.Fatalf("plan not completed: %+v", plan)
	}
	r, err := checkpoint.OpenRepo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if r.Marker().JobID != src.Marker().JobID || r.Marker().KeyGroups != src.Marker().KeyGroups {
		t.Fatalf("marker %+v", r.Marker())
	}
	ids, err := r.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, plan.Chain) {
		t.Fatalf("target holds checkpoints %v, plan says %v", ids, plan.Chain)
	}
	segs := 0
	for _, id := range ids {
		name := format.ManifestPath(id)
		if !bytes.Equal(checkpointtest.ReadObject(t, dst, name), checkpointtest.ReadObject(t, src.Store(), name)) {
			t.Fatalf("%s differs from the source", name)
		}
		for _, o := range checkpointtest.Manifest(t, r, id).Operators {
			for _, rs := range o.Ranges {
				for _, l := range rs.Layers {
					seg, obj, err := r.OpenSegment(ctx, l)
					if err != nil {
						t.Fatal(err)
					}
					err = seg.Verify()
					obj.Close()
					if err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	for range checkpointtest.Names(t, dst, "segments/") {
		segs++
	}
	if segs != plan.Segments {
		t.Fatalf("target holds %d segments, plan says %d", segs, plan.Segments)
	}
	if j != nil && plan.Checkpoint == 3 {
		checkCounts(t, r, checkpointtest.Manifest(t, r, 3), j)
	}
}

// checkCounts restores operator "count" of m at parallelism 1 and compares
// it with the live job, which is at the state of checkpoint 3.
func checkCounts(t *testing.T, r *checkpoint.Repo, m *format.Manifest, j *checkpointtest.Job) {
	t.Helper()
	b, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RestoreBackend(context.Background(), m, "count", b); err != nil {
		t.Fatal(err)
	}
	v, err := state.NewValue(b, state.Descriptor[uint64]{Name: "count"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 700 {
		want, wantOK := j.Count(t, checkpointtest.Word(i))
		got, ok, err := v.Get(checkpointtest.Word(i))
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("%s: restored %d,%v,%v; live %d,%v", checkpointtest.Word(i), got, ok, err, want, wantOK)
		}
	}
}

func TestRestore(t *testing.T) {
	ctx := context.Background()

	t.Run("OKDirToDir", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		src := j.Repo
		before := checkpointtest.TreeHashes(t, root)
		dst := storetest.NewDir(t, t.TempDir())
		var calls []int64
		var total int64
		plan, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{Concurrency: 2, Progress: func(done, tot int64) {
			calls = append(calls, done)
			total = tot
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(plan.Chain, []uint64{1, 2, 3}) {
			t.Fatalf("chain %v", plan.Chain)
		}
		checkRestored(t, src, dst, plan, j)
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("restore changed the source store")
		}
		if total != plan.SegmentBytes || len(calls) < 2 || calls[len(calls)-1] != total || !slices.IsSorted(calls) {
			t.Fatalf("progress %v of %d, want rising to %d", calls, total, plan.SegmentBytes)
		}
	})

	t.Run("OKChainStopsAtFull", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		src := j.Repo
		dst := storetest.NewDir(t, t.TempDir())
		plan, err := checkpoint.Restore(ctx, src, 2, dst, checkpoint.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(plan.Chain, []uint64{1, 2}) {
			t.Fatalf("chain %v", plan.Chain)
		}
		checkRestored(t, src, dst, plan, nil)
		// Segments only checkpoint 3 wrote are not copied.
		m3 := checkpointtest.Manifest(t, src, 3)
		for _, o := range m3.Operators {
			for _, rs := range o.Ranges {
				name := format.SegmentPath(rs.Layers[len(rs.Layers)-1].Hash)
				if _, err := dst.Stat(ctx, name); !errors.Is(err, store.ErrNotExist) {
					t.Fatalf("%s of checkpoint 3 was copied (stat: %v)", name, err)
				}
			}
		}
	})

	t.Run("OKDirToS3", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		src := j.Repo
		srv := s3Server.Get(t)
		dst := storetest.NewS3(t, srv.NewBucket(t), "restored/job", storetest.S3Options(srv))
		plan, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkRestored(t, src, dst, plan, j)
	})

	t.Run("OKS3ToDir", func(t *testing.T) {
		srv := s3Server.Get(t)
		s3s := storetest.NewS3(t, srv.NewBucket(t), "job", storetest.S3Options(srv))
		j := checkpointtest.Standard(t, s3s)
		dst := storetest.NewDir(t, t.TempDir())
		plan, err := checkpoint.Restore(ctx, j.Repo, 3, dst, checkpoint.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkRestored(t, j.Repo, dst, plan, j)
	})

	t.Run("OKDryRun", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		src := j.Repo
		droot := t.TempDir()
		dst := storetest.NewDir(t, droot)
		plan, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if plan.Completed || !plan.DryRun || plan.Segments == 0 || plan.Files != plan.Segments+4 || plan.Requests == 0 {
			t.Fatalf("dry-run plan %+v", plan)
		}
		if d := checkpointtest.TreeHashes(t, droot); len(d) != 0 {
			t.Fatalf("dry run wrote %v", d)
		}
		// A target that does not exist yet.
		nilPlan, err := checkpoint.Restore(ctx, src, 3, nil, checkpoint.RestoreOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		real, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if real.Segments != plan.Segments || real.SegmentBytes != plan.SegmentBytes || nilPlan.Bytes != plan.Bytes {
			t.Fatalf("dry run planned %+v, restore did %+v", plan, real)
		}
	})

	t.Run("ErrDamagedS3", func(t *testing.T) {
		// From S3 segments are spooled, verified there, then written.
		srv := s3Server.Get(t)
		s3s := storetest.NewS3(t, srv.NewBucket(t), "job", storetest.S3Options(srv))
		j := checkpointtest.Standard(t, s3s)
		name := format.SegmentPath(checkpointtest.Manifest(t, j.Repo, 3).Operators[0].Ranges[1].Layers[0].Hash)
		b := checkpointtest.ReadObject(t, s3s, name)
		b[len(b)/2] ^= 1
		if err := s3s.Put(ctx, name, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		droot := t.TempDir()
		dst := storetest.NewDir(t, droot)
		_, err := checkpoint.Restore(ctx, j.Repo, 3, dst, checkpoint.RestoreOptions{})
		var ce *format.CorruptError
		if !errors.As(err, &ce) || ce.File != name || !errors.Is(err, format.ErrChecksum) {
			t.Fatalf("got %v, want a checksum CorruptError naming %s", err, name)
		}
		d := checkpointtest.TreeHashes(t, droot)
		delete(d, ".arkstate-lock")
		if len(d) != 0 {
			t.Fatalf("failed restore left %v", d)
		}
	})

	t.Run("ErrTargetNotEmpty", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		src := j.Repo
		dst := storetest.NewDir(t, t.TempDir())
		if _, err := checkpoint.Restore(ctx, src, 2, dst, checkpoint.RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{})
		if !errors.Is(err, checkpoint.ErrTargetNotEmpty) {
			t.Fatalf("got %v, want ErrTargetNotEmpty", err)
		}
		_, err = checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{DryRun: true})
		if !errors.Is(err, checkpoint.ErrTargetNotEmpty) {
			t.Fatalf("dry run: got %v, want ErrTargetNotEmpty", err)
		}
		plan, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if !plan.Completed {
			t.Fatal("forced restore did not complete")
		}
		checkCounts(t, src, checkpointtest.Manifest(t, src, 3), j)
	})

	t.Run("ErrJobMismatch", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		src := j.Repo
		dst := storetest.NewDir(t, t.TempDir())
		if _, err := checkpoint.InitRepo(ctx, dst, "other", checkpointtest.KeyGroups); err != nil {
			t.Fatal(err)
		}
		_, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{Force: true})
		if !errors.Is(err, checkpoint.ErrJobMismatch) {
			t.Fatalf("got %v, want ErrJobMismatch", err)
		}
	})

	t.Run("ErrSameStore", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		src := j.Repo
		_, err := checkpoint.Restore(ctx, src, 3, src.Store(), checkpoint.RestoreOptions{Force: true})
		if !errors.Is(err, checkpoint.ErrSameStore) {
			t.Fatalf("got %v, want ErrSameStore", err)
		}
	})

	t.Run("ErrCheckpointNotFound", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		src := j.Repo
		dst := storetest.NewDir(t, t.TempDir())
		_, err := checkpoint.Restore(ctx, src, 7, dst, checkpoint.RestoreOptions{})
		if !errors.Is(err, checkpoint.ErrCheckpointNotFound) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("ErrDamaged", func(t *testing.T) {
		for _, tc := range damageCases() {
			t.Run(tc.name, func(t *testing.T) {
				root, j := checkpointtest.StandardDir(t)
				src := j.Repo
				file := tc.damage(t, src, root)
				droot := t.TempDir()
				dst := storetest.NewDir(t, droot)
				_, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{})
				var ce *format.CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want a CorruptError wrapping %v", err, tc.want)
				}
				if ce.File != file || !strings.Contains(err.Error(), "checkpoint ") {
					t.Fatalf("error %q does not name the checkpoint and %s", err, file)
				}
				// Nothing claims completeness; the empty target is empty again.
				d := checkpointtest.TreeHashes(t, droot)
				delete(d, ".arkstate-lock")
				if len(d) != 0 {
					t.Fatalf("failed restore left %v", d)
				}
			})
		}
	})
}

// TestRestore_DamageMatrix restores checkpoint 3 of every damaged fixture
// of testdata/checkpoints and expects a refusal naming the damaged object,
// with nothing left in the target.
func TestRestore_DamageMatrix(t *testing.T) {
	ctx := context.Background()
	const fixtures = "../../testdata/checkpoints"
	data, err := os.ReadFile(filepath.Join(fixtures, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name       string `json:"name"`
		Object     string `json:"object"`
		Checkpoint uint64 `json:"checkpoint"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no damage cases")
	}
	restore := func(t *testing.T, name string) (*checkpoint.RestorePlan, string, error) {
		root := filepath.Join(t.TempDir(), "src")
		if err := os.CopyFS(root, os.DirFS(filepath.Join(fixtures, name))); err != nil {
			t.Fatal(err)
		}
		s, err := store.NewDir(root)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		src, err := checkpoint.OpenRepo(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		droot := t.TempDir()
		dst := storetest.NewDir(t, droot)
		plan, err := checkpoint.Restore(ctx, src, 3, dst, checkpoint.RestoreOptions{})
		return plan, droot, err
	}
	t.Run("OK", func(t *testing.T) {
		plan, _, err := restore(t, "good")
		if err != nil || !plan.Completed {
			t.Fatalf("good fixture: %v", err)
		}
	})
	for _, tc := range cases {
		t.Run("Err/"+tc.Name, func(t *testing.T) {
			_, droot, err := restore(t, tc.Name)
			var ce *format.CorruptError
			if !errors.As(err, &ce) || ce.File != tc.Object {
				t.Fatalf("got %v, want a CorruptError naming %s", err, tc.Object)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("checkpoint %d", tc.Checkpoint)) {
				t.Fatalf("error %q does not name checkpoint %d", err, tc.Checkpoint)
			}
			d := checkpointtest.TreeHashes(t, droot)
			delete(d, ".arkstate-lock")
			if len(d) != 0 {
				t.Fatalf("failed restore left %v", d)
			}
		})
	}
}

// damageCase damages a standard store and returns the file an error about
// it must name.
type damageCase struct {
	name   string
	want   error
	damage func(t *testing.T, r *checkpoint.Repo, root string) string
}

func damageCases() []damageCase {
	layer := func(t *testing.T, r *checkpoint.Repo, id uint64, op, ri, li int) format.SegmentRef {
		return checkpointtest.Manifest(t, r, id).Operators[op].Ranges[ri].Layers[li]
	}
	return []damageCase{
		{"SegmentMissing", format.ErrTruncated, func(t *testing.T, r *checkpoint.Repo, root string) string {
			name := format.SegmentPath(layer(t, r, 3, 0, 1, 2).Hash)
			if err := os.Remove(filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
			return name
		}},
		{"SegmentTruncated", format.ErrTruncated, func(t *testing.T, r *checkpoint.Repo, root string) string {
			l := layer(t, r, 3, 1, 0, 0)
			name := format.SegmentPath(l.Hash)
			if err := os.Truncate(filepath.Join(root, name), l.Size-7); err != nil {
				t.Fatal(err)
			}
			return name
		}},
		{"SegmentBitFlip", format.ErrChecksum, func(t *testing.T, r *checkpoint.Repo, root string) string {
			name := format.SegmentPath(layer(t, r, 3, 0, 0, 0).Hash)
			checkpointtest.FlipByte(t, filepath.Join(root, name), 20)
			return name
		}},
		{"SegmentFailsVerify", format.ErrChecksum, func(t *testing.T, r *checkpoint.Repo, root string) string {
			// A damaged segment stored under the hash of its damaged bytes
			// and named by checkpoint 3: only block verification finds it.
			return replaceWithDamagedSegment(t, r, root)
		}},
		{"SegmentUnderWrongName", format.ErrChecksum, func(t *testing.T, r *checkpoint.Repo, root string) string {
			// A valid segment stored under a name that is not its hash:
			// only the hash check finds it.
			return renameSegment(t, r, root)
		}},
		{"ManifestChecksum", format.ErrChecksum, func(t *testing.T, r *checkpoint.Repo, root string) string {
			name := format.ManifestPath(3)
			path := filepath.Join(root, name)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(b, []byte(`"offset"`))
			b[i+2] = 'O'
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return name
		}},
		{"AncestorManifestTruncated", format.ErrTruncated, func(t *testing.T, r *checkpoint.Repo, root string) string {
			name := format.ManifestPath(1)
			if err := os.Truncate(filepath.Join(root, name), 100); err != nil {
				t.Fatal(err)
			}
			return name
		}},
		{"ParentMissing", format.ErrTruncated, func(t *testing.T, r *checkpoint.Repo, root string) string {
			if err := os.Remove(filepath.Join(root, format.ManifestPath(2))); err != nil {
				t.Fatal(err)
			}
			return format.ManifestPath(2)
		}},
	}
}

// replaceWithDamagedSegment rewrites checkpoint 3's manifest so that one
// layer names a copy of its segment with a flipped block byte, stored under
// the copy's own hash. It returns the copy's name.
// renameSegment rewrites checkpoint 3's manifest so that one layer names
// its own intact segment under a made-up hash. It returns that name.
func renameSegment(t *testing.T, r *checkpoint.Repo, root string) string {
	t.Helper()
	ctx := context.Background()
	m := checkpointtest.Manifest(t, r, 3)
	l := &m.Operators[1].Ranges[1].Layers[0]
	b, err := os.ReadFile(filepath.Join(root, format.SegmentPath(l.Hash)))
	if err != nil {
		t.Fatal(err)
	}
	l.Hash = strings.Repeat("ab", 32)
	name := format.SegmentPath(l.Hash)
	if err := r.Store().Put(ctx, name, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	data, err := format.EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Store().Put(ctx, format.ManifestPath(3), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return name
}

func replaceWithDamagedSegment(t *testing.T, r *checkpoint.Repo, root string) string {
	t.Helper()
	ctx := context.Background()
	m := checkpointtest.Manifest(t, r, 3)
	l := &m.Operators[0].Ranges[0].Layers[0]
	b, err := os.ReadFile(filepath.Join(root, format.SegmentPath(l.Hash)))
	if err != nil {
		t.Fatal(err)
	}
	b[20] ^= 0xff
	digest := sha256.Sum256(b)
	sum := hex.EncodeToString(digest[:])
	name := format.SegmentPath(sum)
	if err := r.Store().Put(ctx, name, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	l.Hash = sum
	data, err := format.EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Store().Put(ctx, format.ManifestPath(3), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return name
}

// benchStore writes the benchmark's generated checkpoints (about 200 MB of
// segments) once per benchmark function.
func benchStore(b *testing.B) (*checkpoint.Repo, []format.SegmentRef, int64) {
	b.Helper()
	ctx := context.Background()
	s := storetest.NewDir(b, b.TempDir())
	r, err := checkpoint.InitRepo(ctx, s, "bench", 128)
	if err != nil {
		b.Fatal(err)
	}
	writeGenerated(b, r, 240_000*benchScale(b), 1400)
	var refs []format.SegmentRef
	var total int64
	for _, o := range checkpointtest.Manifest(b, r, 2).Operators {
		for _, rs := range o.Ranges {
			for _, l := range rs.Layers {
				refs = append(refs, l)
				total += l.Size
			}
		}
	}
	return r, refs, total
}

// BenchmarkRestore restores a ~200 MB checkpoint from one directory store
// to another: read, hash, verify every block, write. Compare with
// BenchmarkReadDecompressSegments, the cost of reading the same segments.
func BenchmarkRestore(b *testing.B) {
	ctx := context.Background()
	r, _, total := benchStore(b)
	b.SetBytes(total)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		dst, err := store.NewDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := checkpoint.Restore(ctx, r, 2, dst, checkpoint.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		dst.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// BenchmarkReadDecompressSegments is the baseline for BenchmarkRestore:
// open each segment of the same checkpoint and iterate all its entries,
// which reads and decompresses every block once.
func BenchmarkReadDecompressSegments(b *testing.B) {
	ctx := context.Background()
	r, refs, total := benchStore(b)
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		var values int
		for _, ref := range refs {
			seg, obj, err := r.OpenSegment(ctx, ref)
			if err != nil {
				b.Fatal(err)
			}
			it := seg.Iter(0, math.MaxUint32)
			for it.Next() {
				values += len(it.Entry().Value)
			}
			obj.Close()
			if err := it.Err(); err != nil {
				b.Fatal(err)
			}
		}
		if values == 0 {
			b.Fatal("no values read")
		}
	}
}
