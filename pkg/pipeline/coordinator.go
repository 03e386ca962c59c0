package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/arkstate/arkstate/internal/crashpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
)

// ack is one task's part of a checkpoint.
type ack struct {
	id      uint64
	task    *task
	snap    *state.Snapshot
	source  *format.SourcePosition
	pending []format.PendingTxn
}

// coordinator triggers checkpoints, collects the tasks' acknowledgements,
// writes each checkpoint and then commits the output. At most one
// checkpoint is in flight, so every incremental snapshot extends the last
// completed checkpoint.
type coordinator struct {
	r        *Runner
	repo     *checkpoint.Repo
	lease    *checkpoint.Lease
	expected int
	trigger  chan uint64
	acks     chan ack
	finalReq chan struct{}

	// finalDone is closed when the checkpoint that ends the input has
	// completed: only then may the source end the stream.
	finalDone chan struct{}

	next   uint64                          // id of the next checkpoint
	parent atomic.Pointer[format.Manifest] // the last completed checkpoint
	final  atomic.Uint64                   // id of the checkpoint that ends the input
	// uncommitted are the pre-committed transactions the coordinator owns:
	// every transaction an acknowledgement hands over joins it before the
	// checkpoint is written, and leaves it only when a completed checkpoint
	// lists it and the output's commit of it succeeded. No failure path
	// drops one: a failed checkpoint or commit leaves them for the next
	// checkpoint to list and commit again (docs/EXACTLY-ONCE.md).
	uncommitted []format.PendingTxn
	// checkpointFailures and commitFailures are the runs of checkpoints and
	// of output commits failed in a row.
	checkpointFailures, commitFailures failureRun
	// logFrom is the transaction-log position of the checkpoint in flight:
	// the LSN before its successor epoch's EpochBegin (see journal).
	logFrom uint64
}

// MinFailures is how many checkpoints in a row, or output commits in a
// row (one per completed checkpoint), must fail, over at least
// Options.RetryFor, before the stream stops with ErrCheckpointStuck or
// ErrCommitStuck. A short outage must not end a job; a lasting one would
// otherwise hold all output back for good without ending the run, and a
// bounded job would retry its final checkpoint forever.
const MinFailures = 10

// DefaultRetryFor is Options.RetryFor when it is zero: the
// larger of 5 minutes and 10 checkpoint intervals.
const DefaultRetryFor = 5 * time.Minute

// ErrCommitStuck ends a stream whose output commit kept failing (see
// MinFailures). The transactions stay listed in the last checkpoint,
// so a restart commits them.
var ErrCommitStuck = errors.New("output commit keeps failing")

// ErrCheckpointStuck ends a stream whose checkpoints kept failing (see
// MinFailures). Nothing since the last completed checkpoint is visible
// or lost: a restart resumes from it, and the pre-committed output that
// no checkpoint listed is aborted.
var ErrCheckpointStuck = errors.New("checkpoints keep failing")

// failureRun is a run of failures in a row: how many, since when.
type failureRun struct {
	n     int
	since time.Time
}

// add counts one more failure and reports how long the run has lasted,
// and whether it is long enough, in number (MinFailures) and in time
// (retryFor), to stop the stream.
func (f *failureRun) add(retryFor time.Duration) (failing time.Duration, stuck bool) {
	f.n++
	if f.n == 1 {
		f.since = time.Now()
	}
	failing = time.Since(f.since)
	return failing, f.n >= MinFailures && failing >= retryFor
}

// retryFor is how long failures may go on before a stream stops.
func (c *coordinator) retryFor() time.Duration {
	if d := c.r.opts.RetryFor; d > 0 {
		return d
	}
	return max(DefaultRetryFor, 10*c.r.opts.Interval)
}

// requestFinal asks for the checkpoint that ends a bounded input.
func (c *coordinator) requestFinal() {
	select {
	case c.finalReq <- struct{}{}:
	default:
	}
}

// isFinal reports whether id is the final checkpoint.
func (c *coordinator) isFinal(id uint64) bool { return c.final.Load() == id }

