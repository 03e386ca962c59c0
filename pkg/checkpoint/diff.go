package checkpoint

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/arkstate/arkstate/pkg/format"
)

// DiffOptions configure Diff.
type DiffOptions struct {
	// Keys calls emit for every added, removed or changed key. Without it
	// only the counts are kept.
	Keys bool
}

// Change says how a key differs between two checkpoints.
type Change string

// Changes reported by Diff.
const (
	ChangeAdded   Change = "added"   // the key is live in B only
	ChangeRemoved Change = "removed" // the key is live in A only
	ChangeChanged Change = "changed" // live in both, with another value or expiry
)

// KeyChange is one key that differs between checkpoints A and B.
type KeyChange struct {
	Operator string
	State    string
	// Kind is the state's kind (format.StateKindMap, ...) as the manifests
	// declare it, B's where both do; "" for a state neither declares.
	Kind     string
	KeyGroup uint32
	// Key is the stored key (for map state the composite key, see
	// state.SplitMapKey). It is valid only during the emit call.
	Key    []byte
	Change Change
	// OldSize and NewSize are the value's length in bytes in A and in B; 0
	// on the side where the key is absent.
	OldSize, NewSize int
}

// DiffSummary counts the differences between checkpoints A and B.
//
// Bytes count values only: BytesAdded sums the values of added keys and
// the new values of changed keys, BytesRemoved the values of removed keys
// and the old values of changed keys, so BytesAdded-BytesRemoved is the
// growth of the state's values from A to B.
type DiffSummary struct {
	A            uint64         `json:"from_checkpoint_id"`
	B            uint64         `json:"to_checkpoint_id"`
	Added        uint64         `json:"added_count"`
	Removed      uint64         `json:"removed_count"`
	Changed      uint64         `json:"changed_count"`
	BytesAdded   int64          `json:"added_bytes"`
	BytesRemoved int64          `json:"removed_bytes"`
	Operators    []OperatorDiff `json:"operators"`
	// RangesCompared and RangesSkipped count the key-group spans read and
	// the spans whose layer lists were identical in A and B and so were
	// skipped without reading. A span is one range when A and B have the
	// same ranges, and the union of overlapping ranges when their
	// parallelism differs.
	RangesCompared int `json:"compared_range_count"`
	RangesSkipped  int `json:"skipped_range_count"`
	// SegmentsOpened counts the segment objects read.
	SegmentsOpened int `json:"opened_segment_count"`
}

// Differences returns the number of keys that differ.
func (s *DiffSummary) Differences() uint64 { return s.Added + s.Removed + s.Changed }

// OperatorDiff is one operator's part of a DiffSummary.
type OperatorDiff struct {
	Operator string      `json:"operator"`
	InA      bool        `json:"in_from"`
	InB      bool        `json:"in_to"`
	States   []StateDiff `json:"states"`
}

// StateDiff counts one state's differences; see DiffSummary for the bytes.
type StateDiff struct {
	State        string `json:"state"`
	Added        uint64 `json:"added_count"`
	Removed      uint64 `json:"removed_count"`
	Changed      uint64 `json:"changed_count"`
	BytesAdded   int64  `json:"added_bytes"`
	BytesRemoved int64  `json:"removed_bytes"`
}

// Diff compares the live state of checkpoints a and b, operator by
// operator and state by state. It streams: each checkpoint's resolved view
// (see View) is read range by range and the two sorted streams are compared
// as in a merge join, so memory does not grow with the checkpoints' size.
// Key-group spans whose layer lists are identical in a and b hold the same
// state and are skipped without being read.
//
// With opts.Keys, emit is called for each differing key in the order of the
// views; an error from emit stops the diff and is returned as is. emit may
// be nil otherwise.
func Diff(ctx context.Context, repo *Repo, a, b uint64, opts DiffOptions, emit func(KeyChange) error) (*DiffSummary, error) {
	if opts.Keys && emit == nil {
		return nil, fmt.Errorf("checkpoint: diff %d %d: Keys set without an emit function", a, b)
	}
	ma, err := repo.Manifest(ctx, a)
	if err != nil {
		return nil, err
	}
	mb, err := repo.Manifest(ctx, b)
	if err != nil {
		return nil, err
	}
	d := differ{ctx: ctx, repo: repo, ma: ma, mb: mb, opts: opts, emit: emit,
		sum: &DiffSummary{A: a, B: b, Operators: []OperatorDiff{}}}
	for _, op := range operatorUnion(ma, mb) {
		if err := d.operator(op); err != nil {
			return nil, err
		}
	}
	return d.sum, nil
}

type differ struct {
	ctx    context.Context
	repo   *Repo
	ma, mb *format.Manifest
	opts   DiffOptions
	emit   func(KeyChange) error
	sum    *DiffSummary

	op     string
	states map[string]*StateDiff
	kinds  map[string]string // state name -> kind
}

