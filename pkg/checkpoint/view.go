package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// ErrOperatorNotFound means a checkpoint holds no state for the operator.
var ErrOperatorNotFound = errors.New("operator not found in checkpoint")

// View is the resolved state of one operator in a checkpoint: for each
// key-group range, the base segment and the deltas on top of it merged into
// one sorted stream in which the newest layer wins and tombstones hide the
// key. It yields only live entries.
//
// The stream is streamed range by range in ascending key-group order, and
// within a range in segment order: state name, key group, key. Only the
// layers of the range being read are open at a time, each holding one
// decompressed block, so memory and open objects are bounded by the longest
// layer chain, not by the size of the checkpoint.
//
// Entries are returned as stored: expiry times are reported, not applied,
// because an offline tool has no business deciding what "now" is.
type View struct {
	ctx    context.Context
	repo   *Repo
	cp     uint64
	op     string
	states []format.StateDescriptor
	spans  []viewSpan
	next   int // next span to open

	cur   *mergeIter
	objs  []store.Object
	span  viewSpan // the span cur reads
	err   error
	done  bool
	stats ViewStats
}

// ViewStats counts what a View read.
type ViewStats struct {
	SegmentsOpened int // segment objects opened (one per layer per range read)
}

// viewSpan is a key-group interval read as one merged stream: the layer
// lists of every range that falls in it. Ranges of one checkpoint are
// disjoint, so entries of different ranges never compare equal and one heap
// can merge them all.
type viewSpan struct {
	lo, hi uint32
	ranges []format.RangeState
}

// OpenView opens operator op's resolved state in checkpoint m. It opens no
// segment until Next is called. The caller must Close the view.
func OpenView(ctx context.Context, repo *Repo, m *format.Manifest, op string) (*View, error) {
	return OpenViewRange(ctx, repo, m, op, state.KeyGroupRange{Start: 0, End: m.KeyGroups - 1})
}

// OpenViewRange is OpenView restricted to the key groups in rng, for
// example the one key group of a single key. Blocks outside rng are not read.
func OpenViewRange(ctx context.Context, repo *Repo, m *format.Manifest, op string, rng state.KeyGroupRange) (*View, error) {
	if rng.Start > rng.End || rng.End >= m.KeyGroups {
		return nil, fmt.Errorf("checkpoint %d: key groups %v outside [0,%d)", m.CheckpointID, rng, m.KeyGroups)
	}
	o := findOperator(m, op)
	if o == nil {
		return nil, fmt.Errorf("%w: %q in checkpoint %d", ErrOperatorNotFound, op, m.CheckpointID)
	}
	var spans []viewSpan
	for _, rs := range o.Ranges {
		if rs.End < rng.Start || rs.Start > rng.End || len(rs.Layers) == 0 {
			continue
		}
		spans = append(spans, viewSpan{lo: max(rs.Start, rng.Start), hi: min(rs.End, rng.End), ranges: []format.RangeState{rs}})
	}
	return newView(ctx, repo, m.CheckpointID, op, o.States, spans), nil
}

func newView(ctx context.Context, repo *Repo, cp uint64, op string, states []format.StateDescriptor, spans []viewSpan) *View {
	return &View{ctx: ctx, repo: repo, cp: cp, op: op, states: states, spans: spans}
}

func findOperator(m *format.Manifest, op string) *format.OperatorState {
	for i := range m.Operators {
		if m.Operators[i].ID == op {
			return &m.Operators[i]
		}
	}
	return nil
}

// States returns the operator's state descriptors from the manifest.
func (v *View) States() []format.StateDescriptor { return slices.Clone(v.states) }

// Stats returns what the view has read so far.
func (v *View) Stats() ViewStats { return v.stats }

// Next advances to the next live entry and reports whether there is one. It
// returns false at the end or on an error; check Err afterwards.
func (v *View) Next() bool {
	if v.done || v.err != nil {
		return false
	}
	for {
		if v.cur != nil {
			if v.cur.next() {
				return true
			}
			if err := v.cur.err; err != nil {
				v.fail(fmt.Errorf("checkpoint %d: operator %s: key groups [%d,%d]: %w", v.cp, v.op, v.span.lo, v.span.hi, err))
				return false
			}
			v.closeSpan()
		}
		if v.next >= len(v.spans) {
			v.done = true
			return false
		}
		if err := v.openSpan(v.spans[v.next]); err != nil {
			v.fail(err)
			return false
		}
		v.next++
	}
}

// Entry returns the current entry; Tombstone is always false. It and its
// slices stay valid only until the next call to Next.
func (v *View) Entry() *format.Entry { return v.cur.entry() }

// Err returns the first error met. Damage is a *format.CorruptError naming
// the segment, wrapped with the checkpoint and operator.
func (v *View) Err() error { return v.err }

