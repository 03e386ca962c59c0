package checkpoint_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// liveEntry is one resolved entry, as the oracle computes it.
type liveEntry struct {
	state   string
	kg      uint32
	key     string
	value   string
	expires int64
}

// resolveNaively is the reference the merge is checked against: it applies
// every layer of a range in order to a map, the simplest correct way to
// resolve a checkpoint, and returns the live entries range by range, sorted
// within each range as a View yields them.
func resolveNaively(t testing.TB, r *checkpoint.Repo, m *format.Manifest, op string) []liveEntry {
	t.Helper()
	ctx := context.Background()
	type k struct {
		state string
		kg    uint32
		key   string
	}
	var out []liveEntry
	for _, o := range m.Operators {
		if o.ID != op {
			continue
		}
		for _, rs := range o.Ranges {
			live := map[k]liveEntry{}
			for _, l := range rs.Layers {
				seg, obj, err := r.OpenSegment(ctx, l)
				if err != nil {
					t.Fatal(err)
				}
				it := seg.Iter(rs.Start, rs.End)
				for it.Next() {
					e := it.Entry()
					key := k{e.State, e.KeyGroup, string(e.Key)}
					if e.Tombstone {
						delete(live, key)
						continue
					}
					live[key] = liveEntry{e.State, e.KeyGroup, string(e.Key), string(e.Value), e.ExpiresAt}
				}
				obj.Close()
				if err := it.Err(); err != nil {
					t.Fatal(err)
				}
			}
			sorted := slices.Collect(maps.Values(live))
			slices.SortFunc(sorted, compareLive)
			out = append(out, sorted...)
		}
	}
	return out
}

func compareLive(a, b liveEntry) int {
	x := format.Entry{State: a.state, KeyGroup: a.kg, Key: []byte(a.key)}
	y := format.Entry{State: b.state, KeyGroup: b.kg, Key: []byte(b.key)}
	return format.CompareEntries(&x, &y)
}

// readView drains a view.
func readView(t testing.TB, v *checkpoint.View) ([]liveEntry, error) {
	t.Helper()
	defer v.Close()
	var out []liveEntry
	for v.Next() {
		e := v.Entry()
		if e.Tombstone {
			t.Fatalf("view yielded a tombstone for %q", e.Key)
		}
		out = append(out, liveEntry{e.State, e.KeyGroup, string(e.Key), string(e.Value), e.ExpiresAt})
	}
	return out, v.Err()
}

// countingStore counts the objects opened or read through it, by name.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	reads map[string]int
}

func newCountingStore(s store.Store) *countingStore {
	return &countingStore{Store: s, reads: map[string]int{}}
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	c.reads[name]++
	c.mu.Unlock()
}

func (c *countingStore) Open(ctx context.Context, name string) (store.Object, error) {
	c.count(name)
	return c.Store.Open(ctx, name)
}

func (c *countingStore) Get(ctx context.Context, name string) (io.ReadCloser, store.ObjectInfo, error) {
	c.count(name)
	return c.Store.Get(ctx, name)
}

func (c *countingStore) opened() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.reads)
}

func TestOpenView(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ctx := context.Background()
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		for id := uint64(1); id <= 3; id++ {
			m := checkpointtest.Manifest(t, r, id)
			for _, op := range []string{"count", "dedupe"} {
				v, err := checkpoint.OpenView(ctx, r, m, op)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readView(t, v)
				if err != nil {
					t.Fatalf("checkpoint %d %s: %v", id, op, err)
				}
				want := resolveNaively(t, r, m, op)
				if len(want) == 0 || !slices.Equal(got, want) {
					t.Fatalf("checkpoint %d %s: view has %d entries, naive resolution %d (or they differ)", id, op, len(got), len(want))
				}
			}
		}
		// Checkpoint 3 deleted words 100..109 from "count": the deltas'
		// tombstones must hide the base's entries.
		v, err := checkpoint.OpenView(ctx, r, checkpointtest.Manifest(t, r, 3), "count")
		if err != nil {
			t.Fatal(err)
		}
		got, err := readView(t, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			if e.state == "count" && e.key == checkpointtest.Word(105) {
				t.Fatalf("deleted key %s is live in the view", e.key)
			}
		}
	})

	t.Run("OKKeyGroupRange", func(t *testing.T) {
		ctx := context.Background()
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		m := checkpointtest.Manifest(t, r, 3)
		kg := state.KeyGroupFor(checkpointtest.Word(7), checkpointtest.KeyGroups)
		v, err := checkpoint.OpenViewRange(ctx, r, m, "count", state.KeyGroupRange{Start: kg, End: kg})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readView(t, v)
		if err != nil {
			t.Fatal(err)
		}
		var want []liveEntry
		for _, e := range resolveNaively(t, r, m, "count") {
			if e.kg == kg {
				want = append(want, e)
			}
		}
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("key group %d: view has %d entries, want %d", kg, len(got), len(want))
		}
	})

	t.Run("ErrOperatorNotFound", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		_, err := checkpoint.OpenView(context.Background(), r, checkpointtest.Manifest(t, r, 1), "nope")
		if !errors.Is(err, checkpoint.ErrOperatorNotFound) {
			t.Fatalf("got %v, want ErrOperatorNotFound", err)
		}
	})

	t.Run("ErrCorrupt", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		m := checkpointtest.Manifest(t, r, 1)
		seg := format.SegmentPath(m.Operators[0].Ranges[0].Layers[0].Hash)
		checkpointtest.FlipByte(t, filepath.Join(root, seg), 10) // inside block 0
		v, err := checkpoint.OpenView(context.Background(), r, m, m.Operators[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readView(t, v)
		var ce *format.CorruptError
		if !errors.As(err, &ce) || ce.File != seg {
			t.Fatalf("got %v, want a CorruptError naming %s", err, seg)
		}
	})
}

