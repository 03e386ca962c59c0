package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/pkg/checkpoint"
)

// checkpointPruneOptions are the flags and arguments of `checkpoint prune`.
type checkpointPruneOptions struct {
	store    storeFlags
	out      outputFlag
	keepLast int
	dryRun   bool
	grace    time.Duration
	openRepo func(context.Context) (*checkpoint.Repo, error)
	stderr   io.Writer // where the progress bar goes, if it is a terminal
}

func (o *checkpointPruneOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().IntVar(&o.keepLast, "keep-last", 0, "keep the newest N checkpoints and the ancestors they need (required, at least 1)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	cmd.Flags().DurationVar(&o.grace, "grace", checkpoint.DefaultGCGrace, "grace period of the gc that follows (see checkpoint gc)")
}

func newCheckpointPruneCmd() *cobra.Command {
	var opts checkpointPruneOptions
	cmd := &cobra.Command{
		Use:   "prune STORE --keep-last N",
		Short: "Delete old checkpoints, keeping the newest N",
		Long: `Keep the newest N checkpoints and every older checkpoint they need: an
incremental checkpoint needs its parent chain back to its last full checkpoint,
and such ancestors are kept and reported with the reason. Every other
checkpoint is deleted, its MANIFEST first (so it disappears at once), then the
rest of its directory. Then gc runs and deletes the segments that only the
deleted checkpoints referenced (see checkpoint gc, whose --grace applies: the
segments of checkpoints written less than --grace ago are left for a later gc).

If the manifest of a kept checkpoint or of one of its ancestors cannot be read
or is missing, prune deletes nothing and exits with status 1.

Exit status: 0 when prune ran, 1 when a manifest cannot be read (nothing is
deleted), 2 for bad arguments, 3 when the store cannot be read or written.`,
		Example: `  arkstate checkpoint prune /var/lib/arkstate --keep-last 5 --dry-run
  arkstate checkpoint prune s3://bucket/job --keep-last 3 --output json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			opts.stderr = cmd.ErrOrStderr()
			return runCheckpointPrune(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func runCheckpointPrune(ctx context.Context, opts *checkpointPruneOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	if opts.keepLast < 1 {
		return usageErrorf("--keep-last N is required and must be at least 1 (got %d)", opts.keepLast)
	}
	grace, err := gcGraceOption(opts.grace)
	if err != nil {
		return err
	}
	repo, hold, done, err := openForDeleting(ctx, opts.openRepo, opts.dryRun, "checkpoint prune")
	if err != nil {
		return err
	}
	defer done()
	popts := checkpoint.PruneOptions{KeepLast: opts.keepLast, DryRun: opts.dryRun, Grace: grace, Maintenance: hold}
	var finish func()
	popts.Progress, finish = progressBar(opts.stderr, "prune")
	rep, pruneErr := checkpoint.Prune(ctx, repo, popts)
	finish()
	if rep == nil {
		return pruneErr
	}
	if err := writePruneReport(out, &opts.out, rep); err != nil {
		return err
	}
	return retentionError(pruneErr)
}

func writePruneReport(out io.Writer, o *outputFlag, rep *checkpoint.PruneReport) error {
	if o.format != "table" {
		return o.render(out, rep, nil)
	}
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	if _, err := fmt.Fprintf(out, "prune --keep-last %d: kept %d checkpoints, %s %d\n", rep.KeepLast, len(rep.Kept), verb, len(rep.Deleted)); err != nil {
		return err
	}
	for _, u := range rep.Unreadable {
		if _, err := fmt.Fprintf(out, "unreadable manifest of checkpoint %d (%s): %s: nothing deleted\n", u.Checkpoint, u.File, u.Error); err != nil {
			return err
		}
	}
	t := &tableWriter{}
	t.setHeader("checkpoint", "action", "reason")
	for _, k := range rep.Kept {
		t.row(k.ID, "keep", k.Reason)
	}
	for _, id := range rep.Deleted {
		t.row(id, verb, fmt.Sprintf("older than the newest %d and not needed by them", rep.KeepLast))
	}
	if err := t.flush(out); err != nil {
		return err
	}
	if rep.GC == nil {
		return nil
	}
	return writeGCTable(out, o, rep.GC)
}
