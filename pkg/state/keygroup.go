package state

import (
	"fmt"

	"github.com/zeebo/xxh3"
)

// DefaultKeyGroups is the key-group count of a job that does not set one.
// It bounds the job's parallelism and is fixed for the job's lifetime.
const DefaultKeyGroups = 128

// MaxKeyGroups bounds the key-group count so per-layer tables stay small.
const MaxKeyGroups = 1 << 15

// KeyGroupFor returns the key group of key among n groups: xxh3-64 of the
// key's bytes modulo n. The hash is part of the storage format: changing it
// would scatter restored keys into the wrong groups.
func KeyGroupFor(key string, n uint32) uint32 {
	return uint32(xxh3.HashString(key) % uint64(n))
}

// KeyGroupRange is an inclusive range of key groups [Start, End].
type KeyGroupRange struct {
	Start, End uint32
}

// Contains reports whether kg lies in the range.
func (r KeyGroupRange) Contains(kg uint32) bool { return kg >= r.Start && kg <= r.End }

// Len is the number of key groups in the range.
func (r KeyGroupRange) Len() int { return int(r.End-r.Start) + 1 }

func (r KeyGroupRange) String() string { return fmt.Sprintf("[%d,%d]", r.Start, r.End) }

// RangeForSubtask returns the key groups that subtask i of parallelism p owns
// among n groups: contiguous ranges whose sizes differ by at most one, the
// same split Flink uses, so any parallelism up to n covers every group once.
func RangeForSubtask(n uint32, p, i int) (KeyGroupRange, error) {
	if p <= 0 || uint32(p) > n || i < 0 || i >= p {
		return KeyGroupRange{}, fmt.Errorf("state: subtask %d of parallelism %d is invalid for %d key groups", i, p, n)
	}
	start := (uint64(i)*uint64(n) + uint64(p) - 1) / uint64(p)
	end := (uint64(i+1)*uint64(n) - 1) / uint64(p)
	return KeyGroupRange{Start: uint32(start), End: uint32(end)}, nil
}

// SubtaskFor returns which of p subtasks owns key group kg among n groups;
// it is the inverse of RangeForSubtask and is how records are routed.
func SubtaskFor(kg, n uint32, p int) int {
	return int(uint64(kg) * uint64(p) / uint64(n))
}