func (c *coordinator) run(ctx context.Context) error {
	ticker := time.NewTicker(c.r.opts.Interval)
	defer ticker.Stop()
	var inflight uint64
	var started time.Time
	finalWanted := false
	var got []ack
	start := func(final bool) error {
		inflight, started = c.next, time.Now()
		if final {
			c.final.Store(inflight)
		}
		if j := c.r.journal; j != nil {
			// Before the barrier: no change of the next epoch can
			// precede this record.
			from, err := j.beginEpoch(inflight + 1)
			if err != nil {
				return err
			}
			c.logFrom = from
		}
		c.trigger <- inflight
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			for _, a := range got {
				if a.snap != nil {
					a.snap.Release(false)
				}
			}
			return nil
		case <-ticker.C:
			if inflight == 0 {
				if err := start(finalWanted); err != nil {
					return err
				}
			}
		case <-c.finalReq:
			finalWanted = true
			if inflight == 0 {
				if err := start(true); err != nil {
					return err
				}
			}
		case a := <-c.acks:
			got = append(got, a)
			if len(got) < c.expected {
				continue
			}
			err, commitErr := c.complete(ctx, inflight, got)
			took := time.Since(started)
			c.r.stats.LastCheckpointNanos.Store(int64(took))
			if f := c.r.opts.OnCheckpoint; f != nil {
				f(CheckpointResult{ID: inflight, Duration: took, Err: err})
			}
			if errors.Is(err, checkpoint.ErrLeaseLost) {
				// Another writer owns the job now: going on would only
				// fail every checkpoint while duplicating its work.
				return err
			}
			if errors.Is(err, checkpoint.ErrCheckpointExists) {
				// Ids are taken in order by one writer; another writer
				// committed this one, so this writer was superseded (a
				// new lease holder fenced it out).
				holder := "another writer"
				if c.lease != nil {
					holder = c.lease.Holder(ctx)
				}
				return fmt.Errorf("%w: checkpoint %d was committed by %s; this writer stops: %w", checkpoint.ErrLeaseLost, inflight, holder, err)
			}
			if errors.Is(commitErr, ErrCommitStuck) {
				return commitErr
			}
			if errors.Is(err, ErrCheckpointStuck) {
				return err
			}
			final := c.isFinal(inflight)
			got, inflight = nil, 0
			c.next++
			switch {
			case final && err == nil && commitErr == nil:
				close(c.finalDone)
				return nil
			case final:
				// The final checkpoint failed, or its output commit did:
				// its records are not all committed. The stream stays open
				// and the next tick tries again with another final
				// checkpoint, which lists the same transactions.
			case finalWanted:
				if err := start(true); err != nil {
					return err
				}
			}
		}
	}
}

// complete writes checkpoint id from the tasks' acknowledgements and, once
// its manifest is durable, commits what the output pre-committed. A failed
// checkpoint (err) is logged and counted; processing goes on and the next
// checkpoint retries, and checkpoints that keep failing (MinFailures) are
// ErrCheckpointStuck. A failed commit (commitErr) is retried after the
// next checkpoint; one that keeps failing is ErrCommitStuck.
func (c *coordinator) complete(ctx context.Context, id uint64, acks []ack) (err, commitErr error) {
	// The transactions are the coordinator's from here on, whatever fails.
	for _, a := range acks {
		c.uncommitted = append(c.uncommitted, a.pending...)
	}
	var parentID uint64
	if p := c.parent.Load(); p != nil {
		parentID = p.CheckpointID
	}
	m, err := c.write(ctx, id, parentID, acks)
	for _, a := range acks {
		if a.snap != nil {
			a.snap.Release(err == nil)
			select {
			case a.task.wake <- struct{}{}:
			default: // already woken
			}
		}
	}
	if err != nil {
		c.r.stats.CheckpointsFailed.Add(1)
		c.r.stats.FailuresSinceSuccess.Add(1)
		if failing, stuck := c.checkpointFailures.add(c.retryFor()); stuck {
			return fmt.Errorf("%w: %d times in a row over %v, the last checkpoint %d: %w",
				ErrCheckpointStuck, c.checkpointFailures.n, failing.Round(time.Millisecond), id, err), nil
		}
		c.r.log.Error("checkpoint failed; processing continues", "checkpoint", id, "err", err,
			"failures_in_a_row", c.checkpointFailures.n, "uncommitted_transactions", len(c.uncommitted))
		return err, nil
	}
	c.checkpointFailures = failureRun{}
	c.parent.Store(m)
	c.r.stats.CheckpointsCompleted.Add(1)
	c.r.stats.FailuresSinceSuccess.Store(0)
	c.r.stats.LastCheckpointID.Store(id)
	c.r.stats.LastCheckpointUnix.Store(time.Now().UnixNano())
	c.r.stats.CheckpointBytes.Store(m.LogicalBytes())
	crashpoint.Hit(crashpoint.AfterManifest)
	if err := c.r.spec.Output.Commit(ctx, c.uncommitted); err != nil {
		// The checkpoint lists them, so a restart commits them; the next
		// checkpoint lists them again and retries meanwhile.
		failing, stuck := c.commitFailures.add(c.retryFor())
		c.r.stats.CommitFailures.Store(int64(c.commitFailures.n))
		msg := err.Error()
		c.r.stats.LastCommitError.Store(&msg)
		if stuck {
			return nil, fmt.Errorf("%w: %d times in a row over %v, the last after checkpoint %d: %w",
				ErrCommitStuck, c.commitFailures.n, failing.Round(time.Millisecond), id, err)
		}
		c.r.log.Error("output commit failed; the next checkpoint retries it", "checkpoint", id, "err", err,
			"failures_in_a_row", c.commitFailures.n, "uncommitted_transactions", len(c.uncommitted))
		return nil, err
	}
	crashpoint.Hit(crashpoint.AfterCommit)
	if j := c.r.journal; j != nil {
		if err := j.committed(c.uncommitted); err != nil {
			return nil, err
		}
	}
	c.uncommitted = nil
	c.commitFailures = failureRun{}
	c.r.stats.CommitFailures.Store(0)
	c.r.log.Debug("checkpoint complete", "checkpoint", id, "kind", m.Kind)
	if c.r.opts.Retained > 0 {
		c.retain(ctx)
	}
	return nil, nil
}

