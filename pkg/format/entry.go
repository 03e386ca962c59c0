package format

import (
	"bytes"
	"cmp"
)

// Entry is one state entry as stored in a segment: the (state, key group, key)
// triple addresses it; Value and ExpiresAt are its payload. A tombstone records
// a deletion in an incremental (delta) segment and carries no value.
type Entry struct {
	State     string // state name within the operator, e.g. "count"
	KeyGroup  uint32 // key group the key hashes to
	Key       []byte // the user key (for map state, the composite key)
	Value     []byte // encoded value; nil for a tombstone
	ExpiresAt int64  // expiry as Unix nanoseconds; 0 means never
	Tombstone bool   // true when this entry deletes the key
}

// CompareEntries orders entries by state name, then key group, then key:
// the order a segment stores them in.
func CompareEntries(a, b *Entry) int {
	if c := cmp.Compare(a.State, b.State); c != 0 {
		return c
	}
	if c := cmp.Compare(a.KeyGroup, b.KeyGroup); c != 0 {
		return c
	}
	return bytes.Compare(a.Key, b.Key)
}
