package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// newTxlogCmd groups the commands that read transaction logs. They accept
// any store, with or without an ARKSTATE marker, because a writer's local
// directory holds a log before (or without) any checkpoint.
func newTxlogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "txlog",
		Short: "List, verify and replay transaction logs",
		Long: `Transaction-log commands read the segments under txlog/<stream>/ in a store:
a directory path, file:///path, or s3://bucket/prefix (with --s3-endpoint and
--s3-path-style for S3-compatible servers). They only read: a torn tail is
reported, never cut (the writer cuts it when it next opens the log).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTxlogLsCmd(), newTxlogVerifyCmd(), newTxlogReplayCmd())
	groupUsage(cmd)
	return cmd
}

// txlogStoreOptions are the flags ls and verify share.
type txlogStoreOptions struct {
	store   storeFlags
	out     outputFlag
	stream  string
	pending bool // ls only
}

func (o *txlogStoreOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().StringVar(&o.stream, "stream", "", "only this stream (default: every stream in the store)")
}

// openStreams checks the output flag, opens the store at address and
// returns it with the streams to read: --stream, or every stream in it.
// The caller closes the store.
func (o *txlogStoreOptions) openStreams(ctx context.Context, cmd *cobra.Command, address string) (store.Store, []string, error) {
	if err := o.out.validate(); err != nil {
		return nil, nil, err
	}
	s, err := o.store.openStore(ctx, cmd, address)
	if err != nil {
		return nil, nil, err
	}
	streams := []string{o.stream}
	if o.stream == "" {
		if streams, err = txlog.Streams(ctx, s); err != nil {
			s.Close()
			return nil, nil, err
		}
	}
	return s, streams, nil
}

// txlogUsage turns the errors that mean "you asked for something that is
// not there" into usage errors (exit 2).
func txlogUsage(err error) error {
	if errors.Is(err, txlog.ErrStreamNotFound) || errors.Is(err, txlog.ErrLSNNotFound) || errors.Is(err, txlog.ErrInvalidStream) {
		return &usageError{err}
	}
	return err
}

// txlogVerifyAll verifies the one stream asked for, or every stream. No
// stream at all is a usage error: a wrong address must not pass as clean.
func txlogVerifyAll(ctx context.Context, s store.Store, stream string) ([]*txlog.Report, error) {
	streams := []string{stream}
	if stream == "" {
		var err error
		if streams, err = txlog.Streams(ctx, s); err != nil {
			return nil, err
		}
		if len(streams) == 0 {
			return nil, usageErrorf("no transaction log in %s (nothing under txlog/)", s.Location())
		}
	}
	reps := make([]*txlog.Report, 0, len(streams))
	for _, st := range streams {
		rep, err := txlog.Verify(ctx, s, st)
		if err != nil {
			return nil, txlogUsage(err)
		}
		reps = append(reps, rep)
	}
	return reps, nil
}

// checkTxlogCoverage adds to each stream's report the checkpoints of the
// store whose log position the stream does not cover. A store without
// checkpoints (a log copied on its own) has none to check; a manifest that
// cannot be read is checkpoint verify's to report.
func checkTxlogCoverage(ctx context.Context, s store.Store, reps []*txlog.Report) error {
	repo, err := checkpoint.OpenRepo(ctx, s)
	if errors.Is(err, checkpoint.ErrNotRepo) {
		return nil
	}
	if err != nil {
		return err
	}
	ids, err := repo.IDs(ctx)
	if err != nil {
		return err
	}
	positions := map[string][]txlog.CheckpointPosition{}
	for _, id := range ids {
		m, err := repo.Manifest(ctx, id)
		if err != nil || m.Txlog == nil {
			continue
		}
		positions[m.Txlog.Stream] = append(positions[m.Txlog.Stream], txlog.CheckpointPosition{Checkpoint: id, LSN: m.Txlog.LSN})
	}
	for _, rep := range reps {
		txlog.CheckCoverage(rep, positions[rep.Stream])
	}
	return nil
}

// txlogTime renders a time for output: RFC 3339 in UTC with nanoseconds,
// empty for the zero time.
func txlogTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// txlogSegmentView is one segment in `txlog ls` JSON and YAML.
type txlogSegmentView struct {
	Name      string `json:"name"`
	FirstLSN  uint64 `json:"first_lsn"`
	LastLSN   uint64 `json:"last_lsn"` // first_lsn - 1 when records is 0
	Records   int64  `json:"record_count"`
	Size      int64  `json:"size_bytes"`
	Created   string `json:"created_at,omitempty"`
	FirstTime string `json:"first_record_at,omitempty"`
	LastTime  string `json:"last_record_at,omitempty"`
	Status    string `json:"status"`
}

// txlogStreamView is one stream in `txlog ls` JSON and YAML.
type txlogStreamView struct {
	Stream   string             `json:"stream"`
	FirstLSN uint64             `json:"first_lsn"`
	LastLSN  uint64             `json:"last_lsn"`
	Records  int64              `json:"record_count"`
	Size     int64              `json:"size_bytes"`
	Segments []txlogSegmentView `json:"segments"`
}

type txlogLsView struct {
	Store    string            `json:"store"`
	Endpoint string            `json:"endpoint,omitempty"` // the store's S3 endpoint
	Streams  []txlogStreamView `json:"streams"`
}

func newTxlogLsCmd() *cobra.Command {
	var opts txlogStoreOptions
	cmd := &cobra.Command{
		Use:   "ls STORE",
		Short: "List transaction-log segments: LSN range, records, size, time range",
		Long: `List each stream's segments with their first and last LSN, record count,
