// Package state is arkstate's keyed state engine.
//
// A Backend holds one operator's keyed state for a range of key groups: every
// key hashes to one of a fixed number of key groups (128 by default), so a
// checkpoint taken at one parallelism can be restored at another by handing
// out different ranges. On top of the Backend sit typed handles over codecs:
// Value[T], Map[K, V], List[T], Reducing[T] and Aggregating[IN, ACC, OUT].
// Each state may have a TTL; expired entries are never returned.
//
// The backend is layered like an LSM memtable. Writes go to a mutable active
// layer. Snapshot freezes that layer and starts a new one in constant time,
// so processing continues while another goroutine writes the frozen data to a
// format segment: all live entries for a full snapshot, only the changed ones
// (puts and tombstones) for an incremental one. Frozen layers are folded into
// the base a table at a time once no snapshot needs them, and expired entries
// are swept the same way, so reads consult only a few layers.
//
// A Backend is owned by one goroutine (the operator's), like Flink's keyed
// state backend: its methods are not safe for concurrent use. A Snapshot may
// be written and released from any goroutine.
package state
