package pipeline

import (
	"bytes"
	"fmt"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// TxlogOptions make a runner keep a transaction log of its stream
// (docs/EXACTLY-ONCE.md, "The transaction log").
type TxlogOptions struct {
	// Dir is the directory the log is written in: segments are
	// Dir/txlog/<stream>/<first LSN>.log. For a directory store it is the
	// store's root, so the segments are the store's txlog/ objects.
	Dir string
	// Log configures durability and segment size.
	Log txlog.Options
	// Retention is the point-in-time window: segments written within it
	// are kept even behind the oldest retained checkpoint.
	Retention time.Duration
}

// journal is a runner's transaction log. Tasks add their state changes as
// they make them (task.observe, task.flushLog); the coordinator adds the
// epoch boundaries, source positions and two-phase-commit events, and syncs
// the log before it commits a checkpoint, so that no output becomes
// visible before the records of its epoch are durable.
//
// Records carry their epoch. Tasks pass barrier N at different times, so
// the log interleaves epoch N's last changes with epoch N+1's first; the
// coordinator appends EpochBegin N+1 before it injects barrier N, which no
// change of epoch N+1 can precede, and checkpoint N records the LSN before
// it: every record up to there belongs to an epoch the checkpoint holds,
// and a replay from there applies the records of later epochs only.
type journal struct {
	log    *txlog.Log
	stream string
	opts   TxlogOptions
}

func openJournal(stream string, opts TxlogOptions) (*journal, error) {
	l, err := txlog.Open(opts.Dir, stream, opts.Log)
	if err != nil {
		return nil, err
	}
	return &journal{log: l, stream: stream, opts: opts}, nil
}

// beginEpoch appends EpochBegin for epoch and returns the LSN before it:
// the position a checkpoint of the previous epoch records.
func (j *journal) beginEpoch(epoch uint64) (uint64, error) {
	lsn, err := j.log.Append(&format.Record{Type: format.RecordEpochBegin, Epoch: epoch})
	if err != nil {
		return 0, err
	}
	return lsn - 1, nil
}

// endEpoch appends checkpoint id's source positions, the transactions its
// epoch pre-committed and EpochEnd, and waits until every record appended
// so far is durable.
func (j *journal) endEpoch(id uint64, sources []format.SourcePosition, prepared []format.PendingTxn) error {
	recs := make([]*format.Record, 0, len(sources)+len(prepared)+1)
	for _, s := range sources {
		recs = append(recs, &format.Record{Type: format.RecordPosition, Epoch: id, Source: s.Source, Position: bytes.Clone(s.Position)})
	}
	for _, p := range prepared {
		recs = append(recs, txnRecord(format.RecordTxnPrepare, p))
	}
	recs = append(recs, &format.Record{Type: format.RecordEpochEnd, Epoch: id, Checkpoint: id})
	if _, err := j.log.Submit(recs); err != nil {
		return err
	}
	return j.log.Sync()
}

// committed appends TxnCommit for txns, without waiting: a commit that
// the log lost is found again from the checkpoint that lists the
// transaction.
func (j *journal) committed(txns []format.PendingTxn) error {
	if len(txns) == 0 {
		return nil
	}
	recs := make([]*format.Record, len(txns))
	for i, p := range txns {
		recs[i] = txnRecord(format.RecordTxnCommit, p)
	}
	_, err := j.log.Submit(recs)
	return err
}

func txnRecord(t format.RecordType, p format.PendingTxn) *format.Record {
	return &format.Record{Type: t, Epoch: p.Epoch, Output: p.Output, TxnID: p.TxnID, Data: bytes.Clone(p.Data)}
}

// truncate deletes the segments behind the oldest retained checkpoint's
// position (before) that are also older than the retention window.
func (j *journal) truncate(before uint64) error {
	if j.opts.Retention > 0 {
		// Segments are named by their first LSN; one written within the
		// window is kept with everything after it.
		cutoff := time.Now().Add(-j.opts.Retention)
		segs, err := j.log.Segments()
		if err != nil {
			return err
		}
		for _, s := range segs {
			if !s.ModTime.Before(cutoff) {
				before = min(before, s.FirstLSN)
				break
			}
		}
	}
	_, err := j.log.Truncate(before)
	return err
}

func (j *journal) close() error {
	if err := j.log.Close(); err != nil {
		return fmt.Errorf("transaction log %s: %w", j.stream, err)
	}
	return nil
}
