package state

import (
	"errors"
	"testing"
	"time"
)

func TestValue_PutGet(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		b := newTestBackend(t, Options{})
		v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
		if _, ok, err := v.Get("a"); ok || err != nil {
			t.Fatalf("empty Get = %v, %v", ok, err)
		}
		noErr(t, v.Put("a", 1))
		noErr(t, v.Put("a", 2))
		noErr(t, v.Put("b", 7))
		got, ok, err := v.Get("a")
		if !ok || err != nil || got != 2 {
			t.Fatalf("Get(a) = %d, %v, %v; want 2", got, ok, err)
		}
		noErr(t, v.Delete("a"))
		if _, ok, _ := v.Get("a"); ok {
			t.Fatal("deleted key still visible")
		}
		if got, _, _ := v.Get("b"); got != 7 {
			t.Fatalf("Get(b) = %d, want 7", got)
		}
	})
	t.Run("OKStruct", func(t *testing.T) {
		type session struct {
			User  string `json:"user"`
			Count int    `json:"count"`
		}
		b := newTestBackend(t, Options{})
		v := must[*Value[session]](t)(NewValue(b, Descriptor[session]{Name: "sessions"}))
		noErr(t, v.Put("k", session{User: "ann", Count: 3}))
		got, ok, err := v.Get("k")
		if !ok || err != nil || got != (session{User: "ann", Count: 3}) {
			t.Fatalf("Get = %+v, %v, %v", got, ok, err)
		}
	})
	t.Run("ErrKeyGroupOutOfRange", func(t *testing.T) {
		b := newTestBackend(t, Options{Range: &KeyGroupRange{Start: 0, End: 9}})
		v := must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "count"}))
		var outside string
		for i := 0; ; i++ {
			k := string(rune('a'+i%26)) + string(rune('a'+i/26))
			if KeyGroupFor(k, 128) > 9 {
				outside = k
				break
			}
		}
		if err := v.Put(outside, 1); !errors.Is(err, ErrKeyGroupOutOfRange) {
			t.Fatalf("Put outside range: %v", err)
		}
	})
	t.Run("ErrStateConflict", func(t *testing.T) {
		b := newTestBackend(t, Options{})
		must[*Value[uint64]](t)(NewValue(b, Descriptor[uint64]{Name: "x"}))
		if _, err := NewValue(b, Descriptor[string]{Name: "x"}); !errors.Is(err, ErrStateConflict) {
			t.Fatalf("re-registering with another codec: %v", err)
		}
		if _, err := NewList(b, Descriptor[uint64]{Name: "x"}); !errors.Is(err, ErrStateConflict) {
			t.Fatalf("re-registering as a list: %v", err)
		}
		if _, err := NewValue(b, Descriptor[uint64]{Name: "x"}); err != nil {
			t.Fatalf("re-registering identically: %v", err)
		}
	})
}

func TestValue_TTL(t *testing.T) {
	clock := &fakeClock{t: 1_000}
	b := newTestBackend(t, Options{Now: clock.now})
	v := must[*Value[string]](t)(NewValue(b, Descriptor[string]{Name: "seen", TTL: time.Second}))
	noErr(t, v.Put("k", "x"))
	clock.t += int64(time.Second) - 1
	if _, ok, _ := v.Get("k"); !ok {
		t.Fatal("entry expired early")
	}
	noErr(t, v.Put("k", "y")) // a write restarts the TTL
	clock.t += int64(time.Second) - 1
	if got, ok, _ := v.Get("k"); !ok || got != "y" {
		t.Fatalf("Get after rewrite = %q, %v", got, ok)
	}
	clock.t++
	if _, ok, _ := v.Get("k"); ok {
		t.Fatal("expired entry returned")
	}

	// Expired entries are dropped at snapshot time...
	noErr(t, v.Put("live", "z"))
	seg := writeSegment(t, b.Snapshot(Full))
	if n := seg.Info().Entries; n != 1 {
		t.Fatalf("full snapshot holds %d entries, want 1 (expired one dropped)", n)
	}
	// ...and by the background sweep once the frozen layer is folded in.
	clock.t += int64(2 * time.Second)
	if b.Maintain(1 << 20) {
		t.Fatal("frozen layers left after unbounded maintenance")
	}
	b.Maintain(1 << 20) // the sweep runs once the merge is done
	if s := b.Stats(); s.ExpiredDropped == 0 || s.FrozenLayers != 0 {
		t.Fatalf("after maintenance: %+v", s)
	}
	if n := len(b.base.states[0].vals); n != 0 {
		t.Fatalf("base still holds %d expired entries", n)
	}
}

