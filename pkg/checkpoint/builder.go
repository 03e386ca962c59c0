package checkpoint

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// DefaultMaxChain is how many layers a key-group range may reference before
// the next snapshot of it should be a full one: restore reads every layer,
// so a bounded chain keeps restore time independent of history.
const DefaultMaxChain = 8

// SpooledSegment is a segment written to a local temporary file, known by
// the SHA-256 its writer computed, waiting to be stored under that name.
type SpooledSegment struct {
	path string
	Info format.SegmentInfo
}

// Hash returns the segment's content address.
func (s *SpooledSegment) Hash() string { return hex.EncodeToString(s.Info.SHA256[:]) }

// Remove deletes the temporary file.
func (s *SpooledSegment) Remove() error { return os.Remove(s.path) }

// SpoolSegment writes a segment to a temporary file in dir ("" for the
// system's temporary directory) with write, which adds the entries.
func SpoolSegment(dir string, opts format.SegmentWriterOptions, write func(*format.SegmentWriter) error) (*SpooledSegment, error) {
	f, err := os.CreateTemp(dir, "arkstate-segment-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("checkpoint: spool segment: %w", err)
	}
	sp := &SpooledSegment{path: f.Name()}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := format.NewSegmentWriter(bw, opts)
	err = write(w)
	if err == nil {
		sp.Info, err = w.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(sp.path)
		return nil, fmt.Errorf("checkpoint: spool segment: %w", err)
	}
	return sp, nil
}

// PutSegment stores a spooled segment under its content address unless an
// object of that name and size already exists (segments are immutable and
// shared between checkpoints). It reports whether it uploaded.
func (r *Repo) PutSegment(ctx context.Context, sp *SpooledSegment) (uploaded bool, err error) {
	name := format.SegmentPath(sp.Hash())
	if info, err := r.store.Stat(ctx, name); err == nil && info.Size == sp.Info.Size {
		return false, nil
	} else if err != nil && !errors.Is(err, store.ErrNotExist) {
		return false, err
	}
	f, err := os.Open(sp.path)
	if err != nil {
		return false, fmt.Errorf("checkpoint: put segment: %w", err)
	}
	defer f.Close()
	if err := r.store.Put(ctx, name, f, sp.Info.Size); err != nil {
		return false, err
	}
	return true, nil
}

// Builder assembles one checkpoint: it stores each operator's snapshot as a
// segment and commits the manifest last.
type Builder struct {
	repo     *Repo
	m        format.Manifest
	parent   *format.Manifest
	spoolDir string
	segOpts  format.SegmentWriterOptions
	stats    BuildStats
	lease    *Lease
}

// BuildStats counts what a checkpoint wrote.
type BuildStats struct {
	Segments         int   // segments the checkpoint's snapshots produced
	SegmentsUploaded int   // of which were new to the store
	BytesUploaded    int64 // bytes of the uploaded segments
}

// BuilderOptions configure NewCheckpoint.
type BuilderOptions struct {
	// SpoolDir holds segments between writing and upload ("" = os.TempDir).
	SpoolDir string
	// Segment configures the segment writer.
	Segment format.SegmentWriterOptions
}

// NewCheckpoint starts checkpoint id. parent is the checkpoint incremental
// snapshots build on (0 for none); its manifest is read now.
func (r *Repo) NewCheckpoint(ctx context.Context, id, parent uint64, opts BuilderOptions) (*Builder, error) {
	b := &Builder{repo: r, spoolDir: opts.SpoolDir, segOpts: opts.Segment}
	b.m = format.Manifest{JobID: r.marker.JobID, CheckpointID: id, Kind: format.KindFull, CreatedAt: time.Now().UTC(), KeyGroups: r.marker.KeyGroups}
	if parent != 0 {
		pm, err := r.Manifest(ctx, parent)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: parent: %w", id, err)
		}
		b.parent = pm
	}
	return b, nil
}

// parentLayers returns the parent's layers for exactly this operator range.
func (b *Builder) parentLayers(op string, start, end uint32) []format.SegmentRef {
	return layersOf(b.parent, op, start, end)
}

func layersOf(m *format.Manifest, op string, start, end uint32) []format.SegmentRef {
	if m == nil {
		return nil
	}
	for _, o := range m.Operators {
		if o.ID != op {
			continue
		}
		for _, rs := range o.Ranges {
			if rs.Start == start && rs.End == end {
				return rs.Layers
			}
		}
	}
	return nil
}

// SnapshotKind says which kind of snapshot the operator range should take
// next: Incremental while the parent has a chain for it shorter than
// maxChain, Full otherwise (which is how long chains get compacted).
func (b *Builder) SnapshotKind(op string, rng state.KeyGroupRange, maxChain int) state.SnapshotKind {
	return NextSnapshotKind(b.parent, op, rng, maxChain)
}

// NextSnapshotKind is Builder.SnapshotKind for a checkpoint whose parent
// will be m (nil: none).
func NextSnapshotKind(m *format.Manifest, op string, rng state.KeyGroupRange, maxChain int) state.SnapshotKind {
	n := len(layersOf(m, op, rng.Start, rng.End))
	if n == 0 || n >= maxChain {
		return state.Full
	}
	return state.Incremental
}

