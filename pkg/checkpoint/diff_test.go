package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// keyChange is a KeyChange with its key copied, comparable.
type keyChange struct {
	op, state string
	kg        uint32
	key       string
	change    checkpoint.Change
	old, new  int
}

func collectDiff(t testing.TB, r *checkpoint.Repo, a, b uint64) (*checkpoint.DiffSummary, []keyChange) {
	t.Helper()
	var got []keyChange
	sum, err := checkpoint.Diff(context.Background(), r, a, b, checkpoint.DiffOptions{Keys: true}, func(c checkpoint.KeyChange) error {
		got = append(got, keyChange{c.Operator, c.State, c.KeyGroup, string(c.Key), c.Change, c.OldSize, c.NewSize})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum, got
}

// diffNaively computes the expected key changes from fully resolved maps.
func diffNaively(t testing.TB, r *checkpoint.Repo, a, b uint64) []keyChange {
	t.Helper()
	ma, mb := checkpointtest.Manifest(t, r, a), checkpointtest.Manifest(t, r, b)
	ops := map[string]bool{}
	for _, m := range []*format.Manifest{ma, mb} {
		for _, o := range m.Operators {
			ops[o.ID] = true
		}
	}
	var out []keyChange
	for op := range ops {
		type k struct {
			state string
			kg    uint32
			key   string
		}
		index := func(es []liveEntry) map[k]liveEntry {
			m := map[k]liveEntry{}
			for _, e := range es {
				m[k{e.state, e.kg, e.key}] = e
			}
			return m
		}
		ea, eb := index(resolveNaively(t, r, ma, op)), index(resolveNaively(t, r, mb, op))
		for key, x := range ea {
			y, ok := eb[key]
			switch {
			case !ok:
				out = append(out, keyChange{op, key.state, key.kg, key.key, checkpoint.ChangeRemoved, len(x.value), 0})
			case x.value != y.value || x.expires != y.expires:
				out = append(out, keyChange{op, key.state, key.kg, key.key, checkpoint.ChangeChanged, len(x.value), len(y.value)})
			}
		}
		for key, y := range eb {
			if _, ok := ea[key]; !ok {
				out = append(out, keyChange{op, key.state, key.kg, key.key, checkpoint.ChangeAdded, 0, len(y.value)})
			}
		}
	}
	return out
}

func sortChanges(cs []keyChange) []keyChange {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b keyChange) int {
		return strings.Compare(fmt.Sprint(a.op, a.state, a.kg, a.key), fmt.Sprint(b.op, b.state, b.kg, b.key))
	})
	return cs
}

// stateCounts flattens a summary to "op/state" -> [added removed changed].
func stateCounts(s *checkpoint.DiffSummary) map[string][3]uint64 {
	out := map[string][3]uint64{}
	for _, o := range s.Operators {
		for _, st := range o.States {
			out[o.Operator+"/"+st.State] = [3]uint64{st.Added, st.Removed, st.Changed}
		}
	}
	return out
}

