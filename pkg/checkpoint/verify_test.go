package checkpoint_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/golden"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// The damage matrix: testdata/checkpoints/good is the checkpointtest.Standard
// store, and every other directory there is a copy of it with one kind of
// damage. cases.json lists the cases, the object each damages and what
// verify reports, so that tests of other commands (restore) can loop over
// them. Regenerate with:
//
//	go test ./pkg/checkpoint -run TestDamageMatrix -rewrite

const fixturesDir = "../../testdata/checkpoints"

// fixtureCase is one entry of testdata/checkpoints/cases.json.
type fixtureCase struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Object is the object the damage is in: the file verify names.
	Object string `json:"object"`
	// Checkpoint is the checkpoint the damage makes unrestorable (the
	// latest); restore of it must be refused.
	Checkpoint uint64 `json:"checkpoint"`
	// Kind is the Problem.Kind verify --deep reports for Object.
	Kind string `json:"kind"`
	// Affects lists the checkpoints verify --all --deep names.
	Affects []uint64 `json:"affects"`
	// Structural is true when verify finds the damage without --deep.
	Structural bool `json:"structural"`
}

// fixtureTime is the creation time written into the fixtures, so that
// regenerating them yields the same bytes.
var fixtureTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// generateFixtures writes the good store and every damaged copy under root
// and returns the cases.
func generateFixtures(t *testing.T, root string) []fixtureCase {
	t.Helper()
	ctx := context.Background()
	good := filepath.Join(root, "good")
	s, err := store.NewDir(good)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := checkpointtest.Standard(t, s)
	ids, err := j.Repo.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Fixed creation times make the fixture bytes reproducible.
	marker := j.Repo.Marker()
	marker.CreatedAt = fixtureTime
	body, err := json.MarshalIndent(marker, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(good, checkpoint.MarkerName), append(body, '\n'))
	for _, id := range ids {
		m, err := j.Repo.Manifest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m.CreatedAt = fixtureTime.Add(time.Duration(id) * time.Minute)
		writeManifest(t, good, m)
	}
	latest := ids[len(ids)-1]
	m, err := j.Repo.Manifest(ctx, latest)
	if err != nil {
		t.Fatal(err)
	}

	// The delta segment the latest checkpoint wrote with the most bytes
	// (referenced by it alone), and a base segment every checkpoint shares.
	var own, shared format.SegmentRef
	for _, op := range m.Operators {
		for _, rs := range op.Ranges {
			for _, l := range rs.Layers {
				if l.Checkpoint == latest && (l.Size > own.Size || l.Size == own.Size && l.Hash < own.Hash) {
					own = l
				}
				if l.Checkpoint == 1 && shared.Hash == "" {
					shared = l
				}
			}
		}
	}
	if own.Hash == "" || shared.Hash == "" || own.Entries == 0 {
		t.Fatalf("fixture history changed: latest checkpoint has no delta of its own or no shared base")
	}
	ownPath := format.SegmentPath(own.Hash)
	wrongHash := sha256.Sum256([]byte("arkstate damage fixture\n" + own.Hash))
	wrongPath := format.SegmentPath(hex.EncodeToString(wrongHash[:]))
	parentPath := format.ManifestPath(m.Parent)
	latestPath := format.ManifestPath(latest)

	cases := []struct {
		fixtureCase
		damage func(t *testing.T, dir string)
	}{
		{fixtureCase{Name: "flipped-block-bit", Object: ownPath, Kind: checkpoint.ProblemChecksum, Affects: []uint64{latest},
			Description: "one bit flipped in the middle of block 0 of a delta segment of the latest checkpoint"},
			func(t *testing.T, dir string) {
				p := filepath.Join(dir, ownPath)
				data := readFile(t, p)
				seg, err := format.OpenSegment(bytes.NewReader(data), int64(len(data)), ownPath)
				if err != nil {
					t.Fatal(err)
				}
				b := seg.Blocks()[0]
				data[b.Offset+int64(b.StoredLen)/2] ^= 0x10
				writeFile(t, p, data)
			}},
		{fixtureCase{Name: "truncated-segment", Object: ownPath, Kind: checkpoint.ProblemSize, Affects: []uint64{latest}, Structural: true,
			Description: "a delta segment of the latest checkpoint cut to half its size"},
			func(t *testing.T, dir string) {
				p := filepath.Join(dir, ownPath)
				data := readFile(t, p)
				writeFile(t, p, data[:len(data)/2])
			}},
		{fixtureCase{Name: "missing-segment", Object: format.SegmentPath(shared.Hash), Kind: checkpoint.ProblemMissing, Affects: ids, Structural: true,
			Description: "a base segment that every checkpoint references removed"},
			func(t *testing.T, dir string) {
				removeFile(t, filepath.Join(dir, format.SegmentPath(shared.Hash)))
			}},
		{fixtureCase{Name: "manifest-bad-checksum", Object: latestPath, Kind: checkpoint.ProblemChecksum, Affects: []uint64{latest}, Structural: true,
			Description: "the latest manifest's body changed (job_id) without updating its checksum"},
			func(t *testing.T, dir string) {
				p := filepath.Join(dir, latestPath)
				data := readFile(t, p)
				changed := bytes.Replace(data, []byte(`"job_id": "`+checkpointtest.JobID+`"`), []byte(`"job_id": "`+strings.ToUpper(checkpointtest.JobID)+`"`), 1)
				if bytes.Equal(changed, data) {
					t.Fatal("manifest has no job_id field to change")
				}
				writeFile(t, p, changed)
			}},
		{fixtureCase{Name: "manifest-wrong-hash", Object: wrongPath, Kind: checkpoint.ProblemHash, Affects: []uint64{latest},
			Description: "the latest manifest re-sealed with a valid checksum, one layer naming a hash that is not its content's (the content stored under that name)"},
			func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, wrongPath), readFile(t, filepath.Join(dir, ownPath)))
				bad := *m
				bad.Operators = slices.Clone(m.Operators)
				for i := range bad.Operators {
					op := &bad.Operators[i]
					op.Ranges = slices.Clone(op.Ranges)
					for k := range op.Ranges {
						rs := &op.Ranges[k]
						rs.Layers = slices.Clone(rs.Layers)
						for l := range rs.Layers {
							if rs.Layers[l].Hash == own.Hash {
								rs.Layers[l].Hash = hex.EncodeToString(wrongHash[:])
							}
						}
					}
				}
				bad.CreatedAt = fixtureTime.Add(time.Duration(latest) * time.Minute)
				writeManifest(t, dir, &bad)
			}},
		{fixtureCase{Name: "missing-parent", Object: parentPath, Kind: checkpoint.ProblemParent, Affects: []uint64{latest}, Structural: true,
			Description: "the MANIFEST of the latest checkpoint's parent removed"},
			func(t *testing.T, dir string) {
				removeFile(t, filepath.Join(dir, parentPath))
				if err := os.Remove(filepath.Dir(filepath.Join(dir, parentPath))); err != nil {
					t.Fatal(err)
				}
			}},
	}
	var out []fixtureCase
	for _, c := range cases {
		c.Checkpoint = latest
		dir := filepath.Join(root, c.Name)
		copyTree(t, good, dir)
		c.damage(t, dir)
		out = append(out, c.fixtureCase)
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "cases.json"), append(data, '\n'))
	writeFile(t, filepath.Join(root, "README.md"), fixturesReadme(out))
	return out
}

