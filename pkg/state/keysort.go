package state

import (
	"cmp"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// groupedKey is a key with its key group and the 8 bytes that follow the
// common prefix of the keys being sorted, packed big-endian so that
// comparing the integers orders the keys by those bytes.
type groupedKey struct {
	key   string
	val   []byte // the value in the newest layer that has the key
	p     uint64
	kg    uint32
	layer int32 // index of that layer among the maps given
}

// groupKeys collects the keys of maps with their key groups (out of n),
// ordered by key group: keys[bounds[g]:bounds[g+1]] are key group g's, not
// yet sorted — sortGroup sorts each just before it is written, so the
// sorting of later groups overlaps the compression of earlier blocks. lcp is
// the length of the prefix all the keys share, for sortGroup. For []byte
// maps each key carries its value, so a snapshot needs no lookups to resolve
// layers.
func groupKeys[V any](dst []groupedKey, n uint32, maps []map[string]V) (keys []groupedKey, bounds []int, lcp int) {
	keys, lcp = collectKeys(dst, n, maps)
	keys, bounds = bucketByGroup(keys, n)
	return keys, bounds, lcp
}

// keySorter sorts key groups, reusing its scratch arrays between groups.
type keySorter struct {
	order []uint64
	tmp   []groupedKey
	// touched sums a byte from each end of every value sortGroup sees,
	// only so that the compiler keeps those loads.
	touched byte
}

// sortGroup sorts one key group's keys, which share their first lcp bytes,
// and, when they come from several layers, keeps only the newest layer's
// entry of each key.
//
// A snapshot sorts every key it writes, and sorting the 64-byte records
// through a comparison function took a third of a full snapshot's time.
// Instead each key becomes one integer, the top bits of p (its 8 bytes after
// the shared prefix, big-endian) above its index in the group, and a plain
// integer sort orders them; only keys that agree on those top bits are
// compared in full, and the records then move once, into their places.
//
// The loop that packs p also loads a byte from each end of every value. The
// values are scattered through the heap, and loads in a short loop overlap
// their cache misses; copying the values one by one into the segment a
// moment later would wait for each miss in turn (this cut the CPU of writing
// the entries by a third in a 1 MB snapshot).
func (s *keySorter) sortGroup(keys []groupedKey, layers int, lcp int) []groupedKey {
	n := len(keys)
	shift := bits.Len(uint(max(n, 1) - 1))
	mask := uint64(1)<<shift - 1
	order := slices.Grow(s.order[:0], n)[:n]
	for i := range keys {
		k := keys[i].key
		var p uint64
		for j := range 8 {
			p <<= 8
			if lcp+j < len(k) {
				p |= uint64(k[lcp+j])
			}
		}
		keys[i].p = p
		order[i] = p&^mask | uint64(i)
		if v := keys[i].val; len(v) > 0 {
			s.touched += v[0] + v[len(v)-1]
		}
	}
	if n > 1 {
		slices.Sort(order)
		for i := 0; i < n; {
			j := i + 1
			for j < n && order[j]&^mask == order[i]&^mask {
				j++
			}
			if j-i > 1 {
				slices.SortFunc(order[i:j], func(a, b uint64) int { return compareGrouped(keys[a&mask], keys[b&mask]) })
			}
			i = j
		}
		tmp := append(s.tmp[:0], keys...)
		for i, o := range order {
			keys[i] = tmp[o&mask]
		}
		clear(tmp) // drop references to keys and values
		s.order, s.tmp = order, tmp[:0]
	}
	if layers > 1 {
		keys = slices.CompactFunc(keys, func(a, b groupedKey) bool { return a.key == b.key })
	}
	return keys
}

// distinctKeys collects the distinct keys of maps, sorted by key (their key
// groups are left zero).
func distinctKeys[V any](s *keySorter, dst []groupedKey, maps []map[string]V) []groupedKey {
	keys, lcp := collectKeys(dst, 0, maps)
	return s.sortGroup(keys, len(maps), lcp)
}

// collectKeys gathers the keys of maps with their layer, value and, when
// n > 0, key group out of n, and returns the length of the prefix they all
// share, which sortGroup skips: keys often share one ("user-0000…"), and the
// bytes after it are the ones that tell keys apart.
//
// Walking the maps reads only their slots; the keys' own bytes, scattered
// through the heap, are read once, for the hash and the prefix together, and
// a large snapshot splits that pass over the cores: it comes before the
// first block can be compressed, so nothing else would use them meanwhile.
func collectKeys[V any](dst []groupedKey, n uint32, maps []map[string]V) (keys []groupedKey, lcp int) {
	total := 0
	for _, t := range maps {
		total += len(t)
	}
	dst = slices.Grow(dst[:0], total)
	for l, t := range maps {
		for k, v := range t {
			g := groupedKey{key: k, layer: int32(l)}
			if b, ok := any(v).([]byte); ok {
				g.val = b
			}
			dst = append(dst, g)
		}
	}
	if len(dst) == 0 {
		return dst, 0
	}
	parts := min(runtime.GOMAXPROCS(0), 4, len(dst)/parallelHashMin)
	if parts <= 1 {
		return dst, hashKeys(dst, n, dst[0].key)
	}
	lcps := make([]int, parts)
	var wg sync.WaitGroup
	for p := range parts {
		chunk := dst[p*len(dst)/parts : (p+1)*len(dst)/parts]
		wg.Go(func() { lcps[p] = hashKeys(chunk, n, dst[0].key) })
	}
	wg.Wait()
	return dst, slices.Min(lcps)
}

// parallelHashMin is the number of keys below which collectKeys hashes on
// one goroutine: starting another costs more than it saves.
const parallelHashMin = 4096

// hashKeys sets keys' key groups out of n (unless n is 0) and returns how
// many leading bytes all of them share with first.
func hashKeys(keys []groupedKey, n uint32, first string) int {
	lcp := len(first)
	for i := range keys {
		k := keys[i].key
		if n > 0 {
			keys[i].kg = KeyGroupFor(k, n)
		}
		m := min(lcp, len(k))
		j := 0
		for j < m && k[j] == first[j] {
			j++
		}
		lcp = j
	}
	return lcp
}

// compareGrouped orders keys within a key group: by the packed bytes, then
// the whole key, then newest layer first.
func compareGrouped(a, b groupedKey) int {
	if c := cmp.Compare(a.p, b.p); c != 0 {
		return c
	}
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(b.layer, a.layer)
}

// bucketByGroup orders keys by key group with a counting sort and returns
// them in a second array taken from bucketScratch, giving keys' array back
// to it, with each group's bounds.
func bucketByGroup(keys []groupedKey, n uint32) ([]groupedKey, []int) {
	bounds := make([]int, n+1)
	for i := range keys {
		bounds[keys[i].kg+1]++
	}
	for g := uint32(1); g <= n; g++ {
		bounds[g] += bounds[g-1]
	}
	out := bucketScratch.Get().(*[]groupedKey)
	buf := slices.Grow((*out)[:0], len(keys))[:len(keys)]
	next := slices.Clone(bounds[:n])
	for i := range keys {
		kg := keys[i].kg
		buf[next[kg]] = keys[i]
		next[kg]++
	}
	clear(keys) // drop references to keys and values
	*out = keys[:0]
	bucketScratch.Put(out)
	return buf, bounds
}

// bucketScratch recycles the key arrays of snapshot writing (the keys and
// bucketByGroup's second array) between snapshots.
var bucketScratch = sync.Pool{New: func() any { return new([]groupedKey) }}
