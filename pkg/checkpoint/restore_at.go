package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// ErrTimeNotRetained means a point-in-time restore asked for a moment the
// store cannot rebuild: before its oldest checkpoint with a transaction-log
// position, or after the log's last record. The error names the range
// that is available.
var ErrTimeNotRetained = errors.New("time not retained")

// PointInTime describes a point-in-time restore.
type PointInTime struct {
	// At is the moment restored.
	At time.Time `json:"state_at"`
	// Base is the newest checkpoint completed at or before At.
	Base uint64 `json:"base_checkpoint_id"`
	// Changes is how many of the log's state changes after Base, up to At,
	// were applied.
	Changes int `json:"change_count"`
	// Checkpoint is the target's checkpoint holding the state at At: Base
	// when no change followed it, else Base+1, written from Base and the
	// changes. It has no source positions and no pending transactions:
	// a pipeline restarted on it starts its input from the beginning.
	Checkpoint uint64 `json:"checkpoint_id"`
	// Earliest and Latest bound the moments the source can restore.
	Earliest time.Time `json:"earliest_at"`
	Latest   time.Time `json:"latest_at"`
}

// RestoreAt restores the state of src at time at into dst: the newest
// checkpoint completed at or before at (restored as Restore does), and, if
// the transaction log holds state changes after it up to at, one more
// checkpoint with them applied. The log changes are those a replay from
// the checkpoint counts (txlog.AfterCheckpoint): of later epochs, in LSN
// order, without what a crashed writer logged for epochs its successor
// redid. A time outside what src retains is ErrTimeNotRetained with the
// available range; a damaged log is a *format.CorruptError naming the
// segment and offset. With opts.DryRun nothing is written.
func RestoreAt(ctx context.Context, src *Repo, at time.Time, dst store.Store, opts RestoreOptions) (*RestorePlan, *PointInTime, error) {
	pit, base, err := pointInTime(ctx, src, at)
	if err != nil {
		return nil, nil, err
	}
	plan, changes, ckpt, err := ReplayInto(ctx, src, base, 0, at, dst, opts)
	if err != nil {
		return plan, pit, err
	}
	pit.Changes, pit.Checkpoint = changes, ckpt
	return plan, pit, nil
}

// ReplayInto restores checkpoint base of src into dst (as Restore does)
// and, if src's transaction log holds state changes after it up to LSN to
// and time until (zero: no bound), writes one more checkpoint, base+1,
// with them applied. It returns how many changes it applied and the
// checkpoint of dst that holds the result: base, or base+1. That
// checkpoint has no source positions and no pending transactions, since
// a bound can fall inside an epoch. With opts.DryRun nothing is written
// and nothing is replayed.
func ReplayInto(ctx context.Context, src *Repo, base *format.Manifest, to uint64, until time.Time, dst store.Store, opts RestoreOptions) (plan *RestorePlan, changes int, ckpt uint64, err error) {
	plan, err = Restore(ctx, src, base.CheckpointID, dst, opts)
	if err != nil || opts.DryRun {
		return plan, 0, base.CheckpointID, err
	}
	backends, changes, err := src.ReplayLog(ctx, base, to, until, nil)
	if err != nil {
		return plan, 0, 0, fmt.Errorf("checkpoint: replay the log onto checkpoint %d: %w", base.CheckpointID, err)
	}
	if changes == 0 {
		return plan, 0, base.CheckpointID, nil
	}
	target, err := OpenRepo(ctx, dst)
	if err != nil {
		return plan, changes, 0, err
	}
	bld, err := target.NewCheckpoint(ctx, base.CheckpointID+1, base.CheckpointID, BuilderOptions{SpoolDir: opts.SpoolDir})
	if err != nil {
		return plan, changes, 0, err
	}
	all := state.KeyGroupRange{Start: 0, End: base.KeyGroups - 1}
	var snaps []*state.Snapshot
	defer func() {
		for _, s := range snaps {
			s.Release(false)
		}
	}()
	for _, o := range base.Operators {
		snap := backends[o.ID].Snapshot(state.Full)
		snaps = append(snaps, snap)
		if err := bld.AddSnapshot(ctx, o.ID, all, snap); err != nil {
			return plan, changes, 0, err
		}
	}
	if _, err := bld.Commit(ctx); err != nil {
		return plan, changes, 0, err
	}
	return plan, changes, base.CheckpointID + 1, nil
}