func fixturesReadme(cases []fixtureCase) []byte {
	var b bytes.Buffer
	b.WriteString("# Checkpoint store fixtures\n\n")
	b.WriteString("Generated by `go test ./pkg/checkpoint -run TestDamageMatrix -rewrite`; do not edit.\n\n")
	b.WriteString("`good/` is the checkpointtest.Standard store (3 checkpoints: full, incremental,\n")
	b.WriteString("incremental with deletes). Each other directory is a copy with one kind of damage;\n")
	b.WriteString("`cases.json` lists them with the damaged object and what `verify` reports.\n\n")
	b.WriteString("| case | damaged object | verify kind | found without --deep |\n|---|---|---|---|\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %t |\n", c.Name, c.Object, c.Kind, c.Structural)
	}
	b.WriteString("\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "- `%s`: %s.\n", c.Name, c.Description)
	}
	return b.Bytes()
}

func writeManifest(t *testing.T, storeDir string, m *format.Manifest) {
	t.Helper()
	data, err := format.EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(storeDir, format.ManifestPath(m.CheckpointID)), data)
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t testing.TB, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// readTree returns every file under root by slash-separated relative path,
// leaving out the dir store's own files (its lock), which are not objects.
func readTree(t testing.TB, root string) map[string][]byte {
	t.Helper()
	files := make(map[string][]byte)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".arkstate-") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func copyTree(t testing.TB, from, to string) {
	t.Helper()
	for rel, data := range readTree(t, from) {
		writeFile(t, filepath.Join(to, filepath.FromSlash(rel)), data)
	}
}