size and time range, and a status (ok, torn-tail or damaged). It reads every
record to count them; use verify to fail on damage.

--pending lists instead the two-phase-commit transactions the log shows
pre-committed and not yet committed or aborted, with their age: output that
is written but not yet visible. A transaction pending for long means
checkpoints or output commits are failing.

Exit status: 0 when listed, torn tails and damage included (use verify to
fail on damage); 2 for bad arguments or an unknown --stream; 3 when the store
cannot be read.`,
		Example: `  arkstate txlog ls /var/lib/arkstate
  arkstate txlog ls s3://bucket/job --pending --output json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.pending {
				return runTxlogPending(cmd.Context(), cmd, &opts, args[0], cmd.OutOrStdout())
			}
			return runTxlogLs(cmd.Context(), cmd, &opts, args[0], cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().BoolVar(&opts.pending, "pending", false, "list pre-committed transactions not yet committed, with their age")
	return cmd
}

// txlogPendingView is one pending transaction in `txlog ls --pending`.
type txlogPendingView struct {
	Stream     string `json:"stream"`
	Output     string `json:"output"`
	TxnID      string `json:"txn_id"`
	Epoch      uint64 `json:"epoch"`
	LSN        uint64 `json:"lsn"`
	PreparedAt string `json:"prepared_at"`
	AgeMS      int64  `json:"age_ms"`
}

type txlogPendingListView struct {
	Store    string             `json:"store"`
	Endpoint string             `json:"endpoint,omitempty"` // the store's S3 endpoint
	Pending  []txlogPendingView `json:"pending"`
}

