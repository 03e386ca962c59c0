package state

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/arkstate/arkstate/pkg/format"
)

// The model the backend must always agree with: plain maps, with expiry
// times for the TTL state.
type model struct {
	vals  map[string]uint64
	ttl   map[string]timed
	maps  map[string]map[string]uint64
	lists map[string][]uint64
}

type timed struct {
	v   uint64
	exp int64
}

func newModel() *model {
	return &model{vals: map[string]uint64{}, ttl: map[string]timed{}, maps: map[string]map[string]uint64{}, lists: map[string][]uint64{}}
}

func (m *model) clone() *model {
	c := &model{vals: maps.Clone(m.vals), ttl: maps.Clone(m.ttl), maps: map[string]map[string]uint64{}, lists: map[string][]uint64{}}
	for k, v := range m.maps {
		c.maps[k] = maps.Clone(v)
	}
	for k, v := range m.lists {
		c.lists[k] = slices.Clone(v)
	}
	return c
}

const propTTL = 10 * time.Millisecond

// handles are the typed states of one backend.
type handles struct {
	b   *Backend
	v   *Value[uint64]
	t   *Value[uint64]
	m   *Map[string, uint64]
	l   *List[uint64]
	clk *fakeClock
}

func newHandles(t *rapid.T, b *Backend, clk *fakeClock) *handles {
	h := &handles{b: b, clk: clk}
	var err error
	if h.v, err = NewValue(b, Descriptor[uint64]{Name: "v"}); err != nil {
		t.Fatal(err)
	}
	if h.t, err = NewValue(b, Descriptor[uint64]{Name: "t", TTL: propTTL}); err != nil {
		t.Fatal(err)
	}
	if h.m, err = NewMap[string](b, Descriptor[uint64]{Name: "m"}, nil); err != nil {
		t.Fatal(err)
	}
	if h.l, err = NewList(b, Descriptor[uint64]{Name: "l"}); err != nil {
		t.Fatal(err)
	}
	return h
}

