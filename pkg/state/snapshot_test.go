package state

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/arkstate/arkstate/pkg/format"
)

func fillCounts(t testing.TB, v *Value[uint64], n int) {
	t.Helper()
	for i := range n {
		noErr(t, v.Put(fmt.Sprintf("key-%06d", i), uint64(i)))
	}
}

func TestSnapshot_FullAndIncremental(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	fillCounts(t, v, 1000)

	full := b.Snapshot(Full)
	if full.Kind() != Full {
		t.Fatalf("kind = %v", full.Kind())
	}
	base := writeSegment(t, full)
	if n := base.Info().Entries; n != 1000 {
		t.Fatalf("full snapshot has %d entries, want 1000", n)
	}

	// Change 10 keys, delete 5, add 3: the delta holds exactly those.
	for i := range 10 {
		noErr(t, v.Put(fmt.Sprintf("key-%06d", i), 7))
	}
	for i := 10; i < 15; i++ {
		noErr(t, v.Delete(fmt.Sprintf("key-%06d", i)))
	}
	for i := 1000; i < 1003; i++ {
		noErr(t, v.Put(fmt.Sprintf("key-%06d", i), 1))
	}
	inc := b.Snapshot(Incremental)
	if inc.Kind() != Incremental {
		t.Fatalf("kind = %v", inc.Kind())
	}
	delta := writeSegment(t, inc)
	if info := delta.Info(); info.Entries != 18 || info.Tombstones != 5 {
		t.Fatalf("delta has %d entries (%d tombstones), want 18 (5)", info.Entries, info.Tombstones)
	}

	r := newTestBackend(t, Options{})
	noErr(t, r.Restore(inc.Descriptors(), []*format.SegmentReader{base, delta}))
	rv := must[*Value[uint64]](t)(NewValue(r, Descriptor[uint64]{Name: "count"}))
	for i := range 1003 {
		key := fmt.Sprintf("key-%06d", i)
		want, wantOK, _ := v.Get(key)
		got, ok, err := rv.Get(key)
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("%s: restored %d,%v,%v; live %d,%v", key, got, ok, err, want, wantOK)
		}
	}
}

func TestSnapshot_IncrementalAfterFailureIsFull(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	if s := b.Snapshot(Incremental); s.Kind() != Full {
		t.Fatal("first snapshot was not full")
	} else {
		s.Release(true)
	}
	noErr(t, v.Put("a", 1))
	s := b.Snapshot(Incremental)
	s.Release(false) // its checkpoint failed: the change to "a" is stored nowhere
	noErr(t, v.Put("b", 2))
	s = b.Snapshot(Incremental)
	if s.Kind() != Full {
		t.Fatal("incremental after a failed snapshot was not promoted to full")
	}
	if n := writeSegment(t, s).Info().Entries; n != 2 {
		t.Fatalf("promoted full snapshot has %d entries, want 2", n)
	}
	if s := b.Snapshot(Incremental); s.Kind() != Incremental {
		t.Fatal("chain did not resume after the full snapshot")
	} else {
		s.Release(true)
	}
}

// Processing goes on while a snapshot is written from another goroutine; the
// race detector checks that they share nothing mutable, and the snapshot must
// hold exactly the state at the moment it was taken.
func TestSnapshot_ConcurrentWithWrites(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	m := must[*Map[string, uint64]](t)(NewMap[string](b, Descriptor[uint64]{Name: "m"}, nil))
	fillCounts(t, v, 5000)
	writeSegment(t, b.Snapshot(Full))
	for round := range 5 {
		kind := Incremental
		if round%2 == 1 {
			kind = Full
		}
		s := b.Snapshot(kind)
		var seg bytes.Buffer
		var wg sync.WaitGroup
		var werr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := format.NewSegmentWriter(&seg, format.SegmentWriterOptions{})
			if werr = s.WriteTo(w); werr == nil {
				_, werr = w.Close()
			}
			s.Release(werr == nil)
		}()
		for i := range 5000 {
			key := fmt.Sprintf("key-%06d", i)
			noErr(t, v.Put(key, uint64(round*10000+i)))
			noErr(t, m.Put(key, "x", uint64(i)))
			if i%7 == 0 {
				noErr(t, v.Delete(key))
			}
			_, _, _ = v.Get(key)
		}
		b.Maintain(100)
		wg.Wait()
		noErr(t, werr)
	}
}