func runTxlogPending(ctx context.Context, cmd *cobra.Command, opts *txlogStoreOptions, address string, w io.Writer) error {
	s, streams, err := opts.openStreams(ctx, cmd, address)
	if err != nil {
		return err
	}
	defer s.Close()
	now := time.Now()
	view := txlogPendingListView{Pending: []txlogPendingView{}}
	view.Store, view.Endpoint = store.Address(s)
	for _, st := range streams {
		pending, err := txlog.Pending(ctx, s, st)
		if err != nil {
			return txlogUsage(err)
		}
		for _, p := range pending {
			view.Pending = append(view.Pending, txlogPendingView{Stream: st, Output: p.Output, TxnID: p.TxnID, Epoch: p.Epoch, LSN: p.LSN,
				PreparedAt: txlogTime(p.PreparedAt), AgeMS: now.Sub(p.PreparedAt).Milliseconds()})
		}
	}
	return opts.out.render(w, view, func(t *tableWriter) {
		t.setHeader("STREAM", "OUTPUT", "TXN", "EPOCH", "LSN", "PREPARED", "AGE")
		for _, p := range view.Pending {
			t.row(p.Stream, p.Output, p.TxnID, p.Epoch, p.LSN, p.PreparedAt, (time.Duration(p.AgeMS) * time.Millisecond).String())
		}
	})
}

func runTxlogLs(ctx context.Context, cmd *cobra.Command, opts *txlogStoreOptions, address string, w io.Writer) error {
	s, streams, err := opts.openStreams(ctx, cmd, address)
	if err != nil {
		return err
	}
	defer s.Close()
	view := txlogLsView{Streams: []txlogStreamView{}}
	view.Store, view.Endpoint = store.Address(s)
	for _, st := range streams {
		rep, err := txlog.Verify(ctx, s, st)
		if err != nil {
			return txlogUsage(err)
		}
		sv := txlogStreamView{Stream: st, FirstLSN: rep.FirstLSN, LastLSN: rep.LastLSN, Records: rep.Records, Segments: []txlogSegmentView{}}
		for _, seg := range rep.Segments {
			sv.Size += seg.Size
			sv.Segments = append(sv.Segments, txlogSegmentView{
				Name: seg.Name, FirstLSN: seg.FirstLSN, LastLSN: seg.LastLSN, Records: seg.Records, Size: seg.Size,
				Created: txlogTime(seg.Created), FirstTime: txlogTime(seg.FirstTime), LastTime: txlogTime(seg.LastTime),
				Status: string(seg.Status),
			})
		}
		view.Streams = append(view.Streams, sv)
	}
	return opts.out.render(w, view, func(t *tableWriter) {
		t.setHeader("STREAM", "SEGMENT", "FIRST LSN", "LAST LSN", "RECORDS", "SIZE", "FIRST TIME", "LAST TIME", "STATUS")
		for _, sv := range view.Streams {
			for _, seg := range sv.Segments {
				last := "-"
				if seg.Records > 0 {
					last = strconv.FormatUint(seg.LastLSN, 10)
				}
				t.row(sv.Stream, path.Base(seg.Name), seg.FirstLSN, last, seg.Records, seg.Size, seg.FirstTime, seg.LastTime, seg.Status)
			}
		}
	})
}

// txlogProblemView is one finding in `txlog verify` JSON and YAML.
type txlogProblemView struct {
	Kind   string `json:"kind"` // damage, torn-tail or stray
	File   string `json:"file"`
	Offset *int64 `json:"offset,omitempty"` // absent when it concerns the whole object
	What   string `json:"problem"`
	Advice string `json:"advice"`
}

type txlogVerifyStreamView struct {
	Stream   string             `json:"stream"`
	Segments int                `json:"segment_count"`
	Records  int64              `json:"record_count"`
	FirstLSN uint64             `json:"first_lsn"`
	LastLSN  uint64             `json:"last_lsn"`
	Damaged  bool               `json:"damaged"`
	Problems []txlogProblemView `json:"problems"`
}

type txlogVerifyView struct {
	Store    string                  `json:"store"`
	Endpoint string                  `json:"endpoint,omitempty"` // the store's S3 endpoint
	OK       bool                    `json:"ok"`                 // no stream is damaged
	Streams  []txlogVerifyStreamView `json:"streams"`
}