func (c *coordinator) write(ctx context.Context, id, parent uint64, acks []ack) (*format.Manifest, error) {
	bld, err := c.repo.NewCheckpoint(ctx, id, parent, checkpoint.BuilderOptions{SpoolDir: c.r.opts.SpoolDir, Segment: c.r.opts.Segment})
	if err != nil {
		return nil, err
	}
	if c.lease != nil {
		// Renewed in the background (Runner.renewLease); the commit
		// checks it.
		bld.SetLease(c.lease)
	}
	var sources []format.SourcePosition
	for _, a := range acks {
		if a.source != nil && a.source.Position != nil {
			sources = append(sources, *a.source)
		}
	}
	if len(sources) == 0 {
		// Nothing was read since the start: keep the restored position.
		if p := c.parent.Load(); p != nil {
			sources = p.Sources
		}
	}
	bld.SetSources(sources)
	if p, ok := c.r.spec.Output.(Preparer); ok {
		if err := p.Prepare(ctx, c.uncommitted); err != nil {
			return nil, err
		}
	}
	crashpoint.Hit(crashpoint.AfterPrepare)
	for _, p := range c.uncommitted {
		bld.AddPending(p)
	}
	for _, a := range acks {
		if a.snap == nil {
			continue
		}
		if err := bld.AddSnapshot(ctx, a.task.st.opID, a.task.rng, a.snap); err != nil {
			return nil, err
		}
	}
	crashpoint.Hit(crashpoint.AfterSegments)
	if j := c.r.journal; j != nil {
		// Durable before the manifest, so no output of the epoch becomes
		// visible before its records.
		var prepared []format.PendingTxn
		for _, a := range acks {
			prepared = append(prepared, a.pending...)
		}
		if err := j.endEpoch(ctx, id, sources, prepared); err != nil {
			return nil, err
		}
		bld.SetTxlog(&format.TxlogPosition{Stream: j.stream, LSN: c.logFrom})
		crashpoint.Hit(crashpoint.AfterLog)
	}
	m, err := bld.Commit(ctx)
	if err != nil {
		return nil, err
	}
	c.r.stats.BytesUploaded.Add(bld.Stats().BytesUploaded)
	return m, nil
}

// retain drops checkpoints beyond the retained count, and the log behind
// the oldest one kept. Failing to prune is not fatal: the next checkpoint
// tries again.
func (c *coordinator) retain(ctx context.Context) {
	ids, err := c.repo.IDs(ctx)
	if err != nil || len(ids) <= c.r.opts.Retained {
		return
	}
	rep, err := checkpoint.Prune(ctx, c.repo, checkpoint.PruneOptions{KeepLast: c.r.opts.Retained})
	if err != nil && !errors.Is(err, context.Canceled) {
		c.r.log.Warn("pruning old checkpoints failed", "err", err)
	}
	if j := c.r.journal; j != nil && rep != nil && len(rep.Kept) > 0 {
		c.truncateLog(ctx, j, rep.Kept[0].ID)
	}
}

// truncateLog deletes the log's segments that the oldest retained
// checkpoint no longer needs (and the retention window does not keep).
func (c *coordinator) truncateLog(ctx context.Context, j *journal, oldest uint64) {
	m, err := c.repo.Manifest(ctx, oldest)
	if err != nil || m.Txlog == nil || m.Txlog.Stream != j.stream {
		return
	}
	before := m.Txlog.LSN + 1
	if in, ok := c.r.spec.Input.(unrepeatableInput); ok {
		// The input the checkpoint's successor would read again is in
		// records from its position's on.
		for _, s := range m.Sources {
			if s.Source != SourceID {
				continue
			}
			if _, lsn, err := in.journalFrom(s.Position); err == nil && lsn > 0 {
				before = min(before, lsn)
			}
		}
	}
	if err := j.truncate(ctx, before); err != nil {
		c.r.log.Warn("truncating the transaction log failed", "err", err)
	}
}
