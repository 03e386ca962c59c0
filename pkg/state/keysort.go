package state

import (
	"cmp"
	"slices"
	"strings"
)

// prefixed is a key with the 8 bytes that follow the common prefix of the
// keys being sorted, packed big-endian so that comparing the integers
// orders the keys by those bytes.
type prefixed struct {
	p uint64
	k string
}

// sortKeys sorts keys in place. Snapshots sort every key group's keys, and
// a plain string sort spends its time chasing each key's bytes through the
// heap for every comparison; here most comparisons are between integers held
// in one array, and only keys that agree on those 8 bytes compare as strings.
// Skipping the common prefix matters because keys often share one
// ("user-0000…").
func sortKeys(keys []string, scratch []prefixed) []prefixed {
	if len(keys) < 2 {
		return scratch
	}
	lcp := len(keys[0])
	for _, k := range keys[1:] {
		n := min(lcp, len(k))
		i := 0
		for i < n && k[i] == keys[0][i] {
			i++
		}
		lcp = i
		if lcp == 0 {
			break
		}
	}
	scratch = scratch[:0]
	for _, k := range keys {
		var p uint64
		for i := range 8 {
			p <<= 8
			if j := lcp + i; j < len(k) {
				p |= uint64(k[j])
			}
		}
		scratch = append(scratch, prefixed{p, k})
	}
	slices.SortFunc(scratch, func(a, b prefixed) int {
		if c := cmp.Compare(a.p, b.p); c != 0 {
			return c
		}
		return strings.Compare(a.k, b.k)
	})
	for i := range scratch {
		keys[i] = scratch[i].k
	}
	return scratch
}
