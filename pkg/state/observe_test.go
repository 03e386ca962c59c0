package state

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/arkstate/arkstate/pkg/format"
)

// readAll reads every key of every typed state of h, for comparing two
// backends.
func readAll(t *rapid.T, h *handles) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if v, ok, err := h.v.Get(k); err != nil {
			t.Fatal(err)
		} else if ok {
			out["v/"+k] = v
		}
		if v, ok, err := h.t.Get(k); err != nil {
			t.Fatal(err)
		} else if ok {
			out["t/"+k] = v
		}
		m := map[string]uint64{}
		if err := h.m.All(k, func(mk string, v uint64) bool { m[mk] = v; return true }); err != nil {
			t.Fatal(err)
		}
		if len(m) > 0 {
			out["m/"+k] = m
		}
		if l, err := h.l.Get(k); err != nil {
			t.Fatal(err)
		} else if len(l) > 0 {
			out["l/"+k] = l
		}
	}
	return out
}

func sameState(a, b map[string]any) bool {
	return maps.EqualFunc(a, b, func(x, y any) bool {
		switch x := x.(type) {
		case map[string]uint64:
			return maps.Equal(x, y.(map[string]uint64))
		case []uint64:
			return slices.Equal(x, y.([]uint64))
		}
		return x == y
	})
}

// What an observer sees, applied in order onto an empty backend, or onto a
// full snapshot taken along the way (only what came after it), rebuilds the
// same state: the transaction log's replay in miniature.
func TestBackend_ObserverReplay(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clk := &fakeClock{t: int64(time.Hour)}
		opts := Options{Now: clk.now}
		b, err := NewBackend(opts)
		if err != nil {
			rt.Fatal(err)
		}
		h := newHandles(rt, b, clk)
		var seen []*format.Entry
		b.SetObserver(func(e *format.Entry) {
			c := *e
			c.Key, c.Value = bytes.Clone(e.Key), bytes.Clone(e.Value)
			if e.Value != nil && c.Value == nil {
				c.Value = []byte{}
			}
			seen = append(seen, &c)
		})
		var snapSeg []byte
		var snapDescs []format.StateDescriptor
		snapAt := 0

		keyGen := rapid.SampledFrom([]string{"a", "b", "c", "d", "e", "f", "g", "h"})
		subGen := rapid.SampledFrom([]string{"x", "y", "z"})
		valGen := rapid.Uint64Range(0, 1000)
		rt.Repeat(map[string]func(*rapid.T){
			"put":    func(rt *rapid.T) { noErr(rt, h.v.Put(keyGen.Draw(rt, "k"), valGen.Draw(rt, "v"))) },
			"delete": func(rt *rapid.T) { noErr(rt, h.v.Delete(keyGen.Draw(rt, "k"))) },
			"putTTL": func(rt *rapid.T) { noErr(rt, h.t.Put(keyGen.Draw(rt, "k"), valGen.Draw(rt, "v"))) },
			"mapPut": func(rt *rapid.T) {
				noErr(rt, h.m.Put(keyGen.Draw(rt, "k"), subGen.Draw(rt, "mk"), valGen.Draw(rt, "v")))
			},
			"mapDelete": func(rt *rapid.T) { noErr(rt, h.m.Delete(keyGen.Draw(rt, "k"), subGen.Draw(rt, "mk"))) },
			"mapClear":  func(rt *rapid.T) { noErr(rt, h.m.Clear(keyGen.Draw(rt, "k"))) },
			"listAdd":   func(rt *rapid.T) { noErr(rt, h.l.Add(keyGen.Draw(rt, "k"), valGen.Draw(rt, "v"))) },
			"listSet": func(rt *rapid.T) {
				noErr(rt, h.l.Update(keyGen.Draw(rt, "k"), rapid.SliceOfN(valGen, 0, 3).Draw(rt, "vs")))
			},
			"listClear": func(rt *rapid.T) { noErr(rt, h.l.Clear(keyGen.Draw(rt, "k"))) },
			"advance": func(rt *rapid.T) {
				clk.t += int64(rapid.IntRange(1, 15).Draw(rt, "ms")) * int64(time.Millisecond)
			},
			"maintain": func(rt *rapid.T) { b.Maintain(rapid.IntRange(1, 500).Draw(rt, "budget")) },
			"snapshot": func(rt *rapid.T) {
				snap := b.Snapshot(Full)
				var buf bytes.Buffer
				w := format.NewSegmentWriter(&buf, format.SegmentWriterOptions{BlockSize: 256})
				noErr(rt, snap.WriteTo(w))
				if _, err := w.Close(); err != nil {
					rt.Fatal(err)
				}
				snapSeg, snapDescs, snapAt = buf.Bytes(), snap.Descriptors(), len(seen)
				snap.Release(true)
			},
		})
		want := readAll(rt, h)

		fresh, err := NewBackend(opts)
		if err != nil {
			rt.Fatal(err)
		}
		hf := newHandles(rt, fresh, clk)
		for _, e := range seen {
			noErr(rt, fresh.Apply(e))
		}
		if got := readAll(rt, hf); !sameState(got, want) {
			rt.Fatalf("every change applied to an empty backend: %v; want %v", got, want)
		}

		if snapSeg == nil {
			return
		}
		seg, err := format.OpenSegment(bytes.NewReader(snapSeg), int64(len(snapSeg)), "snap")
		if err != nil {
			rt.Fatal(err)
		}
		restored, err := NewBackend(opts)
		if err != nil {
			rt.Fatal(err)
		}
		hr := newHandles(rt, restored, clk)
		noErr(rt, restored.Restore(snapDescs, []*format.SegmentReader{seg}))
		for _, e := range seen[snapAt:] {
			noErr(rt, restored.Apply(e))
		}
		if got := readAll(rt, hr); !sameState(got, want) {
			rt.Fatalf("the snapshot plus the %d changes after it: %v; want %v", len(seen)-snapAt, got, want)
		}
	})
}

// Apply refuses to mix with writes through typed states.
func TestBackend_ApplyAfterWrites(t *testing.T) {
	b := newTestBackend(t, Options{})
	v, err := NewValue(b, Descriptor[uint64]{Name: "v"})
	noErr(t, err)
	noErr(t, v.Put("a", 1))
	if err := b.Apply(&format.Entry{State: "v", KeyGroup: KeyGroupFor("b", b.KeyGroups()), Key: []byte("b"), Value: make([]byte, 8)}); err == nil {
		t.Fatal("Apply after a Put succeeded")
	}
}
