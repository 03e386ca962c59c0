package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// TxlogOptions make a runner keep a transaction log of its stream
// (docs/EXACTLY-ONCE.md, "The transaction log").
type TxlogOptions struct {
	// Dir is the directory the log is written in: segments are
	// Dir/txlog/<stream>/<first LSN>.log. For a directory store it may be
	// the store's root, so the segments are the store's txlog/ objects.
	Dir string
	// Store, when set, is the store the log is copied to: before each
	// checkpoint commits, the active segment is sealed and every sealed
	// segment the store lacks is copied, so the store's copy covers every
	// checkpoint. Nil when Dir is the store's own directory.
	Store store.Store
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

func openJournal(ctx context.Context, stream string, opts TxlogOptions, log *slog.Logger) (*journal, error) {
	if opts.Store == nil {
		l, err := txlog.Open(opts.Dir, stream, opts.Log)
		if err != nil {
			return nil, err
		}
		return &journal{log: l, stream: stream, opts: opts}, nil
	}
	// The store's copy may be ahead of this directory: another machine
	// wrote the stream since (a standby took over), or the directory is
	// new. The log goes on after the store's last record; a local log
	// that did not write the store's newest segment is set aside, since
	// its LSNs would collide with those in the store.
	last, inStore, err := txlog.LastLSN(ctx, opts.Store, stream)
	if err != nil {
		return nil, fmt.Errorf("transaction log %s in %s: %w", stream, opts.Store.Location(), err)
	}
	if inStore {
		opts.Log.StartLSN = last + 1
		agrees, err := localLogAgrees(ctx, opts.Dir, stream, opts.Store)
		if err != nil {
			return nil, err
		}
		if !agrees {
			aside, err := setLocalLogAside(opts.Dir, stream)
			if err != nil {
				return nil, err
			}
			if aside != "" {
				log.Warn("the local transaction log did not write the store's newest segment (another writer went on since); set it aside and continued after the store's copy",
					"stream", stream, "set_aside", aside, "store_last_lsn", last)
			}
		}
	}
	l, err := txlog.Open(opts.Dir, stream, opts.Log)
	if err != nil {
		return nil, err
	}
	return &journal{log: l, stream: stream, opts: opts}, nil
}

// localLogAgrees reports whether the log in dir wrote the newest segment
// of stream's copy in s: it holds a segment of that name and size.
func localLogAgrees(ctx context.Context, dir, stream string, s store.Store) (bool, error) {
	segs, err := txlog.Segments(ctx, s, stream)
	if err != nil || len(segs) == 0 {
		return false, err
	}
	newest := segs[len(segs)-1]
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(newest.Name)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("transaction log %s: %w", stream, err)
	}
	return fi.Size() == newest.Size, nil
}

// setLocalLogAside moves stream's local log, if there is one, to
// dir/txlog-set-aside/<stream>-<unix nanos> and returns where it went.
func setLocalLogAside(dir, stream string) (string, error) {
	from := filepath.Join(dir, "txlog", stream)
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	to := filepath.Join(dir, "txlog-set-aside", fmt.Sprintf("%s-%d", stream, time.Now().UnixNano()))
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return "", fmt.Errorf("transaction log %s: set the local log aside: %w", stream, err)
	}
	if err := os.Rename(from, to); err != nil {
		return "", fmt.Errorf("transaction log %s: set the local log aside: %w", stream, err)
	}
	return to, nil
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
func (j *journal) endEpoch(ctx context.Context, id uint64, sources []format.SourcePosition, prepared []format.PendingTxn) error {
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
	if j.opts.Store == nil {
		return j.log.Sync()
	}
	return j.seal(ctx)
}