func TestRestore_KeyGroupSubset(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	fillCounts(t, v, 2000)
	s := b.Snapshot(Full)
	seg := writeSegment(t, s)

	// Restore at parallelism 3: every key lands in exactly one subtask.
	seen := 0
	for i := range 3 {
		rng := must[KeyGroupRange](t)(RangeForSubtask(128, 3, i))
		r := newTestBackend(t, Options{Range: &rng})
		noErr(t, r.Restore(s.Descriptors(), []*format.SegmentReader{seg}))
		rv := must[*Value[uint64]](t)(NewValue(r, Descriptor[uint64]{Name: "count"}))
		for k := range 2000 {
			key := fmt.Sprintf("key-%06d", k)
			got, ok, err := rv.Get(key)
			if errors.Is(err, ErrKeyGroupOutOfRange) {
				continue
			}
			if err != nil || !ok || got != uint64(k) {
				t.Fatalf("subtask %d, %s: %d, %v, %v", i, key, got, ok, err)
			}
			seen++
		}
	}
	if seen != 2000 {
		t.Fatalf("subtasks together restored %d keys, want 2000", seen)
	}
}

func TestRestore_ErrCorrupt(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	fillCounts(t, v, 3000)
	s := b.Snapshot(Full)
	var buf bytes.Buffer
	w := format.NewSegmentWriter(&buf, format.SegmentWriterOptions{BlockSize: 4096})
	noErr(t, s.WriteTo(w))
	must[format.SegmentInfo](t)(w.Close())
	s.Release(true)
	good := buf.Bytes()

	t.Run("ErrFlippedBlockBit", func(t *testing.T) {
		bad := bytes.Clone(good)
		bad[100] ^= 0x10 // inside the first block
		seg := must[*format.SegmentReader](t)(format.OpenSegment(bytes.NewReader(bad), int64(len(bad)), "flipped.seg"))
		r := newTestBackend(t, Options{})
		err := r.Restore(s.Descriptors(), []*format.SegmentReader{seg})
		var ce *format.CorruptError
		if !errors.As(err, &ce) || ce.File != "flipped.seg" {
			t.Fatalf("restore of a damaged block: %v", err)
		}
		rv := must[*Value[uint64]](t)(NewValue(r, Descriptor[uint64]{Name: "count"}))
		if _, ok, _ := rv.Get("key-000001"); ok {
			t.Fatal("a failed restore left state behind")
		}
	})
	t.Run("ErrWrongKeyGroup", func(t *testing.T) {
		// A well-formed segment whose entry claims the wrong key group.
		var bad bytes.Buffer
		w := format.NewSegmentWriter(&bad, format.SegmentWriterOptions{})
		kg := (KeyGroupFor("a", 128) + 1) % 128
		noErr(t, w.Add(&format.Entry{State: "count", KeyGroup: kg, Key: []byte("a"), Value: make([]byte, 8)}))
		must[format.SegmentInfo](t)(w.Close())
		seg := must[*format.SegmentReader](t)(format.OpenSegment(bytes.NewReader(bad.Bytes()), int64(bad.Len()), "kg.seg"))
		r := newTestBackend(t, Options{})
		if err := r.Restore(s.Descriptors(), []*format.SegmentReader{seg}); err == nil {
			t.Fatal("restored an entry filed under the wrong key group")
		}
	})
	t.Run("ErrUnknownState", func(t *testing.T) {
		seg := must[*format.SegmentReader](t)(format.OpenSegment(bytes.NewReader(good), int64(len(good)), "good.seg"))
		r := newTestBackend(t, Options{})
		if err := r.Restore(nil, []*format.SegmentReader{seg}); err == nil {
			t.Fatal("restored entries of a state the manifest does not describe")
		}
	})
	t.Run("ErrSnapshotInFlight", func(t *testing.T) {
		r := newTestBackend(t, Options{})
		s := r.Snapshot(Full)
		defer s.Release(true)
		if err := r.Restore(nil, nil); !errors.Is(err, ErrSnapshotInFlight) {
			t.Fatalf("Restore during a snapshot: %v", err)
		}
	})
}