// A random sequence of puts, deletes, clock moves, snapshots (full and
// incremental, persisted or failed, written while more writes happen),
// maintenance and restores always reads back the same as the model.
func TestBackend_Model(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clk := &fakeClock{t: int64(time.Hour)}
		opts := Options{Now: clk.now, MaintenanceRatio: rapid.IntRange(1, 64).Draw(rt, "ratio")}
		b, err := NewBackend(opts)
		if err != nil {
			rt.Fatal(err)
		}
		h := newHandles(rt, b, clk)
		m := newModel()

		// The persisted chain of segments and the model as of its last link.
		var chain [][]byte
		var chainDescs []format.StateDescriptor
		persisted := newModel()
		var pending *Snapshot
		var pendingModel *model

		keyGen := rapid.SampledFrom([]string{"a", "b", "c", "d", "e", "f", "g", "h"})
		subGen := rapid.SampledFrom([]string{"x", "y", "z"})
		valGen := rapid.Uint64Range(0, 1000)

		check := func(rt *rapid.T) {
			now := clk.t
			for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
				got, ok, err := h.v.Get(k)
				want, wantOK := m.vals[k]
				if err != nil || ok != wantOK || got != want {
					rt.Fatalf("v[%s] = %d,%v,%v; model %d,%v", k, got, ok, err, want, wantOK)
				}
				got, ok, err = h.t.Get(k)
				tw, wantOK := m.ttl[k]
				wantOK = wantOK && tw.exp > now
				if err != nil || ok != wantOK || (ok && got != tw.v) {
					rt.Fatalf("t[%s] = %d,%v,%v; model %+v at %d", k, got, ok, err, tw, now)
				}
				gotMap := map[string]uint64{}
				if err := h.m.All(k, func(mk string, v uint64) bool { gotMap[mk] = v; return true }); err != nil {
					rt.Fatal(err)
				}
				if !maps.Equal(gotMap, m.maps[k]) && (len(gotMap) != 0 || len(m.maps[k]) != 0) {
					rt.Fatalf("m[%s] = %v; model %v", k, gotMap, m.maps[k])
				}
				gotList, err := h.l.Get(k)
				if err != nil || !slices.Equal(gotList, m.lists[k]) {
					rt.Fatalf("l[%s] = %v, %v; model %v", k, gotList, err, m.lists[k])
				}
			}
		}

		finish := func(rt *rapid.T, ok bool) {
			if pending == nil {
				return
			}
			if !ok {
				pending.Release(false)
				pending = nil
				return
			}
			var buf bytes.Buffer
			w := format.NewSegmentWriter(&buf, format.SegmentWriterOptions{BlockSize: 256})
			if err := pending.WriteTo(w); err != nil {
				rt.Fatal(err)
			}
			if _, err := w.Close(); err != nil {
				rt.Fatal(err)
			}
			if pending.Kind() == Full {
				chain = nil
			}
			chain = append(chain, buf.Bytes())
			chainDescs = pending.Descriptors()
			persisted = pendingModel
			pending.Release(true)
			pending = nil
		}

		rt.Repeat(map[string]func(*rapid.T){
			"": check,
			"put": func(rt *rapid.T) {
				k, v := keyGen.Draw(rt, "k"), valGen.Draw(rt, "v")
				noErr(rt, h.v.Put(k, v))
				m.vals[k] = v
			},
			"delete": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				noErr(rt, h.v.Delete(k))
				delete(m.vals, k)
			},
			"putTTL": func(rt *rapid.T) {
				k, v := keyGen.Draw(rt, "k"), valGen.Draw(rt, "v")
				noErr(rt, h.t.Put(k, v))
				m.ttl[k] = timed{v: v, exp: clk.t + int64(propTTL)}
			},
			"deleteTTL": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				noErr(rt, h.t.Delete(k))
				delete(m.ttl, k)
			},
			"mapPut": func(rt *rapid.T) {
				k, mk, v := keyGen.Draw(rt, "k"), subGen.Draw(rt, "mk"), valGen.Draw(rt, "v")
				noErr(rt, h.m.Put(k, mk, v))
				if m.maps[k] == nil {
					m.maps[k] = map[string]uint64{}
				}
				m.maps[k][mk] = v
			},
			"mapDelete": func(rt *rapid.T) {
				k, mk := keyGen.Draw(rt, "k"), subGen.Draw(rt, "mk")
				noErr(rt, h.m.Delete(k, mk))
				delete(m.maps[k], mk)
			},
			"mapClear": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				noErr(rt, h.m.Clear(k))
				delete(m.maps, k)
			},
			"listAdd": func(rt *rapid.T) {
				k, v := keyGen.Draw(rt, "k"), valGen.Draw(rt, "v")
				noErr(rt, h.l.Add(k, v))
				m.lists[k] = append(m.lists[k], v)
			},
			"listClear": func(rt *rapid.T) {
				k := keyGen.Draw(rt, "k")
				noErr(rt, h.l.Clear(k))
				delete(m.lists, k)
			},
			"advance": func(rt *rapid.T) {
				clk.t += int64(rapid.IntRange(1, 15).Draw(rt, "ms")) * int64(time.Millisecond)
			},
			"snapshot": func(rt *rapid.T) {
				if pending != nil {
					return
				}
				kind := Incremental
				if rapid.Bool().Draw(rt, "full") {
					kind = Full
				}
				pending = b.Snapshot(kind)
				pendingModel = m.clone()
			},
			"finish": func(rt *rapid.T) {
				finish(rt, rapid.IntRange(0, 4).Draw(rt, "fail") != 0)
			},
			"maintain": func(rt *rapid.T) {
				b.Maintain(rapid.IntRange(1, 500).Draw(rt, "budget"))
			},
			"restore": func(rt *rapid.T) {
				finish(rt, true)
				if len(chain) == 0 {
					return
				}
				segs := make([]*format.SegmentReader, len(chain))
				for i, c := range chain {
					s, err := format.OpenSegment(bytes.NewReader(c), int64(len(c)), fmt.Sprintf("layer-%d", i))
					if err != nil {
						rt.Fatal(err)
					}
					segs[i] = s
				}
				nb, err := NewBackend(opts)
				if err != nil {
					rt.Fatal(err)
				}
				if err := nb.Restore(chainDescs, segs); err != nil {
					rt.Fatal(err)
				}
				b = nb
				h = newHandles(rt, b, clk)
				m = persisted.clone()
				// The restored state is the new base: later incrementals
				// extend the same chain.
			},
		})
		finish(rt, true)
	})
}