func operatorUnion(ma, mb *format.Manifest) []string {
	var ops []string
	for _, m := range []*format.Manifest{ma, mb} {
		for _, o := range m.Operators {
			ops = append(ops, o.ID)
		}
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

func (d *differ) operator(op string) error {
	oa, ob := findOperator(d.ma, op), findOperator(d.mb, op)
	od := OperatorDiff{Operator: op, InA: oa != nil, InB: ob != nil}
	d.op, d.states, d.kinds = op, map[string]*StateDiff{}, map[string]string{}
	var ra, rb []format.RangeState
	var sa, sb []format.StateDescriptor
	if oa != nil {
		ra, sa = oa.Ranges, oa.States
	}
	if ob != nil {
		rb, sb = ob.Ranges, ob.States
	}
	for _, s := range slices.Concat(sa, sb) {
		d.state(s.Name)
		d.kinds[s.Name] = s.Kind
	}
	for _, sp := range diffSpans(ra, rb) {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if sameLayers(sp.a, sp.b) {
			d.sum.RangesSkipped++
			continue
		}
		d.sum.RangesCompared++
		if err := d.span(sp, sa, sb); err != nil {
			return err
		}
	}
	for _, s := range d.states {
		od.States = append(od.States, *s)
	}
	slices.SortFunc(od.States, func(x, y StateDiff) int { return cmp.Compare(x.State, y.State) })
	if od.States == nil {
		od.States = []StateDiff{}
	}
	d.sum.Operators = append(d.sum.Operators, od)
	return nil
}

func (d *differ) state(name string) *StateDiff {
	s := d.states[name]
	if s == nil {
		s = &StateDiff{State: name}
		d.states[name] = s
	}
	return s
}

// span merge-joins the two checkpoints' streams over one span.
func (d *differ) span(sp diffSpan, sa, sb []format.StateDescriptor) error {
	va := newView(d.ctx, d.repo, d.ma.CheckpointID, d.op, sa, []viewSpan{{lo: sp.lo, hi: sp.hi, ranges: sp.a}})
	defer va.Close()
	vb := newView(d.ctx, d.repo, d.mb.CheckpointID, d.op, sb, []viewSpan{{lo: sp.lo, hi: sp.hi, ranges: sp.b}})
	defer vb.Close()
	okA, okB := va.Next(), vb.Next()
	for okA || okB {
		var c int
		switch {
		case !okB:
			c = -1
		case !okA:
			c = 1
		default:
			c = format.CompareEntries(va.Entry(), vb.Entry())
		}
		var err error
		switch {
		case c < 0:
			e := va.Entry()
			err = d.record(e, ChangeRemoved, len(e.Value), 0)
			okA = va.Next()
		case c > 0:
			e := vb.Entry()
			err = d.record(e, ChangeAdded, 0, len(e.Value))
			okB = vb.Next()
		default:
			ea, eb := va.Entry(), vb.Entry()
			if ea.ExpiresAt != eb.ExpiresAt || !bytes.Equal(ea.Value, eb.Value) {
				err = d.record(eb, ChangeChanged, len(ea.Value), len(eb.Value))
			}
			okA, okB = va.Next(), vb.Next()
		}
		if err != nil {
			return err
		}
	}
	d.sum.SegmentsOpened += va.Stats().SegmentsOpened + vb.Stats().SegmentsOpened
	if err := va.Err(); err != nil {
		return err
	}
	return vb.Err()
}

func (d *differ) record(e *format.Entry, ch Change, oldSize, newSize int) error {
	s := d.state(e.State)
	switch ch {
	case ChangeAdded:
		s.Added++
		d.sum.Added++
	case ChangeRemoved:
		s.Removed++
		d.sum.Removed++
	case ChangeChanged:
		s.Changed++
		d.sum.Changed++
	}
	s.BytesAdded += int64(newSize)
	s.BytesRemoved += int64(oldSize)
	d.sum.BytesAdded += int64(newSize)
	d.sum.BytesRemoved += int64(oldSize)
	if !d.opts.Keys {
		return nil
	}
	return d.emit(KeyChange{Operator: d.op, State: e.State, Kind: d.kinds[e.State], KeyGroup: e.KeyGroup, Key: e.Key,
		Change: ch, OldSize: oldSize, NewSize: newSize})
}

// diffSpan is a key-group interval covered by whole ranges of both sides:
// a connected group of overlapping ranges. When A and B share their range
// boundaries, each span is one range.
type diffSpan struct {
	lo, hi uint32
	a, b   []format.RangeState
}

// diffSpans groups the ranges of A and B (each sorted and disjoint) into
// spans. Ranges without layers hold nothing and are left out.
func diffSpans(ra, rb []format.RangeState) []diffSpan {
	type item struct {
		rs  format.RangeState
		inB bool
	}
	var items []item
	for _, rs := range ra {
		if len(rs.Layers) > 0 {
			items = append(items, item{rs, false})
		}
	}
	for _, rs := range rb {
		if len(rs.Layers) > 0 {
			items = append(items, item{rs, true})
		}
	}
	slices.SortStableFunc(items, func(x, y item) int { return cmp.Compare(x.rs.Start, y.rs.Start) })
	var spans []diffSpan
	for _, it := range items {
		if n := len(spans); n > 0 && it.rs.Start <= spans[n-1].hi {
			spans[n-1].hi = max(spans[n-1].hi, it.rs.End)
		} else {
			spans = append(spans, diffSpan{lo: it.rs.Start, hi: it.rs.End})
		}
		sp := &spans[len(spans)-1]
		if it.inB {
			sp.b = append(sp.b, it.rs)
		} else {
			sp.a = append(sp.a, it.rs)
		}
	}
	return spans
}

// sameLayers reports whether two range lists are the same ranges over the
// same segments: content addressing makes equal hashes equal state.
func sameLayers(a, b []format.RangeState) bool {
	return slices.EqualFunc(a, b, func(x, y format.RangeState) bool {
		return x.Start == y.Start && x.End == y.End &&
			slices.EqualFunc(x.Layers, y.Layers, func(p, q format.SegmentRef) bool { return p.Hash == q.Hash })
	})
}