func TestDiff(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		before := checkpointtest.TreeHashes(t, root)
		// The standard history, worked out by hand: checkpoint 2 counted
		// words 0..59 again (new window w002, every third word seen again);
		// checkpoint 3 counted 550..649 (600..649 new) and deleted the
		// counts of 100..109.
		cases := []struct {
			a, b uint64
			want map[string][3]uint64
		}{
			{1, 2, map[string][3]uint64{"count/count": {0, 0, 60}, "count/windows": {60, 0, 0}, "dedupe/seen": {0, 0, 20}}},
			{2, 3, map[string][3]uint64{"count/count": {50, 10, 50}, "count/windows": {100, 0, 0}, "dedupe/seen": {17, 0, 16}}},
			{1, 3, map[string][3]uint64{"count/count": {50, 10, 110}, "count/windows": {160, 0, 0}, "dedupe/seen": {17, 0, 36}}},
			{3, 1, map[string][3]uint64{"count/count": {10, 50, 110}, "count/windows": {0, 160, 0}, "dedupe/seen": {0, 17, 36}}},
		}
		for _, tc := range cases {
			sum, got := collectDiff(t, r, tc.a, tc.b)
			if c := stateCounts(sum); !maps.Equal(c, tc.want) {
				t.Errorf("diff %d %d: counts %v, want %v", tc.a, tc.b, c, tc.want)
			}
			want := diffNaively(t, r, tc.a, tc.b)
			if !slices.Equal(sortChanges(got), sortChanges(want)) {
				t.Errorf("diff %d %d: %d key changes, naive diff has %d (or they differ)", tc.a, tc.b, len(got), len(want))
			}
			if sum.Differences() != uint64(len(got)) || sum.RangesCompared != 4 || sum.RangesSkipped != 0 {
				t.Errorf("diff %d %d: %d differences, %d keys, ranges %d compared %d skipped", tc.a, tc.b, sum.Differences(), len(got), sum.RangesCompared, sum.RangesSkipped)
			}
			var added, removed int64
			for _, c := range got {
				added += int64(c.new)
				removed += int64(c.old)
			}
			if sum.BytesAdded != added || sum.BytesRemoved != removed {
				t.Errorf("diff %d %d: bytes +%d -%d, keys say +%d -%d", tc.a, tc.b, sum.BytesAdded, sum.BytesRemoved, added, removed)
			}
		}
		if after := checkpointtest.TreeHashes(t, root); !maps.Equal(before, after) {
			t.Fatal("diff changed the store")
		}
	})

	t.Run("OKIdentical", func(t *testing.T) {
		ctx := context.Background()
		s, err := store.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cs := newCountingStore(s)
		checkpointtest.Standard(t, cs)
		r, err := checkpoint.OpenRepo(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := checkpoint.Diff(ctx, r, 3, 3, checkpoint.DiffOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Differences() != 0 || sum.RangesSkipped != 4 || sum.RangesCompared != 0 || sum.SegmentsOpened != 0 {
			t.Fatalf("identical checkpoints: %+v", sum)
		}
		for name := range cs.opened() {
			if strings.HasPrefix(name, "segments/") {
				t.Fatalf("diff of identical checkpoints read %s", name)
			}
		}
	})

	t.Run("OKSkipsUnchangedRanges", func(t *testing.T) {
		ctx := context.Background()
		s, err := store.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cs := newCountingStore(s)
		r := checkpointtest.Standard(t, cs).Repo
		// Checkpoint 4 re-references checkpoint 3's layers everywhere but
		// in count's first range, which goes back to checkpoint 2's.
		m2, m3 := checkpointtest.Manifest(t, r, 2), checkpointtest.Manifest(t, r, 3)
		b, err := r.NewCheckpoint(ctx, 4, 3, checkpoint.BuilderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for oi, o := range m3.Operators {
			for ri, rs := range o.Ranges {
				if o.ID == "count" && ri == 0 {
					rs = m2.Operators[oi].Ranges[ri]
				}
				if err := b.AddRange(o.ID, o.States, rs); err != nil {
					t.Fatal(err)
				}
			}
		}
		m4, err := b.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Only the layers of the differing range may be opened.
		allowed := map[string]bool{}
		for _, m := range []*format.Manifest{m3, m4} {
			for _, l := range m.Operators[0].Ranges[0].Layers {
				allowed[format.SegmentPath(l.Hash)] = true
			}
		}
		opened := cs.opened()
		sum, got := collectDiff(t, r, 3, 4)
		for name, n := range cs.opened() {
			if strings.HasPrefix(name, "segments/") && n > opened[name] && !allowed[name] {
				t.Errorf("diff opened %s of an unchanged range", name)
			}
		}
		if sum.RangesSkipped != 3 || sum.RangesCompared != 1 || sum.Differences() == 0 {
			t.Fatalf("summary %+v", sum)
		}
		if want := diffNaively(t, r, 3, 4); !slices.Equal(sortChanges(got), sortChanges(want)) {
			t.Fatalf("%d key changes, naive diff has %d", len(got), len(want))
		}
	})

	t.Run("OKDifferentParallelism", func(t *testing.T) {
		ctx := context.Background()
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		m3 := checkpointtest.Manifest(t, r, 3)
		// Checkpoint 4 holds checkpoint 3's state of "count" as a single
		// range over all key groups, as parallelism 1 would write it.
		v, err := checkpoint.OpenView(ctx, r, m3, "count")
		if err != nil {
			t.Fatal(err)
		}
		entries, err := readView(t, v)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(entries, compareLive)
		ref := putSegment(t, r, entries, format.LayerBase, 4)
		b, err := r.NewCheckpoint(ctx, 4, 0, checkpoint.BuilderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.AddRange("count", m3.Operators[0].States, format.RangeState{Start: 0, End: checkpointtest.KeyGroups - 1, Layers: []format.SegmentRef{ref}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		sum, got := collectDiff(t, r, 3, 4)
		// Same count state; dedupe exists only in 3.
		if c := stateCounts(sum); c["count/count"] != [3]uint64{} || c["count/windows"] != [3]uint64{} || c["dedupe/seen"][1] == 0 {
			t.Fatalf("counts %v", c)
		}
		if want := diffNaively(t, r, 3, 4); !slices.Equal(sortChanges(got), sortChanges(want)) {
			t.Fatalf("%d key changes, naive diff has %d", len(got), len(want))
		}
		sum, got = collectDiff(t, r, 2, 4)
		if want := diffNaively(t, r, 2, 4); !slices.Equal(sortChanges(got), sortChanges(want)) {
			t.Fatalf("2 vs 4: %d key changes, naive diff has %d", len(got), len(want))
		}
		if sum.Operators[0].InA != true || sum.Operators[1].InB != false {
			t.Fatalf("operator presence %+v", sum.Operators)
		}
	})

	t.Run("ErrCheckpointNotFound", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		_, err := checkpoint.Diff(context.Background(), r, 1, 9, checkpoint.DiffOptions{}, nil)
		if !errors.Is(err, checkpoint.ErrCheckpointNotFound) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("ErrEmit", func(t *testing.T) {
		_, j := checkpointtest.StandardDir(t)
		r := j.Repo
		stop := errors.New("stop")
		n := 0
		_, err := checkpoint.Diff(context.Background(), r, 1, 2, checkpoint.DiffOptions{Keys: true}, func(checkpoint.KeyChange) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("got %v after %d calls", err, n)
		}
	})

	t.Run("ErrCorrupt", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		r := j.Repo
		m := checkpointtest.Manifest(t, r, 2)
		seg := format.SegmentPath(m.Operators[1].Ranges[1].Layers[1].Hash)
		checkpointtest.FlipByte(t, root+"/"+seg, 3)
		_, err := checkpoint.Diff(context.Background(), r, 1, 2, checkpoint.DiffOptions{}, nil)
		var ce *format.CorruptError
		if !errors.As(err, &ce) || ce.File != seg || !strings.Contains(err.Error(), "checkpoint 2") {
			t.Fatalf("got %v, want a CorruptError naming %s and checkpoint 2", err, seg)
		}
	})
}

// TestDiff_Memory diffs two checkpoints whose values total far more than
// the heap is allowed to grow, with every key of one in ten reported.
func TestDiff_Memory(t *testing.T) {
	ctx := context.Background()
	s, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n, valueSize = 24_000, 1400 // about 32 MiB of values per checkpoint
	r, err := checkpoint.InitRepo(ctx, s, "big", 128)
	if err != nil {
		t.Fatal(err)
	}
	writeGenerated(t, r, n, valueSize)

	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	changes := 0
	sum, err := checkpoint.Diff(ctx, r, 1, 2, checkpoint.DiffOptions{Keys: true}, func(checkpoint.KeyChange) error {
		changes++
		if changes%500 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Changed != n/10 || changes != n/10 {
		t.Fatalf("%d changed, %d reported, want %d", sum.Changed, changes, n/10)
	}
	const limit = 12 << 20
	growth := int64(peak) - int64(base)
	if growth > limit {
		t.Fatalf("heap grew by %d MiB during the diff of two ~%d MiB checkpoints, limit %d MiB",
			growth>>20, n*valueSize>>20, limit>>20)
	}
	t.Logf("live heap during diff: %.1f MiB above the start, for %d MiB of values per checkpoint", float64(growth)/(1<<20), n*valueSize>>20)
}

// writeGenerated writes checkpoint 1, n keys of valueSize-byte values in
// state "v" of operator "op" in four ranges, and checkpoint 2, a delta that
// rewrites every tenth key. Values are random lowercase text, so they
// compress about as well as real payloads.
func writeGenerated(t testing.TB, r *checkpoint.Repo, n, valueSize int) {
	t.Helper()
	ctx := context.Background()
	kgs := r.Marker().KeyGroups
	rng := rand.New(rand.NewPCG(1, 2))
	value := func() []byte {
		b := make([]byte, valueSize)
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		return b
	}
	descs := []format.StateDescriptor{{Name: "v", Kind: format.StateKindValue, Codec: "bytes"}}
	const ranges = 4
	var base, delta [ranges]format.SegmentRef
	for ri := range ranges {
		lo, hi := uint32(ri)*kgs/ranges, uint32(ri+1)*kgs/ranges-1
		var all, changed []liveEntry
		// Keys are spread over the range's key groups in sorted order.
		for i := range n / ranges {
			kg := lo + uint32(i)%(hi-lo+1)
			e := liveEntry{state: "v", kg: kg, key: fmt.Sprintf("key-%08d", i)}
			all = append(all, e)
			if i%10 == 0 {
				changed = append(changed, e)
			}
		}
		slices.SortFunc(all, compareLive)
		slices.SortFunc(changed, compareLive)
		base[ri] = putSegmentFunc(t, r, all, value, format.LayerBase, 1)
		delta[ri] = putSegmentFunc(t, r, changed, value, format.LayerDelta, 2)
	}
	for id := uint64(1); id <= 2; id++ {
		b, err := r.NewCheckpoint(ctx, id, id-1, checkpoint.BuilderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for ri := range ranges {
			lo, hi := uint32(ri)*kgs/ranges, uint32(ri+1)*kgs/ranges-1
			layers := []format.SegmentRef{base[ri]}
			if id == 2 {
				layers = append(layers, delta[ri])
			}
			if err := b.AddRange("op", descs, format.RangeState{Start: lo, End: hi, Layers: layers}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// putSegment stores the entries (sorted, values as given) as one segment.
func putSegment(t testing.TB, r *checkpoint.Repo, entries []liveEntry, kind string, cp uint64) format.SegmentRef {
	t.Helper()
	return putSegmentFunc(t, r, entries, nil, kind, cp)
}

// putSegmentFunc stores sorted entries as one segment, taking each value
// from value when it is set.
func putSegmentFunc(t testing.TB, r *checkpoint.Repo, entries []liveEntry, value func() []byte, kind string, cp uint64) format.SegmentRef {
	t.Helper()
	sp, err := checkpoint.SpoolSegment(t.TempDir(), format.SegmentWriterOptions{}, func(w *format.SegmentWriter) error {
		for _, le := range entries {
			e := format.Entry{State: le.state, KeyGroup: le.kg, Key: []byte(le.key), Value: []byte(le.value), ExpiresAt: le.expires}
			if value != nil {
				e.Value = value()
			}
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
	return format.SegmentRef{Hash: sp.Hash(), Size: sp.Info.Size, Kind: kind, Entries: sp.Info.Entries, Checkpoint: cp}
}
