package checkpoint

import (
	"cmp"
	"slices"

	"github.com/arkstate/arkstate/pkg/format"
)

// Manifests list operators, states and ranges in a canonical order, so the
// same checkpoint always encodes to the same bytes.

func sortOperators(ops []format.OperatorState) {
	slices.SortFunc(ops, func(a, b format.OperatorState) int { return cmp.Compare(a.ID, b.ID) })
}

func sortStates(ds []format.StateDescriptor) {
	slices.SortFunc(ds, func(a, b format.StateDescriptor) int { return cmp.Compare(a.Name, b.Name) })
}

func sortRanges(rs []format.RangeState) {
	slices.SortFunc(rs, func(a, b format.RangeState) int { return cmp.Compare(a.Start, b.Start) })
}
