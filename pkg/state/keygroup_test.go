package state

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func TestRangeForSubtask_OK(t *testing.T) {
	for _, n := range []uint32{1, 2, 3, 7, 128, 1000} {
		for p := 1; p <= int(min(n, 40)); p++ {
			next := uint32(0)
			for i := range p {
				r, err := RangeForSubtask(n, p, i)
				if err != nil {
					t.Fatal(err)
				}
				if r.Start != next || r.End < r.Start {
					t.Fatalf("n=%d p=%d i=%d: range %v, want start %d", n, p, i, r, next)
				}
				for kg := r.Start; kg <= r.End; kg++ {
					if got := SubtaskFor(kg, n, p); got != i {
						t.Fatalf("n=%d p=%d: key group %d routed to %d, owned by %d", n, p, kg, got, i)
					}
				}
				next = r.End + 1
			}
			if next != n {
				t.Fatalf("n=%d p=%d: ranges cover [0,%d), want [0,%d)", n, p, next, n)
			}
		}
	}
}

func TestRangeForSubtask_ErrInvalid(t *testing.T) {
	for _, c := range []struct {
		n    uint32
		p, i int
	}{{128, 0, 0}, {128, 2, 2}, {128, 2, -1}, {4, 5, 0}} {
		if _, err := RangeForSubtask(c.n, c.p, c.i); err == nil {
			t.Errorf("RangeForSubtask(%d, %d, %d) succeeded", c.n, c.p, c.i)
		}
	}
}

// The key-group hash is part of the storage format; these values must never
// change, or restored keys land in the wrong groups.
func TestKeyGroupFor_Stable(t *testing.T) {
	for key, want := range map[string]uint32{"": 66, "a": 31, "hello": 125, "user-42": 77} {
		if got := KeyGroupFor(key, 128); got != want {
			t.Errorf("KeyGroupFor(%q, 128) = %d, want %d", key, got, want)
		}
	}
}

func TestDistinctKeys_OK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"", "a", "ab", "abc", "b", "user-0000000", "user-0000001", "\\x00", "\\xff", "zz"}
	var scratch []groupedKey
	for range 500 {
		n := rng.IntN(40)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = alphabet[rng.IntN(len(alphabet))] + strconv.Itoa(rng.IntN(1000)) + alphabet[rng.IntN(len(alphabet))]
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		want = slices.Compact(want)
		set := map[string]bool{}
		for _, k := range keys {
			set[k] = true
		}
		scratch = distinctKeys(&keySorter{}, scratch, []map[string]bool{set, set})
		got := make([]string, len(scratch))
		for i, g := range scratch {
			got[i] = g.key
		}
		if !slices.Equal(got, want) {
			t.Fatalf("distinctKeys = %q, want %q", got, want)
		}
	}
}

// The integer sort in sortGroup orders keys by only some of their bytes;
// keys that share long runs past the common prefix, and the same key in
// several layers, must still come out in key order with the newest layer's
// value kept.
func TestSortGroup_NewestLayerWins(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ks keySorter
	for range 300 {
		layers := 1 + rng.IntN(4)
		tables := make([]map[string][]byte, layers)
		want := map[string]string{}
		for l := range tables {
			tables[l] = map[string][]byte{}
			for range rng.IntN(300) {
				// Shared stems longer than the 8 packed bytes force full comparisons.
				k := "tenant-" + []string{"", "aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaab"}[rng.IntN(3)] + strconv.Itoa(rng.IntN(400))
				v := strconv.Itoa(l) + "/" + k
				tables[l][k] = []byte(v)
				want[k] = v // later layers are newer
			}
		}
		keys, lcp := collectKeys(nil, 0, tables)
		got := ks.sortGroup(keys, layers, lcp)
		wantKeys := slices.Sorted(maps.Keys(want))
		if len(got) != len(wantKeys) {
			t.Fatalf("sortGroup kept %d keys, want %d", len(got), len(wantKeys))
		}
		for i, g := range got {
			if g.key != wantKeys[i] || string(g.val) != want[g.key] {
				t.Fatalf("entry %d = %q=%q, want %q=%q", i, g.key, g.val, wantKeys[i], want[wantKeys[i]])
			}
		}
	}
}