// diffTrees describes how two trees differ, "" when they hold the same files.
func diffTrees(want, got map[string][]byte) string {
	var d []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			d = append(d, "missing "+name)
		case !bytes.Equal(w, g):
			d = append(d, "changed "+name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			d = append(d, "added "+name)
		}
	}
	slices.Sort(d)
	return strings.Join(d, "\n")
}

// loadDamageCases reads testdata/checkpoints/cases.json.
func loadDamageCases(t testing.TB) []fixtureCase {
	t.Helper()
	var cases []fixtureCase
	if err := json.Unmarshal(readFile(t, filepath.Join(fixturesDir, "cases.json")), &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func openFixture(t testing.TB, name string) *checkpoint.Repo {
	t.Helper()
	s, err := store.NewDir(filepath.Join(fixturesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := checkpoint.OpenRepo(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDamageMatrix regenerates the fixtures and checks that the checked-in
// ones are current, that the good store verifies clean and that verify
// names every case's damaged object.
func TestDamageMatrix(t *testing.T) {
	tmp := t.TempDir()
	generated := generateFixtures(t, tmp)
	if golden.Rewriting() {
		if err := os.RemoveAll(fixturesDir); err != nil {
			t.Fatal(err)
		}
		copyTree(t, tmp, fixturesDir)
	}
	before := readTree(t, fixturesDir)
	if d := diffTrees(readTree(t, tmp), before); d != "" {
		t.Fatalf("testdata/checkpoints is stale; regenerate with go test ./pkg/checkpoint -run TestDamageMatrix -rewrite:\n%s", d)
	}
	cases := loadDamageCases(t)
	if len(cases) != len(generated) || len(cases) < 6 {
		t.Fatalf("cases.json lists %d cases, the generator %d", len(cases), len(generated))
	}
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		r := openFixture(t, "good")
		rep, err := checkpoint.Verify(ctx, r, checkpoint.VerifyOptions{All: true, Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("good store has problems: %+v", rep.Problems)
		}
		if rep.Totals.Checkpoints != 3 || rep.Totals.DeepSegments != rep.Totals.Segments || rep.Totals.Segments == 0 ||
			rep.Totals.DeepBytes != rep.Totals.SegmentBytes {
			t.Fatalf("totals %+v: want 3 checkpoints and every segment read", rep.Totals)
		}
	})
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := openFixture(t, c.Name)
			for _, tc := range []struct {
				opts    checkpoint.VerifyOptions
				affects []uint64
				found   bool
			}{
				{checkpoint.VerifyOptions{Deep: true}, []uint64{c.Checkpoint}, true},
				{checkpoint.VerifyOptions{All: true, Deep: true}, c.Affects, true},
				{checkpoint.VerifyOptions{All: true}, c.Affects, c.Structural},
				{checkpoint.VerifyOptions{All: true, Sample: checkpoint.Sample{N: 1, T: 1}}, c.Affects, true},
			} {
				rep, err := checkpoint.Verify(ctx, r, tc.opts)
				if err != nil {
					t.Fatalf("%+v: %v", tc.opts, err)
				}
				if !tc.found {
					if !rep.OK() {
						t.Fatalf("%+v: structure checks report %+v, want nothing (the damage needs --deep)", tc.opts, rep.Problems)
					}
					continue
				}
				if len(rep.Problems) != 1 {
					t.Fatalf("%+v: %d problems, want 1: %+v", tc.opts, len(rep.Problems), rep.Problems)
				}
				p := rep.Problems[0]
				if p.File != c.Object || p.Kind != c.Kind || !slices.Equal(p.Checkpoints, tc.affects) {
					t.Fatalf("%+v: problem %+v, want file %s kind %s checkpoints %v", tc.opts, p, c.Object, c.Kind, tc.affects)
				}
				if p.Problem == "" || !strings.Contains(p.Advice, c.Object) {
					t.Fatalf("problem %+v: want a description and advice naming the object", p)
				}
			}
		})
	}
	if d := diffTrees(before, readTree(t, fixturesDir)); d != "" {
		t.Fatalf("verify changed the fixtures:\n%s", d)
	}
}

// unavailableStore fails every Open of names with prefix as an unreachable
// store would.
type unavailableStore struct {
	store.Store
	prefix string
}

func (u unavailableStore) Open(ctx context.Context, name string) (store.Object, error) {
	if strings.HasPrefix(name, u.prefix) {
		return nil, &store.Error{Op: "open", Name: name, Kind: store.ErrUnavailable, Err: errors.New("connection refused")}
	}
	return u.Store.Open(ctx, name)
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{IDs: []uint64{2, 1, 2}, Deep: true, Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || !slices.Equal(rep.Checkpoints, []uint64{1, 2}) || !rep.Deep || rep.Sample != "" {
			t.Fatalf("report %+v", rep)
		}
		// Checkpoint 2 re-references checkpoint 1's bases: each counted once.
		m1, _ := j.Repo.Manifest(ctx, 1)
		m2, _ := j.Repo.Manifest(ctx, 2)
		want := map[string]bool{}
		for _, m := range []*format.Manifest{m1, m2} {
			for _, op := range m.Operators {
				for _, rs := range op.Ranges {
					for _, l := range rs.Layers {
						want[l.Hash] = true
					}
				}
			}
		}
		if rep.Totals.Segments != len(want) || rep.Totals.DeepSegments != len(want) {
			t.Fatalf("totals %+v, want %d distinct segments", rep.Totals, len(want))
		}
	})
	t.Run("OKLatest", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || !slices.Equal(rep.Checkpoints, []uint64{3}) || rep.Deep || rep.Totals.DeepSegments != 0 || rep.Totals.DeepBytes != 0 {
			t.Fatalf("report %+v", rep)
		}
	})
	t.Run("OKSample", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		for _, T := range []int{1, 2, 3, 7} {
			seen := 0
			var bytes int64
			var total checkpoint.VerifyTotals
			for n := 1; n <= T; n++ {
				rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{All: true, Sample: checkpoint.Sample{N: n, T: T}})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.OK() || !rep.Deep || rep.Sample != fmt.Sprintf("%d/%d", n, T) {
					t.Fatalf("report %+v", rep)
				}
				seen += rep.Totals.DeepSegments
				bytes += rep.Totals.DeepBytes
				total = rep.Totals
			}
			if seen != total.Segments || bytes != total.SegmentBytes {
				t.Fatalf("slices of %d deep-checked %d segments (%d bytes), the store has %d (%d bytes)", T, seen, bytes, total.Segments, total.SegmentBytes)
			}
		}
	})
	t.Run("OKEmptyAll", func(t *testing.T) {
		r, err := checkpoint.InitRepo(ctx, store.NewMem("empty"), "job", 8)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := checkpoint.Verify(ctx, r, checkpoint.VerifyOptions{All: true, Deep: true})
		if err != nil || !rep.OK() || len(rep.Checkpoints) != 0 {
			t.Fatalf("report %+v, %v", rep, err)
		}
	})
	t.Run("OKSeveralProblems", func(t *testing.T) {
		// Damage in one object must not stop the checks of the others.
		dir, j := checkpointtest.StandardDir(t)
		m3, _ := j.Repo.Manifest(ctx, 3)
		var victims []string
		for _, op := range m3.Operators {
			l := op.Ranges[0].Layers[len(op.Ranges[0].Layers)-1]
			victims = append(victims, format.SegmentPath(l.Hash))
		}
		for _, v := range victims {
			removeFile(t, filepath.Join(dir, v))
		}
		writeFile(t, filepath.Join(dir, format.ManifestPath(1)), []byte("{}"))
		rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{All: true, Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, p := range rep.Problems {
			files = append(files, p.File)
		}
		want := append([]string{format.ManifestPath(1)}, victims...)
		slices.Sort(files)
		slices.Sort(want)
		if !slices.Equal(files, want) {
			t.Fatalf("problems name %v, want %v", files, want)
		}
	})
	t.Run("OKLayerNotListedByWriter", func(t *testing.T) {
		// Checkpoint 3 claims checkpoint 2 wrote a segment 2 never listed.
		dir, j := checkpointtest.StandardDir(t)
		m3, _ := j.Repo.Manifest(ctx, 3)
		m1, _ := j.Repo.Manifest(ctx, 1)
		rs := &m3.Operators[0].Ranges[0]
		rs.Layers = slices.Clone(rs.Layers)
		rs.Layers[1] = m1.Operators[0].Ranges[0].Layers[0]
		rs.Layers[1].Kind, rs.Layers[1].Checkpoint = format.LayerDelta, 2
		writeManifest(t, dir, m3)
		rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 1 || rep.Problems[0].Kind != checkpoint.ProblemMismatch || rep.Problems[0].File != format.ManifestPath(3) ||
			!strings.Contains(rep.Problems[0].Problem, "does not list it") {
			t.Fatalf("problems %+v", rep.Problems)
		}
	})
	t.Run("OKIndexDisagrees", func(t *testing.T) {
		dir, j := checkpointtest.StandardDir(t)
		m3, _ := j.Repo.Manifest(ctx, 3)
		l := &m3.Operators[1].Ranges[1].Layers[len(m3.Operators[1].Ranges[1].Layers)-1]
		l.Entries++
		writeManifest(t, dir, m3)
		rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 1 || rep.Problems[0].Kind != checkpoint.ProblemMismatch || rep.Problems[0].File != format.SegmentPath(l.Hash) {
			t.Fatalf("problems %+v", rep.Problems)
		}
	})
	t.Run("ErrCheckpointNotFound", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		_, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{IDs: []uint64{3, 9}})
		if !errors.Is(err, checkpoint.ErrCheckpointNotFound) {
			t.Fatalf("err %v, want ErrCheckpointNotFound", err)
		}
	})
	// A store without checkpoints has nothing to verify: the report says
	// so (Empty), for the caller to judge, latest or all.
	t.Run("OKEmpty", func(t *testing.T) {
		r, err := checkpoint.InitRepo(ctx, store.NewMem("empty"), "job", 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, opts := range []checkpoint.VerifyOptions{{}, {All: true}} {
			rep, err := checkpoint.Verify(ctx, r, opts)
			if err != nil || !rep.Empty || !rep.OK() || len(rep.Checkpoints) != 0 {
				t.Fatalf("Verify(%+v) of an empty store = %+v, %v; want an empty report", opts, rep, err)
			}
		}
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		s := j.Repo.Store()
		r, err := checkpoint.OpenRepo(ctx, unavailableStore{Store: s, prefix: "segments/"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Verify(ctx, r, checkpoint.VerifyOptions{All: true, Deep: true}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable (a store failure is not damage)", err)
		}
	})
	t.Run("ErrSample", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		if _, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{Sample: checkpoint.Sample{N: 4, T: 3}}); err == nil {
			t.Fatal("sample 4/3 accepted")
		}
	})
}

