package pipeline

import (
	"time"

	"github.com/arkstate/arkstate/pkg/monitor"
	"github.com/arkstate/arkstate/pkg/store"
)

// Status reports the runner's state for a monitor: it reads only atomics, so
// a scrape never waits for processing.
func (r *Runner) Status() monitor.Status {
	st := &r.stats
	s := monitor.Status{
		Stream:                 r.spec.ID,
		Running:                st.Running.Load(),
		WaitingForLease:        st.WaitingForLease.Load(),
		StartedAt:              unixTime(st.StartedUnix.Load()),
		RecordsIn:              st.RecordsIn.Load(),
		RecordsOut:             st.RecordsOut.Load(),
		Checkpointing:          r.opts.Repo != nil,
		CheckpointsCompleted:   st.CheckpointsCompleted.Load(),
		CheckpointsFailed:      st.CheckpointsFailed.Load(),
		FailuresSinceSuccess:   st.FailuresSinceSuccess.Load(),
		LastCheckpointID:       st.LastCheckpointID.Load(),
		LastCheckpointAt:       unixTime(st.LastCheckpointUnix.Load()),
		LastCheckpointDuration: time.Duration(st.LastCheckpointNanos.Load()),
		CheckpointBytes:        st.CheckpointBytes.Load(),
		BytesUploaded:          st.BytesUploaded.Load(),
		RestoredFrom:           st.RestoredFrom.Load(),
		CommitFailures:         st.CommitFailures.Load(),
	}
	if e := st.LastCommitError.Load(); e != nil && s.CommitFailures > 0 {
		s.LastCommitError = *e
	}
	if s.Checkpointing {
		s.CheckpointInterval = r.opts.Interval
	}
	if tasks := r.tasks.Load(); tasks != nil {
		for _, t := range *tasks {
			s.FrozenLayers += int(t.frozenLayers.Load())
		}
	}
	if r.opts.Repo != nil {
		if h, ok := store.As[store.Replicator](r.opts.Repo.Store()); ok {
			hs := h.Stats()
			s.Replication = &monitor.Replication{Queued: hs.Queued, QueuedBytes: hs.QueuedBytes, Copied: hs.Copied,
				CopiedBytes: hs.CopiedBytes, Failed: hs.Failed, ReadFromRemote: hs.ReadFromRemote, LastError: hs.LastError}
		}
	}
	if err := r.runErr.Load(); err != nil {
		s.Err = (*err).Error()
	}
	return s
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
