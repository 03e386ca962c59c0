package checkpoint_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// getFailStore fails every Get of names with prefix as an unreachable
// store would.
type getFailStore struct {
	store.Store
	prefix string
}

func (g getFailStore) Get(ctx context.Context, name string) (io.ReadCloser, store.ObjectInfo, error) {
	if strings.HasPrefix(name, g.prefix) {
		return nil, store.ObjectInfo{}, &store.Error{Op: "get", Name: name, Kind: store.ErrUnavailable, Err: errors.New("connection reset")}
	}
	return g.Store.Get(ctx, name)
}

// expectedSizes computes what List should say about checkpoint id from
// the manifests directly.
func expectedSizes(t *testing.T, r *checkpoint.Repo, id uint64, others ...uint64) (keys uint64, logical, stored, exclusive int64) {
	t.Helper()
	ctx := context.Background()
	m, err := r.Manifest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := map[string]bool{}
	for _, o := range others {
		om, err := r.Manifest(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range om.Operators {
			for _, rs := range op.Ranges {
				for _, l := range rs.Layers {
					elsewhere[l.Hash] = true
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, op := range m.Operators {
		for _, rs := range op.Ranges {
			for _, l := range rs.Layers {
				keys += l.Entries
				logical += l.Size
				if !seen[l.Hash] {
					seen[l.Hash] = true
					stored += l.Size
					if !elsewhere[l.Hash] {
						exclusive += l.Size
					}
				}
			}
		}
	}
	return keys, logical, stored, exclusive
}

func TestList(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := store.NewMem("list")
		j := checkpointtest.Standard(t, s)
		list, err := checkpoint.List(ctx, j.Repo)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 {
			t.Fatalf("%d rows, want 3", len(list))
		}
		all := []uint64{1, 2, 3}
		for i, row := range list {
			id := uint64(i + 1)
			others := slices.DeleteFunc(slices.Clone(all), func(o uint64) bool { return o == id })
			keys, logical, stored, exclusive := expectedSizes(t, j.Repo, id, others...)
			wantKind, wantParent := format.KindIncremental, id-1
			if id == 1 {
				wantKind, wantParent = format.KindFull, 0
			}
			if row.ID != id || row.Kind != wantKind || row.Parent != wantParent || row.Status != checkpoint.StatusOK || row.Error != "" ||
				!slices.Equal(row.Operators, []string{"count", "dedupe"}) || row.CreatedAt.IsZero() {
				t.Fatalf("row %+v", row)
			}
			if row.Keys != keys || row.KeysExact != (id == 1) || row.LogicalBytes != logical || row.StoredBytes != stored ||
				row.ExclusiveBytes != exclusive || row.SharedBytes != stored-exclusive {
				t.Fatalf("row %+v, want keys %d logical %d stored %d exclusive %d", row, keys, logical, stored, exclusive)
			}
		}
		// The full checkpoint's count is exact: every live entry once.
		if list[0].Keys != 2*600+200 || list[0].Layers != 4 || list[0].Segments != 4 {
			t.Fatalf("checkpoint 1: %+v", list[0])
		}
		// Only checkpoint 3 references its own deltas.
		if list[0].ExclusiveBytes != 0 || list[1].ExclusiveBytes != 0 || list[2].ExclusiveBytes == 0 {
			t.Fatalf("exclusive bytes %d %d %d", list[0].ExclusiveBytes, list[1].ExclusiveBytes, list[2].ExclusiveBytes)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		r, err := checkpoint.InitRepo(ctx, store.NewMem("empty"), "job", 8)
		if err != nil {
			t.Fatal(err)
		}
		list, err := checkpoint.List(ctx, r)
		if err != nil || list == nil || len(list) != 0 {
			t.Fatalf("list %v, %v; want an empty, non-nil list", list, err)
		}
	})
	t.Run("OKDamaged", func(t *testing.T) {
		s := store.NewMem("damaged")
		j := checkpointtest.Standard(t, s)
		// Checkpoint 4's manifest is garbage, checkpoint 2's is gone.
		garbage := []byte(`{"format": "arkstate-manifest"`)
		if err := s.Put(ctx, format.ManifestPath(4), bytes.NewReader(garbage), int64(len(garbage))); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, format.ManifestPath(2)); err != nil {
			t.Fatal(err)
		}
		list, err := checkpoint.List(ctx, j.Repo)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, row := range list {
			ids = append(ids, row.ID)
		}
		if !slices.Equal(ids, []uint64{1, 3, 4}) {
			t.Fatalf("rows %v, want 1, 3, 4", ids)
		}
		if r := list[0]; r.Status != checkpoint.StatusOK {
			t.Fatalf("row %+v", r)
		}
		if r := list[1]; r.Status != checkpoint.StatusDamaged || !strings.Contains(r.Error, "parent checkpoint 2 is missing") || r.Kind != format.KindIncremental {
			t.Fatalf("row %+v, want damaged for its missing parent", r)
		}
		// With 2 gone, 2's deltas are referenced by 3 alone.
		_, _, _, exclusive := expectedSizes(t, j.Repo, 3, 1)
		if list[1].ExclusiveBytes != exclusive {
			t.Fatalf("exclusive %d, want %d", list[1].ExclusiveBytes, exclusive)
		}
		if r := list[2]; r.Status != checkpoint.StatusDamaged || !strings.Contains(r.Error, format.ManifestPath(4)) || r.Kind != "" || !r.CreatedAt.IsZero() {
			t.Fatalf("row %+v, want damaged naming its manifest", r)
		}
		data, err := json.Marshal(list[2])
		// Nothing the manifest would have told is reported, not even as
		// zero or empty.
		if err != nil || string(data) != `{"checkpoint_id":4,"status":"damaged","error":`+strconv.Quote(list[2].Error)+`}` {
			t.Fatalf("damaged row JSON %s (%v)", data, err)
		}
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		s := store.NewMem("unavailable")
		checkpointtest.Standard(t, s)
		r, err := checkpoint.OpenRepo(ctx, getFailStore{Store: s, prefix: "checkpoints/"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.List(ctx, r); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
}

func TestList_S3(t *testing.T) {
	srv := s3Server.Get(t)
	s := storetest.NewS3(t, srv.NewBucket(t), "list", storetest.S3Options(srv))
	j := checkpointtest.Standard(t, s)
	list, err := checkpoint.List(context.Background(), j.Repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[2].Status != checkpoint.StatusOK || list[2].Parent != 2 || list[2].Segments != 12 {
		t.Fatalf("list %+v", list)
	}
}

func TestShow(t *testing.T) {
	ctx := context.Background()
	s := store.NewMem("show")
	j := checkpointtest.Standard(t, s)
	t.Run("OK", func(t *testing.T) {
		for _, ref := range []string{"latest", "3", format.CheckpointDir(3)} {
			d, err := checkpoint.Show(ctx, j.Repo, ref, checkpoint.ShowOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Manifest.CheckpointID != 3 || d.Segments != nil {
				t.Fatalf("%s: detail %+v", ref, d)
			}
		}
	})
	t.Run("OKSegments", func(t *testing.T) {
		d, err := checkpoint.Show(ctx, j.Repo, "1", checkpoint.ShowOptions{Segments: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Segments) != 4 {
			t.Fatalf("%d layouts, want 4", len(d.Segments))
		}
		for i, l := range d.Segments {
			// In manifest order: operator count's ranges, then dedupe's.
			want := d.Manifest.Operators[i/2].Ranges[i%2].Layers[0]
			if l.Hash != want.Hash || l.Size != want.Size || l.Entries != want.Entries || l.Error != "" ||
				len(l.Blocks) == 0 || !strings.Contains(l.Describe, l.Object) || l.Object != format.SegmentPath(l.Hash) {
				t.Fatalf("layout %d: %+v, want %+v", i, l, want)
			}
			var entries int
			for _, b := range l.Blocks {
				entries += b.Entries
			}
			if uint64(entries) != l.Entries {
				t.Fatalf("blocks hold %d entries, the layout says %d", entries, l.Entries)
			}
		}
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]json.RawMessage
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"job_id", "checkpoint_id", "kind", "created_at", "key_groups", "operators", "sources", "segments"} {
			if _, ok := back[k]; !ok {
				t.Fatalf("JSON lacks %q: %s", k, data)
			}
		}
	})
	t.Run("ErrCheckpointNotFound", func(t *testing.T) {
		if _, err := checkpoint.Show(ctx, j.Repo, "7", checkpoint.ShowOptions{}); !errors.Is(err, checkpoint.ErrCheckpointNotFound) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("ErrCorrupt", func(t *testing.T) {
		s := store.NewMem("corrupt")
		j := checkpointtest.Standard(t, s)
		name := format.ManifestPath(2)
		if err := s.Put(ctx, name, strings.NewReader("{}"), 2); err != nil {
			t.Fatal(err)
		}
		var ce *format.CorruptError
		if _, err := checkpoint.Show(ctx, j.Repo, "2", checkpoint.ShowOptions{}); !errors.As(err, &ce) || ce.File != name {
			t.Fatalf("err %v, want a CorruptError naming %s", err, name)
		}
		// A damaged segment is reported in its layout, not as an error.
		m, _ := j.Repo.Manifest(ctx, 3)
		victim := format.SegmentPath(m.Operators[0].Ranges[1].Layers[2].Hash)
		if err := s.Put(ctx, victim, strings.NewReader("short"), 5); err != nil {
			t.Fatal(err)
		}
		d, err := checkpoint.Show(ctx, j.Repo, "3", checkpoint.ShowOptions{Segments: true})
		if err != nil {
			t.Fatal(err)
		}
		var bad []string
		for _, l := range d.Segments {
			if l.Error != "" {
				bad = append(bad, l.Object)
			}
		}
		if !slices.Equal(bad, []string{victim}) {
			t.Fatalf("layouts with errors %v, want %s", bad, victim)
		}
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		r, err := checkpoint.OpenRepo(ctx, unavailableStore{Store: s, prefix: "segments/"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Show(ctx, r, "3", checkpoint.ShowOptions{Segments: true}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	})
}