// Close releases the open segments. It is idempotent.
func (v *View) Close() error {
	v.done = true
	return v.closeSpan()
}

func (v *View) fail(err error) {
	v.err = err
	v.closeSpan()
}

func (v *View) closeSpan() error {
	var first error
	for _, o := range v.objs {
		if err := o.Close(); err != nil && first == nil {
			first = err
		}
	}
	v.objs, v.cur = nil, nil
	return first
}

// openSpan opens every layer of the span's ranges and primes the merge.
func (v *View) openSpan(sp viewSpan) error {
	var cursors []*layerCursor
	for _, rs := range sp.ranges {
		for i, l := range rs.Layers {
			seg, obj, err := v.repo.OpenSegment(v.ctx, l)
			if err != nil {
				v.closeSpan()
				return fmt.Errorf("checkpoint %d: operator %s: range [%d,%d] layer %d: %w", v.cp, v.op, rs.Start, rs.End, i, err)
			}
			v.stats.SegmentsOpened++
			v.objs = append(v.objs, obj)
			cursors = append(cursors, &layerCursor{it: seg.Iter(sp.lo, sp.hi), rank: i})
		}
	}
	m, err := newMergeIter(cursors)
	if err != nil {
		v.closeSpan()
		return fmt.Errorf("checkpoint %d: operator %s: key groups [%d,%d]: %w", v.cp, v.op, sp.lo, sp.hi, err)
	}
	v.cur, v.span = m, sp
	return nil
}

// layerCursor is one segment's iterator in a merge; rank is the layer's
// position in its range, higher meaning newer.
type layerCursor struct {
	it   *format.SegmentIter
	rank int
}

func (c *layerCursor) entry() *format.Entry { return c.it.Entry() }

// mergeIter is a k-way merge of sorted layer iterators. For a key present in
// several layers the newest wins; a winning tombstone drops the key.
//
// The winning cursor is held out of the heap and advanced only on the next
// call, so the returned entry is the iterator's own, never copied.
type mergeIter struct {
	heap   []*layerCursor
	winner *layerCursor
	err    error
}

func newMergeIter(cursors []*layerCursor) (*mergeIter, error) {
	m := &mergeIter{heap: make([]*layerCursor, 0, len(cursors))}
	for _, c := range cursors {
		if !c.it.Next() {
			if err := c.it.Err(); err != nil {
				return nil, err
			}
			continue
		}
		m.push(c)
	}
	return m, nil
}

// less orders cursors by their entry, and equal entries newest layer first.
func less(a, b *layerCursor) bool {
	if c := format.CompareEntries(a.entry(), b.entry()); c != 0 {
		return c < 0
	}
	return a.rank > b.rank
}

func (m *mergeIter) entry() *format.Entry { return m.winner.entry() }

func (m *mergeIter) next() bool {
	if m.err != nil {
		return false
	}
	if w := m.winner; w != nil {
		m.winner = nil
		if !m.advance(w) {
			return false
		}
	}
	for len(m.heap) > 0 {
		w := m.pop()
		// Older layers' versions of the same key are hidden by w.
		for len(m.heap) > 0 && format.CompareEntries(m.heap[0].entry(), w.entry()) == 0 {
			top := m.heap[0]
			if top.it.Next() {
				m.down(0)
				continue
			}
			if err := top.it.Err(); err != nil {
				m.err = err
				return false
			}
			m.pop()
		}
		if w.entry().Tombstone {
			if !m.advance(w) {
				return false
			}
			continue
		}
		m.winner = w
		return true
	}
	return false
}

// advance moves c to its next entry and puts it back in the heap; it
// returns false only on an error.
func (m *mergeIter) advance(c *layerCursor) bool {
	if c.it.Next() {
		m.push(c)
		return true
	}
	if err := c.it.Err(); err != nil {
		m.err = err
		return false
	}
	return true
}

func (m *mergeIter) push(c *layerCursor) {
	m.heap = append(m.heap, c)
	i := len(m.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(m.heap[i], m.heap[p]) {
			break
		}
		m.heap[i], m.heap[p] = m.heap[p], m.heap[i]
		i = p
	}
}

func (m *mergeIter) pop() *layerCursor {
	top := m.heap[0]
	last := len(m.heap) - 1
	m.heap[0] = m.heap[last]
	m.heap[last] = nil
	m.heap = m.heap[:last]
	if last > 0 {
		m.down(0)
	}
	return top
}

func (m *mergeIter) down(i int) {
	n := len(m.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		small := l
		if r := l + 1; r < n && less(m.heap[r], m.heap[l]) {
			small = r
		}
		if !less(m.heap[small], m.heap[i]) {
			return
		}
		m.heap[i], m.heap[small] = m.heap[small], m.heap[i]
		i = small
	}
}