func newTxlogVerifyCmd() *cobra.Command {
	var opts txlogStoreOptions
	cmd := &cobra.Command{
		Use:   "verify STORE",
		Short: "Check every segment and record of transaction logs; exit 1 on damage",
		Long: `Read every segment: headers, record checksums and encodings, LSN
continuity within and across segments. In a checkpoint store it also checks
that the log covers every checkpoint's log position (uncovered-checkpoint):
state after a checkpoint can be rebuilt only from the records after it. It
reports each problem with its file, offset and advice, and exits 1 if any is
damage or an uncovered checkpoint. A torn tail at the end of a stream's last
segment (an interrupted, unacknowledged write) and stray objects are reported
but do not fail the check.

Exit status: 0 when no stream is damaged (torn tails and strays may be
reported); 1 on damage or an uncovered checkpoint; 2 for bad arguments or a
store without a transaction log; 3 when the store cannot be read.`,
		Example: `  arkstate txlog verify /var/lib/arkstate
  arkstate txlog verify s3://bucket/job --output json > txlog-verify.json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTxlogVerify(cmd.Context(), cmd, &opts, args[0], cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func runTxlogVerify(ctx context.Context, cmd *cobra.Command, opts *txlogStoreOptions, address string, w io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	s, err := opts.store.openStore(ctx, cmd, address)
	if err != nil {
		return err
	}
	defer s.Close()
	reps, err := txlogVerifyAll(ctx, s, opts.stream)
	if err != nil {
		return err
	}
	if err := checkTxlogCoverage(ctx, s, reps); err != nil {
		return err
	}
	view := txlogVerifyView{OK: true, Streams: []txlogVerifyStreamView{}}
	view.Store, view.Endpoint = store.Address(s)
	damaged := 0
	for _, rep := range reps {
		sv := txlogVerifyStreamView{Stream: rep.Stream, Segments: len(rep.Segments), Records: rep.Records,
			FirstLSN: rep.FirstLSN, LastLSN: rep.LastLSN, Damaged: rep.Damaged(), Problems: []txlogProblemView{}}
		for _, p := range rep.Problems {
			pv := txlogProblemView{Kind: string(p.Kind), File: p.File, What: p.What, Advice: p.Advice}
			if p.Offset >= 0 {
				pv.Offset = &p.Offset
			}
			sv.Problems = append(sv.Problems, pv)
		}
		if sv.Damaged {
			view.OK = false
			damaged++
		}
		view.Streams = append(view.Streams, sv)
	}
	if opts.out.format == "table" {
		if err := renderTxlogVerifyTable(w, view); err != nil {
			return err
		}
	} else if err := opts.out.render(w, view, nil); err != nil {
		return err
	}
	if damaged > 0 {
		return &findingsError{fmt.Sprintf("%d of %d transaction-log streams damaged", damaged, len(reps))}
	}
	return nil
}

// renderTxlogVerifyTable prints a summary table, then each problem with its
// advice, which is too long for a table cell.
func renderTxlogVerifyTable(w io.Writer, view txlogVerifyView) error {
	var t tableWriter
	t.setHeader("STREAM", "SEGMENTS", "RECORDS", "FIRST LSN", "LAST LSN", "STATUS")
	for _, sv := range view.Streams {
		status := "ok"
		switch {
		case sv.Damaged:
			status = "DAMAGED"
		case len(sv.Problems) > 0:
			status = "ok (notices)"
		}
		t.row(sv.Stream, sv.Segments, sv.Records, sv.FirstLSN, sv.LastLSN, status)
	}
	if err := t.flush(w); err != nil {
		return err
	}
	for _, sv := range view.Streams {
		for _, p := range sv.Problems {
			at := ""
			if p.Offset != nil {
				at = fmt.Sprintf(" at offset %d", *p.Offset)
			}
			if _, err := fmt.Fprintf(w, "\n%s: %s%s: %s\n  advice: %s\n", p.Kind, p.File, at, p.What, p.Advice); err != nil {
				return err
			}
		}
	}
	return nil
}

type txlogReplayOptions struct {
	store   storeFlags
	out     outputFlag
	stream  string
	from    string // a checkpoint: ID or latest
	fromLSN uint64
	to      uint64
	until   string
	print   bool
	write   bool
	into    string
	force   bool
}

func newTxlogReplayCmd() *cobra.Command {
	var opts txlogReplayOptions
	cmd := &cobra.Command{
		Use:   "replay STORE (--from ID|latest | --stream S [--from-lsn LSN]) [--to LSN | --until TIME] [--print] [--write-checkpoint --into DIR|STORE]",
		Short: "Replay the log onto a checkpoint: print what it adds, or write the result as a checkpoint",
		Long: `With --from ID|latest, replay applies the transaction log onto a checkpoint of
STORE: the records logged after the checkpoint's log position for later
epochs, without those a crashed writer logged for epochs its successor
redid (docs/EXACTLY-ONCE.md). It prints them (--print, the default) and, with
--write-checkpoint, restores the checkpoint into the store --into names
(empty unless --force) plus one more checkpoint holding its state with the
replayed changes applied; that checkpoint has no source positions and no
pending transactions, since the bound may fall inside an epoch.

With --stream S instead, it prints the stream's raw records from --from-lsn
(default: the oldest record in the store).

--to stops after an LSN, or --until before the first record written after a
time (RFC 3339, e.g. 2025-03-14T15:09:26Z). With --output json it prints one
JSON object per line. Byte fields (key, value, an input record's chunk)
appear as text when they are valid UTF-8 and otherwise as <field>_b64; a
position and a transaction's data are JSON. A torn tail ends
the replay quietly; damage or an LSN gap stops it with exit code 1.

Exit status: 0 when replayed; 1 on damage or an LSN gap (the records before
it are printed first); 2 for bad arguments, an unknown checkpoint or stream,
an LSN not in the log, or an --into target that is not empty without
--force; 3 when a store cannot be read or written.`,
		Example: `  arkstate txlog replay /var/lib/arkstate --from latest --output json
  arkstate txlog replay /var/lib/arkstate --from 41 --until 2026-12-07T10:15:00Z --write-checkpoint --into /tmp/at-1015
  arkstate txlog replay s3://bucket/job --stream wordcount --from-lsn 1200 --to 1300`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTxlogReplay(cmd.Context(), cmd, &opts, args[0], cmd.OutOrStdout())
		},
	}
	opts.store.addFlags(cmd)
	opts.out.addFlag(cmd)
	cmd.Flags().StringVar(&opts.from, "from", "", "the checkpoint to replay onto: ID or latest")
	cmd.Flags().StringVar(&opts.stream, "stream", "", "without --from: the stream whose raw records to print")
	cmd.Flags().Uint64Var(&opts.fromLSN, "from-lsn", 0, "with --stream: first LSN to print (default: the oldest record)")
	cmd.Flags().Uint64Var(&opts.to, "to", 0, "last LSN to replay (default: no bound)")
	cmd.Flags().StringVar(&opts.until, "until", "", "stop before the first record written after this time (RFC 3339)")
	cmd.Flags().BoolVar(&opts.print, "print", false, "print the replayed records (the default without --write-checkpoint)")
	cmd.Flags().BoolVar(&opts.write, "write-checkpoint", false, "with --from: write the checkpoint plus the replayed changes into the store --into names")
	cmd.Flags().StringVar(&opts.into, "into", "", "with --write-checkpoint: the target store, a directory path, file:///path or s3://bucket/prefix")
	cmd.Flags().BoolVar(&opts.force, "force", false, "with --write-checkpoint: write into a target that is not empty (it must be of the same job)")
	return cmd
}

