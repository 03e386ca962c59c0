package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// RestoreBackend loads operator op's state from checkpoint m into be, using
// the layers of every range that overlaps be's key groups (so a checkpoint
// restores at any parallelism). The caller must have opened be with the
// manifest's key-group count.
func (r *Repo) RestoreBackend(ctx context.Context, m *format.Manifest, op string, be *state.Backend) error {
	if be.KeyGroups() != m.KeyGroups {
		return fmt.Errorf("%w: checkpoint %d has %d key groups, the backend %d", ErrJobMismatch, m.CheckpointID, m.KeyGroups, be.KeyGroups())
	}
	// A hybrid store's local copy of a segment may be damaged while its
	// remote copy is whole. Segments are immutable and named by their
	// SHA-256, so the remote object of the same name is the same segment:
	// the restore starts over reading it from there (a failed Restore leaves
	// the backend empty), once per damaged segment, and the store logs and
	// counts it. Damage on both sides is reported as usual.
	hybrid, _ := store.As[store.RemoteFallback](r.store)
	fromRemote := map[string]bool{}
	for {
		err := r.restoreBackend(ctx, m, op, be, hybrid, fromRemote)
		var ce *format.CorruptError
		if err == nil || hybrid == nil || !errors.As(err, &ce) || !strings.HasPrefix(ce.File, format.SegmentsPrefix) || fromRemote[ce.File] {
			return err
		}
		hybrid.NoteLocalDamage(ce.File, err)
		fromRemote[ce.File] = true
	}
}

func (r *Repo) restoreBackend(ctx context.Context, m *format.Manifest, op string, be *state.Backend, hybrid store.RemoteFallback, fromRemote map[string]bool) error {
	var descs []format.StateDescriptor
	var segs []*format.SegmentReader
	var objs []io.Closer
	defer func() {
		for _, o := range objs {
			o.Close()
		}
	}()
	want := be.Range()
	for _, o := range m.Operators {
		if o.ID != op {
			continue
		}
		descs = o.States
		for _, rs := range o.Ranges {
			if rs.End < want.Start || rs.Start > want.End {
				continue
			}
			for _, l := range rs.Layers {
				store := r.store
				if fromRemote[format.SegmentPath(l.Hash)] {
					store = hybrid.Remote()
				}
				seg, obj, err := openSegment(ctx, store, l)
				if err != nil {
					return fmt.Errorf("checkpoint %d: restore %s: %w", m.CheckpointID, op, err)
				}
				objs = append(objs, obj)
				segs = append(segs, seg)
			}
		}
	}
	if err := be.Restore(descs, segs); err != nil {
		return fmt.Errorf("checkpoint %d: restore %s: %w", m.CheckpointID, op, err)
	}
	return nil
}