func TestBackend_MaintainFoldsLayers(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	fillCounts(t, v, 1000)
	s := b.Snapshot(Full)
	noErr(t, v.Put("key-000001", 99))
	if !b.Maintain(1 << 20) {
		t.Fatal("a frozen layer was folded while a snapshot was reading it")
	}
	writeSegment(t, s)
	// Writes alone fold the layer in, a little per write.
	for i := range 5000 {
		noErr(t, v.Put(fmt.Sprintf("other-%d", i), 1))
	}
	st := b.Stats()
	if st.FrozenLayers != 0 || st.TablesMerged == 0 {
		t.Fatalf("after 5000 writes: %+v", st)
	}
	if got, _, _ := v.Get("key-000001"); got != 99 {
		t.Fatalf("Get after folding = %d, want 99", got)
	}
}

// MaintainIdle makes progress in bounded steps, says when more is left, and
// says no (instead of letting a caller spin) while a snapshot pins the layer.
func TestBackend_MaintainIdle(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	fillCounts(t, v, 1000)
	writeSegment(t, b.Snapshot(Full)) // the base, adopted whole at the first fold
	if b.MaintainIdle(1 << 20); b.Stats().FrozenLayers != 0 {
		t.Fatalf("first fold: %+v", b.Stats())
	}
	for i := range 1000 {
		noErr(t, v.Put(fmt.Sprintf("key-%06d", i), 7))
	}
	s := b.Snapshot(Incremental)
	if b.MaintainIdle(100) || b.Stats().FrozenLayers != 1 {
		t.Fatalf("MaintainIdle worked on a layer a snapshot reads: %+v", b.Stats())
	}
	writeSegment(t, s)
	steps := 0
	for b.MaintainIdle(100) {
		steps++
		if steps > 100 {
			t.Fatal("MaintainIdle never finished")
		}
	}
	if st := b.Stats(); st.FrozenLayers != 0 || steps < 5 {
		t.Fatalf("after %d steps of 100 entries: %+v", steps, st)
	}
	if got, _, _ := v.Get("key-000500"); got != 7 {
		t.Fatalf("Get after folding = %d, want 7", got)
	}
}

func TestSimpleMemoryState_Typed(t *testing.T) {
	s := NewSimpleMemoryState()
	noErr(t, PutTyped(s, "counter", uint64(42)))
	got, ok, err := GetTyped[uint64](s, "counter")
	if !ok || err != nil || got != 42 {
		t.Fatalf("GetTyped = %d, %v, %v", got, ok, err)
	}
	noErr(t, PutTyped(s, "name", "ark"))
	if name, _, _ := GetTyped[string](s, "name"); name != "ark" {
		t.Fatalf("GetTyped[string] = %q", name)
	}
	if _, _, err := GetTyped[uint64](s, "name"); !errors.Is(err, ErrCodec) {
		t.Fatalf("reading a string as uint64: %v", err)
	}
	if _, ok, _ := GetTyped[uint64](s, "missing"); ok {
		t.Fatal("missing key found")
	}
}

// Handles registered before Restore keep working: the restore must not
// renumber their states.
func TestRestore_HandlesBoundBefore(t *testing.T) {
	b := newTestBackend(t, Options{})
	z := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "z"}))
	a := must[*Value[string]](t)(NewValue(b, Descriptor[string]{Name: "a"}))
	noErr(t, z.Put("k", 7))
	noErr(t, a.Put("k", "x"))
	s := b.Snapshot(Full)
	seg := writeSegment(t, s)

	r := newTestBackend(t, Options{})
	rz := must[*Value[uint64]](t)(NewValue(r, Descriptor[uint64]{Name: "z"}))
	ra := must[*Value[string]](t)(NewValue(r, Descriptor[string]{Name: "a"}))
	// The manifest lists states by name: "a" before "z", unlike registration.
	noErr(t, r.Restore(s.Descriptors(), []*format.SegmentReader{seg}))
	if got, _, err := rz.Get("k"); err != nil || got != 7 {
		t.Fatalf("z = %d, %v", got, err)
	}
	if got, _, err := ra.Get("k"); err != nil || got != "x" {
		t.Fatalf("a = %q, %v", got, err)
	}
}

