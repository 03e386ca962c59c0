package state

import (
	"cmp"
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

// groupKeys collects the distinct keys of maps with their key groups (out of
// n), sorted by key group and then key: the order a segment stores them in.
// For []byte maps each key carries its value from the newest map (maps are
// oldest first) that has it, so a snapshot needs no lookups to resolve
// layers.
func groupKeys[V any](dst []groupedKey, n uint32, maps []map[string]V) []groupedKey {
	return sortedKeys(dst, n, maps)
}

// distinctKeys collects the distinct keys of maps, sorted by key (their key
// groups are left zero).
func distinctKeys[V any](dst []groupedKey, maps []map[string]V) []groupedKey {
	return sortedKeys(dst, 0, maps)
}

// sortedKeys sorts the distinct keys of maps by key group (when n > 0) and
// key. Snapshots sort every key, and a plain string sort spends its time
// chasing each key's bytes through the heap for every comparison; here most
// comparisons are between integers held in one array, and only keys that
// agree on 8 bytes past their common prefix compare as strings. Skipping
// the common prefix matters because keys often share one ("user-0000…").
func sortedKeys[V any](dst []groupedKey, n uint32, maps []map[string]V) []groupedKey {
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
		return dst
	}
	lcp := len(dst[0].key)
	for _, k := range dst[1:] {
		m := min(lcp, len(k.key))
		i := 0
		for i < m && k.key[i] == dst[0].key[i] {
			i++
		}
		if lcp = i; lcp == 0 {
			break
		}
	}
	for i := range dst {
		k := dst[i].key
		var p uint64
		for j := range 8 {
			p <<= 8
			if lcp+j < len(k) {
				p |= uint64(k[lcp+j])
			}
		}
		dst[i].p = p
		if n > 0 {
			dst[i].kg = KeyGroupFor(k, n)
		}
	}
	if n > 0 {
		dst = bucketByGroup(dst, n)
	} else {
		slices.SortFunc(dst, compareGrouped)
	}
	if len(maps) > 1 {
		dst = slices.CompactFunc(dst, func(a, b groupedKey) bool { return a.key == b.key })
	}
	return dst
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

// bucketByGroup orders keys by key group with a counting sort, then sorts
// each group on its own: many small sorts over neighbouring memory instead
// of one big one. It returns the sorted keys in a second array taken from
// bucketScratch, and gives keys' array back to it.
func bucketByGroup(keys []groupedKey, n uint32) []groupedKey {
	counts := make([]int, n+1)
	for i := range keys {
		counts[keys[i].kg+1]++
	}
	for g := uint32(1); g <= n; g++ {
		counts[g] += counts[g-1]
	}
	out := bucketScratch.Get().(*[]groupedKey)
	buf := slices.Grow((*out)[:0], len(keys))[:len(keys)]
	next := slices.Clone(counts[:n])
	for i := range keys {
		kg := keys[i].kg
		buf[next[kg]] = keys[i]
		next[kg]++
	}
	for g := range n {
		slices.SortFunc(buf[counts[g]:counts[g+1]], compareGrouped)
	}
	clear(keys) // drop references to keys and values
	*out = keys[:0]
	bucketScratch.Put(out)
	return buf
}

// bucketScratch recycles the key arrays of snapshot writing (the keys and
// bucketByGroup's second array) between snapshots.
var bucketScratch = sync.Pool{New: func() any { return new([]groupedKey) }}