func TestReducing_Add(t *testing.T) {
	b := newTestBackend(t, Options{})
	r := must[*Reducing[int64]](t)(NewReducing(b, Descriptor[int64]{Name: "max"}, func(a, v int64) int64 { return max(a, v) }))
	for _, v := range []int64{3, 9, -1, 4} {
		noErr(t, r.Add("k", v))
	}
	if got, ok, err := r.Get("k"); !ok || err != nil || got != 9 {
		t.Fatalf("Get = %d, %v, %v; want 9", got, ok, err)
	}
	noErr(t, r.Clear("k"))
	if _, ok, _ := r.Get("k"); ok {
		t.Fatal("cleared value visible")
	}
}

func TestAggregating_Add(t *testing.T) {
	type acc struct{ Sum, N float64 }
	b := newTestBackend(t, Options{})
	avg := AggregateFunc[float64, acc, float64]{
		Create: func() acc { return acc{} },
		Add:    func(a acc, in float64) acc { return acc{a.Sum + in, a.N + 1} },
		Result: func(a acc) float64 { return a.Sum / a.N },
	}
	a := must[*Aggregating[float64, acc, float64]](t)(NewAggregating(b, Descriptor[acc]{Name: "avg"}, avg))
	for _, v := range []float64{1, 2, 6} {
		noErr(t, a.Add("k", v))
	}
	if got, ok, err := a.Get("k"); !ok || err != nil || got != 3 {
		t.Fatalf("Get = %v, %v, %v; want 3", got, ok, err)
	}
	if _, err := NewAggregating(b, Descriptor[acc]{Name: "bad"}, AggregateFunc[float64, acc, float64]{}); err == nil {
		t.Fatal("NewAggregating accepted an empty AggregateFunc")
	}
}

func TestList_Add(t *testing.T) {
	b := newTestBackend(t, Options{})
	l := must[*List[string]](t)(NewList(b, Descriptor[string]{Name: "events"}))
	noErr(t, l.Add("k", "a"))
	noErr(t, l.Add("k", ""))
	s := b.Snapshot(Full) // later adds must not change what the snapshot sees
	noErr(t, l.Add("k", "c"))
	seg := writeSegment(t, s)
	got := must[[]string](t)(l.Get("k"))
	if len(got) != 3 || got[0] != "a" || got[1] != "" || got[2] != "c" {
		t.Fatalf("Get = %q", got)
	}
	r := newTestBackend(t, Options{})
	noErr(t, r.Restore(s.Descriptors(), []*SegmentReaderT{seg}))
	rl := must[*List[string]](t)(NewList(r, Descriptor[string]{Name: "events"}))
	if got := must[[]string](t)(rl.Get("k")); len(got) != 2 {
		t.Fatalf("restored list = %q, want the 2 elements at snapshot time", got)
	}
	noErr(t, l.Update("k", []string{"x"}))
	if got := must[[]string](t)(l.Get("k")); len(got) != 1 || got[0] != "x" {
		t.Fatalf("after Update: %q", got)
	}
	noErr(t, l.Clear("k"))
	if got := must[[]string](t)(l.Get("k")); got != nil {
		t.Fatalf("after Clear: %q", got)
	}
}

func TestMap_PutGet(t *testing.T) {
	b := newTestBackend(t, Options{})
	m := must[*Map[string, int64]](t)(NewMap[string](b, Descriptor[int64]{Name: "windows"}, nil))
	noErr(t, m.Put("user", "w1", 10))
	noErr(t, m.Put("user", "w2", 20))
	noErr(t, m.Put("other", "w1", 5))
	seg1 := writeSegment(t, b.Snapshot(Full))
	noErr(t, m.Delete("user", "w1"))
	noErr(t, m.Put("user", "w3", 30))
	seg2 := writeSegment(t, b.Snapshot(Incremental))

	check := func(m *Map[string, int64]) {
		t.Helper()
		var keys []string
		var sum int64
		noErr(t, m.All("user", func(k string, v int64) bool { keys = append(keys, k); sum += v; return true }))
		if len(keys) != 2 || keys[0] != "w2" || keys[1] != "w3" || sum != 50 {
			t.Fatalf("All(user) = %q sum %d", keys, sum)
		}
		if n := must[int](t)(m.Len("other")); n != 1 {
			t.Fatalf("Len(other) = %d", n)
		}
		if _, ok, _ := m.Get("user", "w1"); ok {
			t.Fatal("deleted map entry visible")
		}
	}
	check(m)
	r := newTestBackend(t, Options{})
	noErr(t, r.Restore(b.descriptorsForTest(), []*SegmentReaderT{seg1, seg2}))
	rm := must[*Map[string, int64]](t)(NewMap[string](r, Descriptor[int64]{Name: "windows"}, nil))
	check(rm)
	noErr(t, rm.Clear("user"))
	if n := must[int](t)(rm.Len("user")); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
}