func runTxlogReplay(ctx context.Context, cmd *cobra.Command, opts *txlogReplayOptions, address string, w io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	switch {
	case opts.from == "" && opts.stream == "":
		return usageErrorf("replay needs --from ID|latest (a checkpoint to replay onto) or --stream S (raw records)")
	case opts.from != "" && cmd.Flags().Changed("from-lsn"):
		return usageErrorf("--from-lsn goes with --stream; --from replays from the checkpoint's own log position")
	case opts.from == "" && (opts.write || opts.into != ""):
		return usageErrorf("--write-checkpoint needs --from ID|latest: the checkpoint the log is replayed onto")
	case opts.write && opts.into == "":
		return usageErrorf("--write-checkpoint needs --into DIR|STORE: the store to write the checkpoint into")
	case !opts.write && (opts.into != "" || opts.force):
		return usageErrorf("--into and --force go with --write-checkpoint")
	case opts.into != "" && restoreHasDotDot(opts.into):
		return usageErrorf("--into %q has a \"..\" path element; name the target directory without \"..\"", opts.into)
	}
	if opts.stream != "" {
		if err := txlog.ValidateStream(opts.stream); err != nil {
			return &usageError{err}
		}
	}
	if cmd.Flags().Changed("to") && opts.until != "" {
		return usageErrorf("--to and --until are mutually exclusive")
	}
	if cmd.Flags().Changed("to") && opts.to == 0 {
		return usageErrorf("--to must be an LSN of at least 1")
	}
	if opts.to != 0 && opts.fromLSN > opts.to {
		return usageErrorf("--from-lsn %d is after --to %d", opts.fromLSN, opts.to)
	}
	var until time.Time
	if opts.until != "" {
		var err error
		if until, err = time.Parse(time.RFC3339Nano, opts.until); err != nil {
			return usageErrorf("--until %q is not an RFC 3339 time such as 2025-03-14T15:09:26Z", opts.until)
		}
	}
	if opts.from != "" {
		return runTxlogReplayCheckpoint(ctx, cmd, opts, address, until, w)
	}
	s, err := opts.store.openStore(ctx, cmd, address)
	if err != nil {
		return err
	}
	defer s.Close()

	emit := txlogRecordWriter(w, opts.out.format)
	err = txlog.Replay(ctx, s, opts.stream, opts.fromLSN, opts.to, until, func(r *format.Record) error {
		return emit(r)
	})
	return txlogUsage(err)
}

