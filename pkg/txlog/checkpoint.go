package txlog

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// AfterCheckpoint replays what a stream's log adds to checkpoint id, whose
// manifest records position from (format.TxlogPosition.LSN): the records
// after from whose epoch is later than id, in LSN order, up to LSN to and
// time until (zero for no bound), minus those a restart voided.
//
// Every record of an epoch a restart began again (see restartTracker) and
// logged before the restart is void. The log is read twice: first for the
// restarts, then for the records.
//
// Errors are Replay's.
func AfterCheckpoint(ctx context.Context, s store.Store, stream string, id, from, to uint64, until time.Time, fn func(*format.Record) error) error {
	type restart struct {
		epoch, lsn uint64
	}
	var restarts []restart
	var tracker restartTracker
	err := Replay(ctx, s, stream, from+1, to, until, func(rec *format.Record) error {
		if tracker.restarted(rec) {
			restarts = append(restarts, restart{rec.Epoch, rec.LSN})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return Replay(ctx, s, stream, from+1, to, until, func(rec *format.Record) error {
		if rec.Epoch <= id {
			return nil
		}
		for _, r := range restarts {
			if rec.LSN < r.lsn && rec.Epoch >= r.epoch {
				return nil
			}
		}
		return fn(rec)
	})
}

// restartTracker recognises a restarted writer as a log's records go by. A
// writer restarted from checkpoint N begins epoch N+1 again: its
// EpochBegin N+1 follows records of epochs N+1 and later that the previous
// process logged before it died, and those never became part of any
// checkpoint, since the restarted writer reprocesses the same input. An
// EpochBegin for an epoch no later than the latest one begun is such a
// restart.
type restartTracker struct{ begun uint64 }

// restarted reports whether rec begins an epoch again (rec.Epoch).
func (r *restartTracker) restarted(rec *format.Record) bool {
	if rec.Type != format.RecordEpochBegin {
		return false
	}
	again := rec.Epoch <= r.begun
	r.begun = max(r.begun, rec.Epoch)
	return again
}

// PendingTxn is a two-phase-commit transaction the log shows prepared and
// not yet committed or aborted.
type PendingTxn struct {
	Output     string
	TxnID      string
	Epoch      uint64
	LSN        uint64    // of its txn-prepare record
	PreparedAt time.Time // the record's time
}

// Pending returns the transactions of stream that a txn-prepare record
// names and no later txn-commit or txn-abort does, in LSN order. A
// prepare that a restart voided (see AfterCheckpoint) is not pending: the
// restarted writer's recovery aborted it, as no checkpoint listed it.
// Errors are Replay's.
func Pending(ctx context.Context, s store.Store, stream string) ([]PendingTxn, error) {
	type key struct{ output, txn string }
	open := map[key]PendingTxn{}
	var tracker restartTracker
	err := Replay(ctx, s, stream, 0, 0, time.Time{}, func(rec *format.Record) error {
		if tracker.restarted(rec) {
			// What was prepared for the epoch begun again or later was
			// never listed by a checkpoint: recovery aborted it.
			for k, p := range open {
				if p.Epoch >= rec.Epoch {
					delete(open, k)
				}
			}
		}
		switch rec.Type {
		case format.RecordTxnPrepare:
			open[key{rec.Output, rec.TxnID}] = PendingTxn{Output: rec.Output, TxnID: rec.TxnID, Epoch: rec.Epoch, LSN: rec.LSN, PreparedAt: time.Unix(0, rec.Time).UTC()}
		case format.RecordTxnCommit, format.RecordTxnAbort:
			delete(open, key{rec.Output, rec.TxnID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]PendingTxn, 0, len(open))
	for _, p := range open {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b PendingTxn) int { return cmp.Compare(a.LSN, b.LSN) })
	return out, nil
}