// writeLargeSegmentStore writes a store whose one checkpoint has a single
// segment of about size bytes of poorly compressible values, so that deep
// checks cross several of their sequential read chunks.
func writeLargeSegmentStore(t testing.TB, s store.Store, size int) (*checkpoint.Repo, format.SegmentRef) {
	t.Helper()
	ctx := context.Background()
	r, err := checkpoint.InitRepo(ctx, s, "large", 16)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.NewCheckpoint(ctx, 1, 0, checkpoint.BuilderOptions{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ref := addRandomSegment(t, r, 0, 15, size, 1)
	desc := []format.StateDescriptor{{Name: "v", Kind: format.StateKindValue, Codec: "bytes"}}
	if err := b.AddRange("op", desc, format.RangeState{Start: 0, End: 15, Layers: []format.SegmentRef{ref}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return r, ref
}

// addRandomSegment stores a base segment of about size bytes for key groups
// [start, end] written by checkpoint id.
func addRandomSegment(t testing.TB, r *checkpoint.Repo, start, end uint32, size int, id uint64) format.SegmentRef {
	t.Helper()
	const valueLen = 512
	n := size / valueLen
	sp, err := checkpoint.SpoolSegment("", format.SegmentWriterOptions{}, func(w *format.SegmentWriter) error {
		val := make([]byte, valueLen)
		for i := range n {
			// Half random, half repeated: about 2:1 compression, like
			// real values rather than all-random or all-zero ones.
			rand.Read(val[:valueLen/2])
			e := format.Entry{State: "v", KeyGroup: start + uint32(i*int(end-start+1)/n), Key: fmt.Appendf(nil, "key-%09d", i), Value: val}
			if err := w.Add(&e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Remove()
	if _, err := r.PutSegment(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	return format.SegmentRef{Hash: sp.Hash(), Size: sp.Info.Size, Kind: format.LayerBase, Entries: sp.Info.Entries, Checkpoint: id}
}

// verifyLargeSegment checks deep verification of a segment larger than the
// verifier's sequential read chunk: intact, then renamed to a wrong hash.
func verifyLargeSegment(t *testing.T, s store.Store) {
	ctx := context.Background()
	r, ref := writeLargeSegmentStore(t, s, 10<<20)
	rep, err := checkpoint.Verify(ctx, r, checkpoint.VerifyOptions{Deep: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Totals.DeepBytes != ref.Size || ref.Size < 5<<20 {
		t.Fatalf("report %+v for a %d-byte segment", rep, ref.Size)
	}
	// The same bytes under another name: only the SHA-256 of the whole
	// object can tell.
	wrong := strings.Repeat("ab", 32)
	if err := s.Put(ctx, format.SegmentPath(wrong), bytes.NewReader(checkpointtest.ReadObject(t, s, format.SegmentPath(ref.Hash))), ref.Size); err != nil {
		t.Fatal(err)
	}
	b, err := r.NewCheckpoint(ctx, 2, 0, checkpoint.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := ref
	bad.Hash, bad.Checkpoint = wrong, 2
	if err := b.AddRange("op", []format.StateDescriptor{{Name: "v", Kind: format.StateKindValue, Codec: "bytes"}},
		format.RangeState{Start: 0, End: 15, Layers: []format.SegmentRef{bad}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err = checkpoint.Verify(ctx, r, checkpoint.VerifyOptions{Deep: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != checkpoint.ProblemHash || !strings.Contains(rep.Problems[0].Problem, ref.Hash) {
		t.Fatalf("problems %+v, want the hash mismatch naming the content's hash %s", rep.Problems, ref.Hash)
	}
}

func TestVerify_Large(t *testing.T) {
	s, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	verifyLargeSegment(t, s)
}

func TestVerify_S3(t *testing.T) {
	srv := s3Server.Get(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := storetest.NewS3(t, bucket, "standard", storetest.S3Options(srv))
		j := checkpointtest.Standard(t, s)
		rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{All: true, Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Totals.Checkpoints != 3 || rep.Totals.DeepSegments != rep.Totals.Segments {
			t.Fatalf("report %+v", rep)
		}
		m3, _ := j.Repo.Manifest(ctx, 3)
		victim := format.SegmentPath(m3.Operators[0].Ranges[0].Layers[0].Hash)
		if err := s.Delete(ctx, victim); err != nil {
			t.Fatal(err)
		}
		rep, err = checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{All: true, Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 1 || rep.Problems[0].File != victim || rep.Problems[0].Kind != checkpoint.ProblemMissing ||
			!slices.Equal(rep.Problems[0].Checkpoints, []uint64{1, 2, 3}) {
			t.Fatalf("problems %+v", rep.Problems)
		}
	})
	t.Run("OKLarge", func(t *testing.T) {
		verifyLargeSegment(t, storetest.NewS3(t, bucket, "large", storetest.S3Options(srv)))
	})
}

func TestParseSample(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for in, want := range map[string]checkpoint.Sample{"1/1": {1, 1}, "3/7": {3, 7}, "256/256": {256, 256}} {
			got, err := checkpoint.ParseSample(in)
			if err != nil || got != want || got.String() != in {
				t.Fatalf("%q: %+v, %v", in, got, err)
			}
		}
		s := checkpoint.Sample{N: 2, T: 3}
		// 0x05 % 3 == 2 (slice 3), 0x04 % 3 == 1 (slice 2).
		if s.Contains("05"+strings.Repeat("0", 62)) || !s.Contains("04"+strings.Repeat("0", 62)) {
			t.Fatal("Contains does not follow the first byte modulo T")
		}
		if !(checkpoint.Sample{}).Contains("ff") {
			t.Fatal("the zero sample must contain everything")
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{"", "1", "0/3", "4/3", "1/0", "1/257", "-1/3", "a/b", "1/3/5", " 1/3"} {
			if s, err := checkpoint.ParseSample(in); err == nil {
				t.Fatalf("%q parsed as %+v", in, s)
			}
		}
	})
}

// The Standard job's state restores from a verified checkpoint; this ties
// the fixture to real restores (state.Backend) and not only to verify.
func TestDamageMatrix_GoodRestores(t *testing.T) {
	ctx := context.Background()
	r := openFixture(t, "good")
	m, err := r.Manifest(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RestoreBackend(ctx, m, "count", b); err != nil {
		t.Fatal(err)
	}
	v, err := state.NewValue(b, state.Descriptor[uint64]{Name: "count"})
	if err != nil {
		t.Fatal(err)
	}
	// Standard: words 0-599 once, 0-59 again, 550-649 again, 100-109 deleted.
	for i, want := range map[int]uint64{0: 2, 59: 2, 60: 1, 100: 0, 109: 0, 549: 1, 550: 2, 600: 1, 649: 1} {
		got, _, err := v.Get(checkpointtest.Word(i))
		if err != nil || got != want {
			t.Fatalf("%s: count %d (%v), want %d", checkpointtest.Word(i), got, err, want)
		}
	}
}

// benchScale multiplies the size of the store benchmarks build:
// ARKSTATE_BENCH_SCALE=5 makes BenchmarkVerifyDeep's 200 MB a gigabyte.
func benchScale(b *testing.B) int {
	v := os.Getenv("ARKSTATE_BENCH_SCALE")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("ARKSTATE_BENCH_SCALE=%q: want a positive integer", v)
	}
	return n
}

// BenchmarkVerifyDeep measures verify --deep over a store of about 200 MB
// of segments against the baseline of reading and hashing the same files
// with SHA-256 alone (what sha256sum does): the ratio is the cost of
// checking every block and entry on top of the bytes. Run it with
//
//	go test ./pkg/checkpoint -run '^$' -bench VerifyDeep -benchtime 3x
func BenchmarkVerifyDeep(b *testing.B) {
	const ranges = 16
	perSegment := (25 << 20) * benchScale(b) // raw bytes; about 2:1 compressed
	ctx := context.Background()
	dir := b.TempDir()
	s, err := store.NewDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r, err := checkpoint.InitRepo(ctx, s, "bench", ranges*4)
	if err != nil {
		b.Fatal(err)
	}
	bld, err := r.NewCheckpoint(ctx, 1, 0, checkpoint.BuilderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	var total int64
	desc := []format.StateDescriptor{{Name: "v", Kind: format.StateKindValue, Codec: "bytes"}}
	for i := range uint32(ranges) {
		ref := addRandomSegment(b, r, i*4, i*4+3, perSegment, 1)
		if err := bld.AddRange("op", desc, format.RangeState{Start: i * 4, End: i*4 + 3, Layers: []format.SegmentRef{ref}}); err != nil {
			b.Fatal(err)
		}
		files = append(files, filepath.Join(dir, format.SegmentPath(ref.Hash)))
		total += ref.Size
	}
	if _, err := bld.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("store: %d segments, %d bytes", len(files), total)

	for _, bc := range []struct {
		name    string
		workers int
	}{{"Verify", 0}, {"Verify1Worker", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				rep, err := checkpoint.Verify(ctx, r, checkpoint.VerifyOptions{Deep: true, Concurrency: bc.workers})
				if err != nil || !rep.OK() || rep.Totals.DeepBytes != total {
					b.Fatalf("report %+v, %v", rep, err)
				}
			}
		})
	}
	b.Run("SHA256Files", func(b *testing.B) {
		b.SetBytes(total)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			for _, p := range files {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				if _, err := io.CopyBuffer(h, f, buf); err != nil {
					b.Fatal(err)
				}
				f.Close()
				if filepath.Base(p) != hex.EncodeToString(h.Sum(nil))+".seg" {
					b.Fatalf("%s: hash mismatch", p)
				}
			}
		}
	})
}

// Progress counts up, segment by segment, to the bytes of every segment
// the checked checkpoints reference.
func TestVerify_Progress(t *testing.T) {
	_, j := checkpointtest.StandardDir(t)
	var calls int
	var last, total int64
	rep, err := checkpoint.Verify(context.Background(), j.Repo, checkpoint.VerifyOptions{All: true, Deep: true,
		Progress: func(done, tot int64) {
			if done < last || (total != 0 && tot != total) {
				t.Errorf("progress %d of %d after %d of %d", done, tot, last, total)
			}
			calls++
			last, total = done, tot
		}})
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %v, %+v", err, rep)
	}
	if calls != rep.Totals.Segments || last != total || total != rep.Totals.SegmentBytes {
		t.Fatalf("%d progress calls ending at %d of %d; want %d calls ending at %d", calls, last, total, rep.Totals.Segments, rep.Totals.SegmentBytes)
	}
}

// GC's progress counts up to the bytes it deletes.
func TestGC_Progress(t *testing.T) {
	ctx := context.Background()
	_, j := checkpointtest.StandardDir(t)
	for i, body := range []string{"orphan one", "orphan number two"} {
		name := format.SegmentPath(strings.Repeat(string(rune('a'+i)), 64))
		if err := j.Repo.Store().Put(ctx, name, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	var last, total int64
	rep, err := checkpoint.GC(ctx, j.Repo, checkpoint.GCOptions{Grace: -1, Progress: func(done, tot int64) { last, total = done, tot }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 2 || last != total || total != rep.DeletedBytes || total != int64(len("orphan one")+len("orphan number two")) {
		t.Fatalf("deleted %d (%d bytes); progress ended at %d of %d", rep.Deleted, rep.DeletedBytes, last, total)
	}
}
