package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/units"
	"github.com/arkstate/arkstate/pkg/checkpoint"
)

// checkpointGCOptions are the flags and arguments of `checkpoint gc`.
type checkpointGCOptions struct {
	store    storeFlags
	out      outputFlag
	dryRun   bool
	grace    time.Duration
	stderr   io.Writer // where the progress bar goes, if it is a terminal
	openRepo func(context.Context) (*checkpoint.Repo, error)
}

func (o *checkpointGCOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	cmd.Flags().DurationVar(&o.grace, "grace", checkpoint.DefaultGCGrace, "keep unreferenced objects younger than this (0 keeps none back)")
}

func newCheckpointGCCmd() *cobra.Command {
	var opts checkpointGCOptions
	cmd := &cobra.Command{
		Use:   "gc STORE",
		Short: "Delete segments and leftovers no checkpoint references",
		Long: `Find and delete what no checkpoint needs: segments that no checkpoint's
manifest names, the contents of checkpoint directories without a MANIFEST (a
checkpoint that never completed), and temporary uploads (a directory store's
temporary files, S3 multipart uploads never completed). Each is reported with
why it is an orphan and its size.

Segments are reference-counted across every manifest in the store. If a
manifest cannot be read, gc deletes nothing, since that manifest may name
segments: it reports the manifest and exits with status 1.

gc does not delete beside a running job: it takes every writer lease of the
store first (a job that holds one makes it exit 3), holds them while it
deletes, and checks them before every delete. A running job collects its own
garbage between checkpoints. Objects modified less than --grace ago (default
1h) are reported and kept, for writers of versions without this hold.
--dry-run takes no lease and works beside a running job.

Exit status: 0 when gc ran, 1 when a manifest cannot be read (nothing is
deleted), 2 for bad arguments, 3 when the store cannot be read or written.`,
		Example: `  arkstate checkpoint gc /var/lib/arkstate --dry-run
  arkstate checkpoint gc s3://bucket/job --grace 6h --output json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.stderr = cmd.ErrOrStderr()
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			return runCheckpointGC(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// gcGraceOption turns the --grace flag into GCOptions.Grace, where zero
// means the default and a negative value no grace period.
func gcGraceOption(grace time.Duration) (time.Duration, error) {
	switch {
	case grace < 0:
		return 0, usageErrorf("--grace %v is negative", grace)
	case grace == 0:
		return -1, nil
	}
	return grace, nil
}

func runCheckpointGC(ctx context.Context, opts *checkpointGCOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	grace, err := gcGraceOption(opts.grace)
	if err != nil {
		return err
	}
	repo, hold, done, err := openForDeleting(ctx, opts.openRepo, opts.dryRun, "checkpoint gc")
	if err != nil {
		return err
	}
	defer done()
	gopts := checkpoint.GCOptions{DryRun: opts.dryRun, Grace: grace, Maintenance: hold}
	var finish func()
	gopts.Progress, finish = progressBar(opts.stderr, "gc")
	rep, gcErr := checkpoint.GC(ctx, repo, gopts)
	finish()
	if rep == nil {
		return gcErr
	}
	if err := writeGCReport(out, &opts.out, rep); err != nil {
		return err
	}
	return retentionError(gcErr)
}

// retentionError maps the refusal to delete because of an unreadable
// manifest to exit status 1; the report naming it is already written.
func retentionError(err error) error {
	if errors.Is(err, checkpoint.ErrUnreadableManifest) {
		return &findingsError{err.Error()}
	}
	return err
}

func writeGCReport(out io.Writer, o *outputFlag, rep *checkpoint.GCReport) error {
	if o.format != "table" {
		return o.render(out, rep, nil)
	}
	return writeGCTable(out, o, rep)
}

// writeGCTable writes a summary line, the unreadable manifests and a table
// of the orphans.
func writeGCTable(out io.Writer, o *outputFlag, rep *checkpoint.GCReport) error {
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	var would, wouldBytes int64
	for _, orphan := range rep.Orphans {
		if orphan.Action == checkpoint.ActionDeleted || orphan.Action == checkpoint.ActionWouldDelete {
			would++
			wouldBytes += orphan.Bytes
		}
	}
	if _, err := fmt.Fprintf(out, "gc: %d checkpoints retain %d of %d segments; %d orphans, %s %d (%s); grace %s\n",
		len(rep.Checkpoints), rep.Referenced, rep.Segments, len(rep.Orphans), verb, would, units.Bytes(wouldBytes), rep.Grace); err != nil {
		return err
	}
	for _, u := range rep.Unreadable {
		if _, err := fmt.Fprintf(out, "unreadable manifest of checkpoint %d (%s): %s: nothing deleted\n", u.Checkpoint, u.File, u.Error); err != nil {
			return err
		}
	}
	if len(rep.Orphans) == 0 {
		return nil
	}
	return o.render(out, rep, func(t *tableWriter) {
		t.setHeader("object", "kind", "bytes", "modified", "action", "reason")
		for _, orphan := range rep.Orphans {
			t.row(orphan.Name, orphan.Kind, orphan.Bytes, orphan.ModTime.UTC().Format(time.RFC3339), orphan.Action, orphan.Reason)
		}
	})
}