// txlogReplayReport is the JSON and YAML of replay --write-checkpoint.
type txlogReplayReport struct {
	Base           uint64 `json:"base_checkpoint_id"`
	Stream         string `json:"stream"`
	FromLSN        uint64 `json:"from_lsn"`
	ToLSN          uint64 `json:"to_lsn,omitempty"`
	Until          string `json:"until_at,omitempty"`
	Changes        int    `json:"change_count"`
	Checkpoint     uint64 `json:"checkpoint_id"`
	Target         string `json:"target"`
	TargetEndpoint string `json:"target_endpoint,omitempty"`
}

// runTxlogReplayCheckpoint is replay --from: the log onto a checkpoint.
func runTxlogReplayCheckpoint(ctx context.Context, cmd *cobra.Command, opts *txlogReplayOptions, address string, until time.Time, w io.Writer) error {
	repo, id, err := openCheckpoint(ctx, func(ctx context.Context) (*checkpoint.Repo, error) {
		return opts.store.openRepo(ctx, cmd, address)
	}, opts.from)
	if err != nil {
		return err
	}
	defer repo.Store().Close()
	m, err := repo.Manifest(ctx, id)
	if err != nil {
		return err
	}
	if m.Txlog == nil {
		return usageErrorf("checkpoint %d of %s records no transaction-log position (was state.txlog enabled when it was written?)", id, repo.Store().Location())
	}
	if opts.stream != "" && opts.stream != m.Txlog.Stream {
		return usageErrorf("--stream %q: checkpoint %d's log is stream %q", opts.stream, id, m.Txlog.Stream)
	}
	if opts.print || !opts.write {
		emit := txlogRecordWriter(w, opts.out.format)
		err := txlog.AfterCheckpoint(ctx, repo.Store(), m.Txlog.Stream, id, m.Txlog.LSN, opts.to, until, func(r *format.Record) error {
			return emit(r)
		})
		if err != nil {
			return txlogUsage(err)
		}
	}
	if !opts.write {
		return nil
	}
	dst, err := opts.store.openTarget(ctx, cmd, opts.into)
	if err != nil {
		return err
	}
	defer dst.Close()
	_, changes, ckpt, err := checkpoint.ReplayInto(ctx, repo, m, opts.to, until, dst, checkpoint.RestoreOptions{Force: opts.force})
	if errors.Is(err, checkpoint.ErrTargetNotEmpty) || errors.Is(err, checkpoint.ErrSameStore) {
		return &usageError{err}
	}
	if err != nil {
		return txlogUsage(err)
	}
	rep := txlogReplayReport{Base: id, Stream: m.Txlog.Stream, FromLSN: m.Txlog.LSN + 1, ToLSN: opts.to, Changes: changes, Checkpoint: ckpt}
	rep.Target, rep.TargetEndpoint = store.Address(dst)
	if !until.IsZero() {
		rep.Until = until.UTC().Format(time.RFC3339Nano)
	}
	if opts.print {
		// The records went to standard output; the report does not mix
		// with them.
		w = cmd.ErrOrStderr()
	}
	return opts.out.render(w, rep, func(t *tableWriter) {
		t.row("base checkpoint", rep.Base)
		t.row("stream", rep.Stream)
		switch {
		case rep.ToLSN != 0:
			t.row("log", fmt.Sprintf("LSN %d to %d", rep.FromLSN, rep.ToLSN))
		case rep.Until != "":
			t.row("log", fmt.Sprintf("from LSN %d until %s", rep.FromLSN, rep.Until))
		default:
			t.row("log", fmt.Sprintf("from LSN %d to its end", rep.FromLSN))
		}
		t.row("changes applied", rep.Changes)
		t.row("written checkpoint", rep.Checkpoint)
		t.row("target", rep.Target)
	})
}