// TestView_Next checks the merge against naive resolution on random layer
// stacks: several ranges, puts and tombstones in every layer, keys shared
// between layers.
func TestView_Next(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		const keyGroups = 16
		s := store.NewMem("view")
		defer s.Close()
		r, err := checkpoint.InitRepo(ctx, s, "job", keyGroups)
		if err != nil {
			rt.Fatal(err)
		}
		// Ranges with several layers need a parent checkpoint; an empty one
		// will do, the merge does not care which checkpoint wrote a layer.
		empty, err := r.NewCheckpoint(ctx, 1, 0, checkpoint.BuilderOptions{})
		if err != nil {
			rt.Fatal(err)
		}
		if _, err := empty.Commit(ctx); err != nil {
			rt.Fatal(err)
		}
		b, err := r.NewCheckpoint(ctx, 5, 1, checkpoint.BuilderOptions{})
		if err != nil {
			rt.Fatal(err)
		}
		bounds := []uint32{0, rapid.Uint32Range(1, 8).Draw(rt, "split"), keyGroups}
		for ri := range 2 {
			lo, hi := bounds[ri], bounds[ri+1]-1
			var layers []format.SegmentRef
			nLayers := rapid.IntRange(1, 4).Draw(rt, "layers")
			for li := range nLayers {
				type ent struct {
					state string
					kg    uint32
					key   string
				}
				set := map[ent]format.Entry{}
				for range rapid.IntRange(0, 30).Draw(rt, "entries") {
					e := format.Entry{
						State:    rapid.SampledFrom([]string{"a", "b"}).Draw(rt, "state"),
						KeyGroup: rapid.Uint32Range(lo, hi).Draw(rt, "kg"),
						Key:      []byte{byte(rapid.IntRange(0, 5).Draw(rt, "key"))},
					}
					if li > 0 && rapid.Bool().Draw(rt, "tombstone") {
						e.Tombstone = true
					} else {
						e.Value = []byte(rapid.StringN(0, 4, -1).Draw(rt, "value"))
					}
					set[ent{e.State, e.KeyGroup, string(e.Key)}] = e
				}
				entries := slices.Collect(maps.Values(set))
				slices.SortFunc(entries, func(x, y format.Entry) int { return format.CompareEntries(&x, &y) })
				sp, err := checkpoint.SpoolSegment(t.TempDir(), format.SegmentWriterOptions{BlockSize: 64}, func(w *format.SegmentWriter) error {
					for i := range entries {
						if err := w.Add(&entries[i]); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					rt.Fatal(err)
				}
				if _, err := r.PutSegment(ctx, sp); err != nil {
					rt.Fatal(err)
				}
				sp.Remove()
				kind := format.LayerDelta
				if li == 0 {
					kind = format.LayerBase
				}
				layers = append(layers, format.SegmentRef{Hash: sp.Hash(), Size: sp.Info.Size, Kind: kind, Entries: sp.Info.Entries, Checkpoint: 5})
			}
			descs := []format.StateDescriptor{{Name: "a", Kind: format.StateKindValue, Codec: "bytes"}, {Name: "b", Kind: format.StateKindValue, Codec: "bytes"}}
			if err := b.AddRange("op", descs, format.RangeState{Start: lo, End: hi, Layers: layers}); err != nil {
				rt.Fatal(err)
			}
		}
		m, err := b.Commit(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		v, err := checkpoint.OpenView(ctx, r, m, "op")
		if err != nil {
			rt.Fatal(err)
		}
		got, err := readView(t, v)
		if err != nil {
			rt.Fatal(err)
		}
		want := resolveNaively(t, r, m, "op")
		if !slices.Equal(got, want) {
			rt.Fatalf("view:  %v\nnaive: %v", got, want)
		}
	})
}