// A full snapshot of a state large enough to be hashed on several
// goroutines, spread over several layers with overwrites, deletes and keys
// of different prefixes, restores to exactly the live state. The segment
// writer refuses out-of-order entries, so a wrong shared prefix in any part
// would fail the write.
func TestSnapshot_LargeFullAcrossLayers(t *testing.T) {
	b := newTestBackend(t, Options{})
	v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
	keys := map[string]bool{}
	put := func(k string, x uint64) { noErr(t, v.Put(k, x)); keys[k] = true }
	for i := range 3 * parallelHashMin {
		put(fmt.Sprintf("key-%06d", i), uint64(i))
	}
	writeSegment(t, b.Snapshot(Full))
	for i := 0; i < 3*parallelHashMin; i += 4 {
		put(fmt.Sprintf("key-%06d", i), 7)
		noErr(t, v.Delete(fmt.Sprintf("key-%06d", i+1)))
	}
	writeSegment(t, b.Snapshot(Incremental))
	// The newest layer, hashed by the last goroutine, shares no prefix with
	// the older keys: the prefix of the whole must be the shortest found.
	put("k", 1)
	put("key-", 2)
	for i := range parallelHashMin {
		put(fmt.Sprintf("zz-%d", i), uint64(i))
	}
	full := b.Snapshot(Full)
	seg := writeSegment(t, full)

	r := newTestBackend(t, Options{})
	noErr(t, r.Restore(full.Descriptors(), []*format.SegmentReader{seg}))
	rv := must[*Value[uint64]](t)(NewValue(r, Descriptor[uint64]{Name: "count"}))
	live := 0
	for k := range keys {
		want, wantOK, _ := v.Get(k)
		got, ok, err := rv.Get(k)
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("%s: restored %d,%v,%v; live %d,%v", k, got, ok, err, want, wantOK)
		}
		if ok {
			live++
		}
	}
	if n := seg.Info().Entries; n != uint64(live) {
		t.Fatalf("full snapshot has %d entries, want the %d live keys", n, live)
	}
}

// The same for map state: enough user keys to be hashed on several
// goroutines, over two layers, with user keys of different prefixes in the
// newest one.
func TestSnapshot_LargeMapFullAcrossLayers(t *testing.T) {
	b := newTestBackend(t, Options{})
	m := must[*Map[string, uint64]](t)(NewMap(b, Descriptor[uint64]{Name: "visits"}, StringCodec{}))
	want := map[[2]string]uint64{}
	put := func(k, mk string, v uint64) { noErr(t, m.Put(k, mk, v)); want[[2]string{k, mk}] = v }
	for i := range 2 * parallelHashMin {
		put(fmt.Sprintf("user-%06d", i), "home", uint64(i))
	}
	writeSegment(t, b.Snapshot(Full))
	for i := range parallelHashMin {
		put(fmt.Sprintf("user-%06d", i), "cart", 1)
		put(fmt.Sprintf("zz-%d", i), "home", 2)
	}
	full := b.Snapshot(Full)
	seg := writeSegment(t, full)

	r := newTestBackend(t, Options{})
	noErr(t, r.Restore(full.Descriptors(), []*format.SegmentReader{seg}))
	rm := must[*Map[string, uint64]](t)(NewMap(r, Descriptor[uint64]{Name: "visits"}, StringCodec{}))
	for k, v := range want {
		got, ok, err := rm.Get(k[0], k[1])
		if err != nil || !ok || got != v {
			t.Fatalf("%q/%q: restored %d,%v,%v; want %d", k[0], k[1], got, ok, err, v)
		}
	}
	if n := seg.Info().Entries; n != uint64(len(want)) {
		t.Fatalf("full snapshot has %d entries, want %d", n, len(want))
	}
}