// ReplayLog restores every operator of checkpoint base into a backend that
// owns every key group and applies to it the state changes base's
// transaction log adds (txlog.AfterCheckpoint) up to LSN to and time until
// (zero: no bound) that keep accepts (nil: all). It returns the backends by operator
// id and how many changes it applied. A change of an operator base does not
// have is an error.
func (r *Repo) ReplayLog(ctx context.Context, base *format.Manifest, to uint64, until time.Time, keep func(*format.Record) bool) (map[string]*state.Backend, int, error) {
	if base.Txlog == nil {
		return nil, 0, fmt.Errorf("checkpoint %d records no transaction-log position", base.CheckpointID)
	}
	backends := map[string]*state.Backend{}
	for _, o := range base.Operators {
		be, err := state.NewBackend(state.Options{KeyGroups: base.KeyGroups})
		if err != nil {
			return nil, 0, err
		}
		if err := r.RestoreBackend(ctx, base, o.ID, be); err != nil {
			return nil, 0, err
		}
		backends[o.ID] = be
	}
	changes := 0
	err := txlog.AfterCheckpoint(ctx, r.store, base.Txlog.Stream, base.CheckpointID, base.Txlog.LSN, to, until, func(rec *format.Record) error {
		if rec.Type != format.RecordMutation || (keep != nil && !keep(rec)) {
			return nil
		}
		be, ok := backends[rec.Operator]
		if !ok {
			return fmt.Errorf("the log changes operator %q, which checkpoint %d does not have (record %d)", rec.Operator, base.CheckpointID, rec.LSN)
		}
		changes++
		return be.Apply(&format.Entry{State: rec.State, KeyGroup: rec.KeyGroup, Key: rec.Key, Value: rec.Value, ExpiresAt: rec.ExpiresAt, Tombstone: rec.Delete})
	})
	if err != nil {
		return nil, 0, err
	}
	return backends, changes, nil
}

// RestorableRange returns the moments RestoreAt can restore in src: from
// the creation of its oldest checkpoint whose transaction-log position the
// log still covers to the log's last record. It is ErrTimeNotRetained when no checkpoint
// records a log position.
func RestorableRange(ctx context.Context, src *Repo) (earliest, latest time.Time, err error) {
	ms, err := txlogManifests(ctx, src)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return logRange(ctx, src, &ms)
}

// txlogManifests returns the manifests that record a log position, oldest
// first.
func txlogManifests(ctx context.Context, src *Repo) ([]*format.Manifest, error) {
	ids, err := src.IDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []*format.Manifest
	for _, id := range ids {
		m, err := src.Manifest(ctx, id)
		if err != nil {
			return nil, err
		}
		if m.Txlog != nil {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("checkpoint: %w: no checkpoint of %s records a transaction-log position (is state.txlog enabled?)",
			ErrTimeNotRetained, src.store.Location())
	}
	return out, nil
}

// logRange returns the moments ms and their log can restore, and drops
// from ms the checkpoints whose position the log no longer covers (the
// records after it were truncated or lost): they cannot be a base.
func logRange(ctx context.Context, src *Repo, ms *[]*format.Manifest) (earliest, latest time.Time, err error) {
	rep, err := txlog.Verify(ctx, src.store, (*ms)[0].Txlog.Stream)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	for _, s := range rep.Segments {
		if s.LastTime.After(latest) {
			latest = s.LastTime
		}
	}
	covered := (*ms)[:0]
	for _, m := range *ms {
		if len(rep.Segments) > 0 && rep.FirstLSN <= m.Txlog.LSN+1 && rep.LastLSN >= m.Txlog.LSN {
			covered = append(covered, m)
		}
	}
	*ms = covered
	if len(covered) == 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("checkpoint: %w: the transaction log of %s covers no checkpoint's position (txlog verify names what is missing)",
			ErrTimeNotRetained, src.store.Location())
	}
	return covered[0].CreatedAt.UTC(), latest.UTC(), nil
}

// pointInTime finds the base checkpoint for at and the range src can
// restore.
func pointInTime(ctx context.Context, src *Repo, at time.Time) (*PointInTime, *format.Manifest, error) {
	ms, err := txlogManifests(ctx, src)
	if err != nil {
		return nil, nil, err
	}
	earliest, latest, err := logRange(ctx, src, &ms)
	if err != nil {
		return nil, nil, err
	}
	var base *format.Manifest
	for _, m := range ms {
		if !m.CreatedAt.After(at) {
			base = m
		}
	}
	pit := &PointInTime{At: at.UTC(), Earliest: earliest, Latest: latest}
	if base == nil || at.After(latest) {
		return nil, nil, fmt.Errorf("checkpoint: restore at %s: %w: %s can restore from %s (checkpoint %d) to %s (the log's last record)",
			at.Format(time.RFC3339Nano), ErrTimeNotRetained, src.store.Location(),
			earliest.Format(time.RFC3339Nano), ms[0].CheckpointID, latest.Format(time.RFC3339Nano))
	}
	pit.Base, pit.Checkpoint = base.CheckpointID, base.CheckpointID
	return pit, base, nil
}