// seal seals the active segment and copies every sealed segment the store
// lacks to it.
func (j *journal) seal(ctx context.Context) error {
	if err := j.log.Seal(); err != nil {
		return err
	}
	if _, err := txlog.UploadStream(ctx, j.opts.Dir, j.stream, j.opts.Store); err != nil {
		return fmt.Errorf("transaction log %s: copy to %s: %w", j.stream, j.opts.Store.Location(), err)
	}
	return nil
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

// aborted appends TxnAbort for each transaction the log shows prepared
// after position from (the restored checkpoint's, 0 without one) for an
// epoch later than checkpoint, and neither committed nor aborted since:
// recovery has just aborted them, as no checkpoint lists them.
func (j *journal) aborted(ctx context.Context, checkpoint, from uint64) error {
	st, err := j.local()
	if err != nil {
		return err
	}
	type key struct{ output, txn string }
	open := map[key]*format.Record{}
	var order []key
	err = txlog.Replay(ctx, st, j.stream, from+1, 0, time.Time{}, func(rec *format.Record) error {
		k := key{rec.Output, rec.TxnID}
		switch {
		case rec.Type == format.RecordTxnPrepare && rec.Epoch > checkpoint:
			if _, ok := open[k]; !ok {
				order = append(order, k)
			}
			open[k] = rec.Clone()
		case rec.Type == format.RecordTxnCommit || rec.Type == format.RecordTxnAbort:
			delete(open, k)
		}
		return nil
	})
	if errors.Is(err, txlog.ErrStreamNotFound) || errors.Is(err, txlog.ErrLSNNotFound) {
		// Nothing logged yet, or the log starts after the position (it
		// was truncated or moved aside): nothing is known to abort.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("transaction log %s: find what recovery aborted: %w", j.stream, err)
	}
	var recs []*format.Record
	for _, k := range order {
		if p, ok := open[k]; ok {
			recs = append(recs, &format.Record{Type: format.RecordTxnAbort, Epoch: p.Epoch, Output: p.Output, TxnID: p.TxnID, Data: p.Data})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	_, err = j.log.Submit(recs)
	return err
}

func txnRecord(t format.RecordType, p format.PendingTxn) *format.Record {
	return &format.Record{Type: t, Epoch: p.Epoch, Output: p.Output, TxnID: p.TxnID, Data: bytes.Clone(p.Data)}
}

// truncate deletes the segments behind the oldest retained checkpoint's
// position (before) that are also older than the retention window.
func (j *journal) truncate(ctx context.Context, before uint64) error {
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
	if _, err := j.log.Truncate(before); err != nil {
		return err
	}
	if j.opts.Store != nil {
		if _, err := txlog.TruncateStore(ctx, j.opts.Store, j.stream, before); err != nil {
			return err
		}
	}
	return nil
}

// logInput appends the chunk data that source read at offset and returns
// its LSN once the record is written (and durable, unless the log syncs
// periodically). Input records belong to no epoch (0): they are what was
// read, whichever epoch processes it.
func (j *journal) logInput(source string, offset int64, data []byte) (uint64, error) {
	pos, _ := json.Marshal(stdinPosition{Offset: offset})
	return j.log.Append(&format.Record{Type: format.RecordInput, Source: source, Position: pos, Data: data})
}

// recoverInput returns the input pieces source logged from offset on,
// starting with the input record lsn (0: the log's start), followed by a
// cut at their end that it logs: this run's bytes begin there. Bytes
// missing between two records, or records that overlap, are an error.
func (j *journal) recoverInput(ctx context.Context, source string, offset int64, lsn uint64) ([]inputPiece, error) {
	st, err := j.local()
	if err != nil {
		return nil, err
	}
	var pieces []inputPiece
	next := offset
	err = txlog.Replay(ctx, st, j.stream, lsn, 0, time.Time{}, func(rec *format.Record) error {
		if rec.Type != format.RecordInput || rec.Source != source {
			return nil
		}
		var p stdinPosition
		if err := json.Unmarshal(rec.Position, &p); err != nil || p.Offset < 0 {
			return fmt.Errorf("input record %d of %s: bad position %q", rec.LSN, source, rec.Position)
		}
		end := p.Offset + int64(len(rec.Data))
		switch {
		case len(rec.Data) == 0:
			if p.Offset > offset {
				if p.Offset != next {
					return fmt.Errorf("input record %d of %s: a restart at offset %d, but the log holds the input only up to %d", rec.LSN, source, p.Offset, next)
				}
				pieces = append(pieces, inputPiece{offset: p.Offset, cut: true})
			}
		case end <= offset:
		case p.Offset > next:
			return fmt.Errorf("input record %d of %s: the log misses input bytes %d to %d", rec.LSN, source, next, p.Offset)
		case p.Offset < next && next > offset:
			return fmt.Errorf("input record %d of %s: bytes from %d overlap those logged before, which reach %d", rec.LSN, source, p.Offset, next)
		default:
			skip := next - p.Offset
			pieces = append(pieces, inputPiece{offset: next, lsn: rec.LSN, data: bytes.Clone(rec.Data[skip:])})
			next = end
		}
		return nil
	})
	if errors.Is(err, txlog.ErrStreamNotFound) && lsn == 0 {
		err = nil // nothing logged yet
	}
	if err != nil {
		return nil, fmt.Errorf("transaction log %s: recover the input read past offset %d: %w", j.stream, offset, err)
	}
	pos, _ := json.Marshal(stdinPosition{Offset: next})
	if _, err := j.log.Append(&format.Record{Type: format.RecordInput, Source: source, Position: pos}); err != nil {
		return nil, err
	}
	return append(pieces, inputPiece{offset: next, cut: true}), nil
}

// close closes the log. With a store to copy to, it seals and copies the
// log first, so that a finished job's copy holds its last commits.
// local is the log's own directory as a store, for reading back what this
// writer logged (the store it copies to may lack the active segment).
func (j *journal) local() (store.Store, error) { return store.NewDir(j.opts.Dir) }

func (j *journal) close(ctx context.Context) error {
	var serr error
	if j.opts.Store != nil {
		serr = j.seal(ctx)
	}
	if err := j.log.Close(); err != nil {
		return fmt.Errorf("transaction log %s: %w", j.stream, err)
	}
	return serr
}