// txlogRecordWriter returns a function that prints one record in the
// output format, streaming: JSON lines, YAML documents, or table rows with
// a header first.
func txlogRecordWriter(w io.Writer, output string) func(*format.Record) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		return func(r *format.Record) error { return enc.Encode(newTxlogRecordView(r)) }
	case "yaml":
		return func(r *format.Record) error { return writeYAMLDocument(w, newTxlogRecordView(r)) }
	}
	header := false
	return func(r *format.Record) error {
		if !header {
			header = true
			if _, err := fmt.Fprintf(w, "%-10s  %-30s  %-6s  %-11s  %s\n", "LSN", "TIME", "EPOCH", "TYPE", "DETAIL"); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(w, "%-10d  %-30s  %-6d  %-11s  %s\n", r.LSN, txlogTime(time.Unix(0, r.Time)), r.Epoch, r.Type, txlogRecordDetail(r))
		return err
	}
}

// txlogRecordView is one record in `txlog replay` JSON and YAML. Fields a
// record type does not use are absent; so are empty byte fields and a false
// deleted flag. Each byte field is either <field> (valid UTF-8, as text) or
// <field>_b64 (standard base64 with padding), as in state dump; a source
// position and a transaction's data are JSON, as in checkpoint show.
type txlogRecordView struct {
	LSN          uint64          `json:"lsn"`
	Type         string          `json:"type"`
	Time         string          `json:"time"`
	Epoch        uint64          `json:"epoch"`
	Operator     string          `json:"operator,omitempty"`
	State        string          `json:"state,omitempty"`
	KeyGroup     *uint32         `json:"key_group,omitempty"`
	Key          string          `json:"key,omitempty"`
	KeyB64       string          `json:"key_b64,omitempty"`
	Deleted      bool            `json:"deleted,omitempty"`
	Value        string          `json:"value,omitempty"`
	ValueB64     string          `json:"value_b64,omitempty"`
	ExpiresAt    string          `json:"expires_at,omitempty"`
	Source       string          `json:"source,omitempty"`
	Position     json.RawMessage `json:"position,omitempty"`
	PositionB64  string          `json:"position_b64,omitempty"`
	Output       string          `json:"output,omitempty"`
	TxnID        string          `json:"txn_id,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	DataB64      string          `json:"data_b64,omitempty"`
	Chunk        string          `json:"chunk,omitempty"` // an input record's bytes
	ChunkB64     string          `json:"chunk_b64,omitempty"`
	CheckpointID uint64          `json:"checkpoint_id,omitempty"`
}

func newTxlogRecordView(r *format.Record) txlogRecordView {
	v := txlogRecordView{LSN: r.LSN, Type: r.Type.String(), Time: txlogTime(time.Unix(0, r.Time)), Epoch: r.Epoch,
		Operator: r.Operator, State: r.State, Deleted: r.Delete, Source: r.Source, Output: r.Output, TxnID: r.TxnID, CheckpointID: r.Checkpoint}
	if r.Type == format.RecordMutation {
		kg := r.KeyGroup
		v.KeyGroup = &kg
	}
	if r.ExpiresAt != 0 {
		v.ExpiresAt = txlogTime(time.Unix(0, r.ExpiresAt))
	}
	v.Key, v.KeyB64 = textOrB64(r.Key)
	v.Value, v.ValueB64 = textOrB64(r.Value)
	v.Position, v.PositionB64 = txlogJSON(r.Position)
	if r.Type == format.RecordInput {
		v.Chunk, v.ChunkB64 = textOrB64(r.Data)
	} else {
		v.Data, v.DataB64 = txlogJSON(r.Data)
	}
	return v
}

// txlogJSON returns b as JSON if it is valid JSON (a position or a
// transaction's data always is), else as base64.
func txlogJSON(b []byte) (json.RawMessage, string) {
	if len(b) == 0 {
		return nil, ""
	}
	if json.Valid(b) {
		return json.RawMessage(b), ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// txlogRecordDetail is the type-specific part of a replay table row.
func txlogRecordDetail(r *format.Record) string {
	show := func(b []byte) string {
		text, b64 := textOrB64(b)
		if b64 != "" {
			return "base64:" + b64
		}
		return strconv.Quote(text)
	}
	var d strings.Builder
	switch r.Type {
	case format.RecordMutation:
		fmt.Fprintf(&d, "%s/%s kg=%d key=%s", r.Operator, r.State, r.KeyGroup, show(r.Key))
		if r.Delete {
			d.WriteString(" delete")
		} else {
			fmt.Fprintf(&d, " value=%s", show(r.Value))
		}
		if r.ExpiresAt != 0 {
			fmt.Fprintf(&d, " expires=%s", txlogTime(time.Unix(0, r.ExpiresAt)))
		}
	case format.RecordPosition:
		fmt.Fprintf(&d, "%s position=%s", r.Source, show(r.Position))
	case format.RecordTxnPrepare, format.RecordTxnCommit, format.RecordTxnAbort:
		fmt.Fprintf(&d, "%s txn=%s", r.Output, r.TxnID)
		if len(r.Data) > 0 {
			fmt.Fprintf(&d, " data=%s", show(r.Data))
		}
	case format.RecordEpochEnd:
		fmt.Fprintf(&d, "checkpoint=%d", r.Checkpoint)
	case format.RecordInput:
		fmt.Fprintf(&d, "%s position=%s", r.Source, show(r.Position))
		if len(r.Data) == 0 {
			d.WriteString(" restart")
		} else {
			fmt.Fprintf(&d, " bytes=%d", len(r.Data))
		}
	}
	return d.String()
}
