package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/units"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
)

// checkpointShowOptions are the flags of `checkpoint show`.
type checkpointShowOptions struct {
	store    storeFlags
	out      outputFlag
	segments bool
	ref      string
	openRepo func(context.Context) (*checkpoint.Repo, error)
}

func (o *checkpointShowOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().BoolVar(&o.segments, "segments", false, "also read each segment's footer and index and print its block layout")
}

func newCheckpointShowCmd() *cobra.Command {
	var opts checkpointShowOptions
	cmd := &cobra.Command{
		Use:   "show STORE ID|latest",
		Short: "Show a checkpoint's manifest",
		Long: `Show one checkpoint's manifest made readable: job, kind, parent, creation time,
key groups, per operator its states and its key-group ranges with their segment
layers, the source positions, the transaction-log position and the pending
two-phase-commit transactions.

ID is a number, a directory name (chk-00000000000000000042) or "latest".
--segments also reads every segment's footer and index (no blocks) and prints
its layout. JSON and YAML output are the manifest's own fields (docs/FORMAT.md),
plus "segments" with --segments. A segment that cannot be read is shown with
its error and makes show exit 1.

Exit status: 0 when shown; 1 when the manifest is damaged, or with
--segments when a segment cannot be read (the output is printed first); 2 for
bad arguments, no such checkpoint or not an arkstate store; 3 when the store
cannot be read.`,
		Example: `  arkstate checkpoint show /var/lib/arkstate latest
  arkstate checkpoint show s3://bucket/job 42 --segments --output json`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref = args[1]
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			return runCheckpointShow(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	cmd.ValidArgsFunction = opts.store.completeRefs(1)
	return cmd
}

// checkpointRefArg rejects a malformed checkpoint argument before the store
// is opened.
func checkpointRefArg(ref string) error {
	if _, err := checkpoint.ParseRef(ref); err != nil {
		return &usageError{err}
	}
	return nil
}

// openCheckpoint checks the checkpoint argument ref, opens the repository
// and resolves ref to an id. The caller closes repo.Store().
func openCheckpoint(ctx context.Context, openRepo func(context.Context) (*checkpoint.Repo, error), ref string) (repo *checkpoint.Repo, id uint64, err error) {
	if err := checkpointRefArg(ref); err != nil {
		return nil, 0, err
	}
	if repo, err = openRepo(ctx); err != nil {
		return nil, 0, err
	}
	if id, err = repo.Resolve(ctx, ref); err != nil {
		repo.Store().Close()
		return nil, 0, err
	}
	return repo, id, nil
}

func runCheckpointShow(ctx context.Context, opts *checkpointShowOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	if err := checkpointRefArg(opts.ref); err != nil {
		return err
	}
	repo, err := opts.openRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Store().Close()
	d, err := checkpoint.Show(ctx, repo, opts.ref, checkpoint.ShowOptions{Segments: opts.segments})
	if err != nil {
		return err
	}
	if opts.out.format == "table" {
		err = writeCheckpointDetail(out, d)
	} else {
		err = opts.out.render(out, d, nil)
	}
	if err != nil {
		return err
	}
	bad := 0
	for _, s := range d.Segments {
		if s.Error != "" {
			bad++
		}
	}
	if bad > 0 {
		return &findingsError{fmt.Sprintf("%d of %d segments of checkpoint %d cannot be read", bad, len(d.Segments), d.Manifest.CheckpointID)}
	}
	return nil
}

// writeCheckpointDetail lays the manifest out for a terminal: a key/value
// header, then per operator its states and its ranges' layers.
func writeCheckpointDetail(w io.Writer, d *checkpoint.CheckpointDetail) error {
	m := d.Manifest
	var head tableWriter
	head.row("checkpoint", fmt.Sprintf("%d (%s)", m.CheckpointID, format.CheckpointDir(m.CheckpointID)))
	head.row("job", m.JobID)
	kind := m.Kind
	if m.Parent != 0 {
		kind += fmt.Sprintf(" (parent %d)", m.Parent)
	}
	head.row("kind", kind)
	head.row("created", m.CreatedAt.UTC().Format(time.RFC3339Nano))
	head.row("key groups", m.KeyGroups)
	if m.Txlog != nil {
		head.row("txlog", fmt.Sprintf("stream %s, lsn %d", m.Txlog.Stream, m.Txlog.LSN))
	} else {
		head.row("txlog", "-")
	}
	for _, s := range m.Sources {
		head.row("source "+s.Source, string(s.Position))
	}
	if len(m.Sources) == 0 {
		head.row("sources", "-")
	}
	head.row("pending txns", len(m.Pending))
	if err := head.flush(w); err != nil {
		return err
	}
	if len(m.Pending) > 0 {
		prepared := map[string]time.Time{}
		for _, p := range d.Prepared {
			prepared[p.Output+"\x00"+p.TxnID] = p.PreparedAt
		}
		var t tableWriter
		t.setHeader("output", "txn", "epoch", "data", "age")
		for _, p := range m.Pending {
			data := string(p.Data)
			if data == "" {
				data = "-"
			}
			age := "-"
			if at, ok := prepared[p.Output+"\x00"+p.TxnID]; ok {
				age = time.Since(at).Round(time.Millisecond).String()
			}
			t.row(p.Output, p.TxnID, p.Epoch, data, age)
		}
		if err := showSection(w, "pending transactions", &t); err != nil {
			return err
		}
	}
	for _, op := range m.Operators {
		var states tableWriter
		states.setHeader("state", "kind", "codec", "ttl")
		for _, s := range op.States {
			ttl := "-"
			if s.TTLMillis > 0 {
				ttl = (time.Duration(s.TTLMillis) * time.Millisecond).String()
			}
			states.row(s.Name, s.Kind, s.Codec, ttl)
		}
		if err := showSection(w, fmt.Sprintf("operator %s: states", op.ID), &states); err != nil {
			return err
		}
		var layers tableWriter
		layers.setHeader("range", "layer", "kind", "checkpoint", "size", "entries", "hash")
		for _, rs := range op.Ranges {
			rng := fmt.Sprintf("%d-%d", rs.Start, rs.End)
			if len(rs.Layers) == 0 {
				layers.row(rng, "-", "-", "-", "-", "-", "-")
			}
			for i, l := range rs.Layers {
				layers.row(rng, i, l.Kind, l.Checkpoint, units.Bytes(l.Size), l.Entries, l.Hash[:12])
			}
		}
		if err := showSection(w, fmt.Sprintf("operator %s: ranges", op.ID), &layers); err != nil {
			return err
		}
	}
	for _, s := range d.Segments {
		if _, err := fmt.Fprintf(w, "\n"); err != nil {
			return err
		}
		if s.Error != "" {
			if _, err := fmt.Fprintf(w, "segment %s\nerror: %s\n", s.Object, s.Error); err != nil {
				return err
			}
			continue
		}
		if _, err := io.WriteString(w, s.Describe); err != nil {
			return err
		}
	}
	return nil
}

// showSection writes a blank line, a title and the table.
func showSection(w io.Writer, title string, t *tableWriter) error {
	if _, err := fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(title)); err != nil {
		return err
	}
	return t.flush(w)
}