// AddSnapshot writes snap, the state of operator op for key-group range rng,
// stores its segment and records the range's layers: the new base, or the
// parent's layers plus the new delta. It does not release snap.
func (b *Builder) AddSnapshot(ctx context.Context, op string, rng state.KeyGroupRange, snap *state.Snapshot) error {
	var layers []format.SegmentRef
	kind := format.LayerBase
	if snap.Kind() == state.Incremental {
		layers = b.parentLayers(op, rng.Start, rng.End)
		if len(layers) == 0 {
			return fmt.Errorf("checkpoint %d: incremental snapshot of %s %v has no parent layers to extend", b.m.CheckpointID, op, rng)
		}
		kind = format.LayerDelta
	}
	sp, err := SpoolSegment(b.spoolDir, b.segOpts, snap.WriteTo)
	if err != nil {
		return fmt.Errorf("checkpoint %d: %s %v: %w", b.m.CheckpointID, op, rng, err)
	}
	defer sp.Remove()
	uploaded, err := b.repo.PutSegment(ctx, sp)
	if err != nil {
		return fmt.Errorf("checkpoint %d: %s %v: %w", b.m.CheckpointID, op, rng, err)
	}
	b.stats.Segments++
	if uploaded {
		b.stats.SegmentsUploaded++
		b.stats.BytesUploaded += sp.Info.Size
	}
	ref := format.SegmentRef{Hash: sp.Hash(), Size: sp.Info.Size, Kind: kind, Entries: sp.Info.Entries, Checkpoint: b.m.CheckpointID}
	layers = append(append([]format.SegmentRef(nil), layers...), ref)
	return b.addRange(op, snap.Descriptors(), format.RangeState{Start: rng.Start, End: rng.End, Layers: layers})
}

// AddRange records a range whose layers the caller already stored (state
// import, restore to another store).
func (b *Builder) AddRange(op string, descs []format.StateDescriptor, rs format.RangeState) error {
	return b.addRange(op, descs, rs)
}

func (b *Builder) addRange(op string, descs []format.StateDescriptor, rs format.RangeState) error {
	var o *format.OperatorState
	for i := range b.m.Operators {
		if b.m.Operators[i].ID == op {
			o = &b.m.Operators[i]
		}
	}
	if o == nil {
		b.m.Operators = append(b.m.Operators, format.OperatorState{ID: op})
		o = &b.m.Operators[len(b.m.Operators)-1]
	}
	for _, d := range descs {
		if !hasState(o.States, d.Name) {
			o.States = append(o.States, d)
		}
	}
	for _, r := range o.Ranges {
		if r.Start <= rs.End && rs.Start <= r.End {
			return fmt.Errorf("checkpoint %d: operator %s: range [%d,%d] overlaps [%d,%d]", b.m.CheckpointID, op, rs.Start, rs.End, r.Start, r.End)
		}
	}
	o.Ranges = append(o.Ranges, rs)
	return nil
}

func hasState(ds []format.StateDescriptor, name string) bool {
	for _, d := range ds {
		if d.Name == name {
			return true
		}
	}
	return false
}

// SetSources records the source positions the checkpoint resumes from.
func (b *Builder) SetSources(ps []format.SourcePosition) { b.m.Sources = ps }

// SetTxlog records the transaction-log position the checkpoint covers.
func (b *Builder) SetTxlog(p *format.TxlogPosition) { b.m.Txlog = p }

// AddPending records a pre-committed two-phase-commit transaction.
func (b *Builder) AddPending(p format.PendingTxn) { b.m.Pending = append(b.m.Pending, p) }

// SetLease makes Commit confirm that the writer still holds l, so a writer
// whose lease was taken over cannot commit.
func (b *Builder) SetLease(l *Lease) { b.lease = l }

// Stats returns what the checkpoint has written so far.
func (b *Builder) Stats() BuildStats { return b.stats }

// Commit writes the manifest (see Repo.Commit) and returns it. The
// checkpoint is incremental when any range extends its parent's layers.
func (b *Builder) Commit(ctx context.Context) (*format.Manifest, error) {
	m := b.m
	for _, o := range m.Operators {
		sortRanges(o.Ranges)
		sortStates(o.States)
		for _, rs := range o.Ranges {
			if len(rs.Layers) > 1 {
				if b.parent == nil {
					return nil, fmt.Errorf("checkpoint %d: operator %s range [%d,%d] has %d layers but the checkpoint has no parent", m.CheckpointID, o.ID, rs.Start, rs.End, len(rs.Layers))
				}
				m.Kind = format.KindIncremental
				m.Parent = b.parent.CheckpointID
			}
		}
	}
	sortOperators(m.Operators)
	if b.lease != nil {
		if err := b.lease.Check(ctx); err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", m.CheckpointID, err)
		}
	}
	if err := b.repo.Commit(ctx, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
