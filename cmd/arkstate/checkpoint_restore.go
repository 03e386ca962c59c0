package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/arkstate/arkstate/internal/units"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/store"
)

// checkpointRestoreOptions are the flags and arguments of `checkpoint restore`.
type checkpointRestoreOptions struct {
	store  storeFlags
	out    outputFlag
	to     string
	dryRun bool
	force  bool
	at     string // --at: a point-in-time restore instead of ref
	ref    string
	stderr io.Writer // where the progress bar goes, if it is a terminal

	openRepo  func(context.Context) (*checkpoint.Repo, error)
	openStore func(ctx context.Context, address string) (store.Store, error)
}

func (o *checkpointRestoreOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().StringVar(&o.to, "to", "", "target store: a directory path, file:///path or s3://bucket/prefix (required)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "check the source and show what would be copied, without writing")
	cmd.Flags().BoolVar(&o.force, "force", false, "restore into a target that is not empty (it must be of the same job)")
	cmd.Flags().StringVar(&o.at, "at", "", "restore the state at this moment (RFC 3339) instead of a checkpoint: the newest checkpoint before it plus the transaction log up to it")
}

func newCheckpointRestoreCmd() *cobra.Command {
	var opts checkpointRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore STORE (ID|latest | --at TIME) --to DIR|STORE",
		Short: "Copy a checkpoint into a new store, verifying it",
		Long: `Copy checkpoint ID of STORE, with the manifests of its ancestors back to its
last full checkpoint and every segment they reference, into the target store,
which a job can then start from. Each segment's SHA-256 and every block are
verified before the segment is written; segments are written first and the
manifests last, oldest first, so an interrupted restore never leaves a
checkpoint that names something missing. A damaged source is refused with the
checkpoint and the damaged file named; when the target was empty, what the
failed restore wrote is removed again.

With --at TIME (RFC 3339, e.g. 2026-12-07T10:15:00Z) instead of an ID, the
state at that moment is restored: the newest checkpoint completed at or
before TIME, and, when the transaction log (state.txlog) holds state changes
after it up to TIME, one more checkpoint with them applied. That checkpoint
has no source positions and no pending transactions. A TIME outside what the
store retains is refused (exit 2) with the range it can restore.

The target must be empty unless --force is given. A target containing a ".."
path element is refused, so a restore cannot write outside the directory the
operator named. The --s3-* flags apply to both stores. A progress bar is shown
on stderr when it is a terminal.

Exit status: 0 when the checkpoint was restored (or, with --dry-run, could be),
1 when the source is damaged, 2 for bad arguments or a target that is not
empty, 3 when a store cannot be read or written.`,
		Example: `  arkstate checkpoint restore s3://bucket/job latest --to /var/lib/arkstate-restored
  arkstate checkpoint restore /var/lib/arkstate 41 --to s3://bucket/job-rollback --dry-run`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 2 && opts.at != "":
				return usageErrorf("give a checkpoint ID or --at TIME, not both")
			case len(args) == 1 && opts.at == "":
				return usageErrorf("restore needs a checkpoint ID (or latest), or --at TIME")
			case len(args) == 2:
				opts.ref = args[1]
			}
			opts.stderr = cmd.ErrOrStderr()
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			opts.openStore = func(ctx context.Context, address string) (store.Store, error) {
				return opts.store.openTarget(ctx, cmd, address)
			}
			return runCheckpointRestore(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	cmd.ValidArgsFunction = opts.store.completeRefs(1)
	return cmd
}

func runCheckpointRestore(ctx context.Context, opts *checkpointRestoreOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	if opts.to == "" {
		return usageErrorf("--to is required: the directory or store to restore into")
	}
	if restoreHasDotDot(opts.to) {
		return usageErrorf("restore target %q has a \"..\" path element; name the target directory without \"..\"", opts.to)
	}
	var repo *checkpoint.Repo
	var id uint64
	var at time.Time
	var err error
	if opts.at != "" {
		if at, err = time.Parse(time.RFC3339Nano, opts.at); err != nil {
			return usageErrorf("--at %q is not an RFC 3339 time such as 2026-12-07T10:15:00Z", opts.at)
		}
		if repo, err = opts.openRepo(ctx); err != nil {
			return err
		}
	} else if repo, id, err = openCheckpoint(ctx, opts.openRepo, opts.ref); err != nil {
		return err
	}
	defer repo.Store().Close()

	// A dry run must not create the target directory, which opening a
	// directory store does; a missing one is an empty target.
	var dst store.Store
	if dir, local := restoreLocalTarget(opts.to); !opts.dryRun || !local || restorePathExists(dir) {
		dst, err = opts.openStore(ctx, opts.to)
		if err != nil {
			return err
		}
		defer dst.Close()
	}

	ro := checkpoint.RestoreOptions{DryRun: opts.dryRun, Force: opts.force}
	var finish func()
	if !opts.dryRun {
		ro.Progress, finish = progressBar(opts.stderr, "restore")
	}
	var plan *checkpoint.RestorePlan
	var pit *checkpoint.PointInTime
	if opts.at != "" {
		plan, pit, err = checkpoint.RestoreAt(ctx, repo, at, dst, ro)
	} else {
		plan, err = checkpoint.Restore(ctx, repo, id, dst, ro)
	}
	if finish != nil {
		finish()
	}
	if errors.Is(err, checkpoint.ErrTargetNotEmpty) || errors.Is(err, checkpoint.ErrSameStore) || errors.Is(err, checkpoint.ErrTimeNotRetained) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	if pit != nil {
		return opts.out.render(out, restoreAtView{RestorePlan: plan, PointInTime: pit}, func(t *tableWriter) {
			t.row("at", pit.At.Format(time.RFC3339Nano))
			t.row("base checkpoint", pit.Base)
			t.row("log changes applied", pit.Changes)
			t.row("restored checkpoint", pit.Checkpoint)
			t.row("status", restoreStatus(plan))
			t.row("source", withEndpoint(plan.Source, plan.SourceEndpoint))
			t.row("target", withEndpoint(plan.Target, plan.TargetEndpoint))
		})
	}
	return opts.out.render(out, plan, func(t *tableWriter) {
		status := "restored"
		if plan.DryRun {
			status = "dry run: nothing written"
		}
		t.row("checkpoint", plan.Checkpoint)
		t.row("status", status)
		t.row("chain", verifyIDList(plan.Chain))
		t.row("source", withEndpoint(plan.Source, plan.SourceEndpoint))
		target := withEndpoint(plan.Target, plan.TargetEndpoint)
		if target == "" {
			target = opts.to + " (does not exist yet)"
		}
		t.row("target", target)
		t.row("segments", plan.Segments, "("+units.Bytes(plan.SegmentBytes)+")")
		t.row("files", plan.Files, "("+units.Bytes(plan.Bytes)+")")
		t.row("requests", plan.Requests)
	})
}

// withEndpoint is an address with its S3 endpoint, for people.
func withEndpoint(address, endpoint string) string {
	if endpoint == "" {
		return address
	}
	return address + " (endpoint " + endpoint + ")"
}

// restoreAtView is the JSON and YAML of a point-in-time restore: the copy's
// plan and the point in time.
type restoreAtView struct {
	*checkpoint.RestorePlan
	PointInTime *checkpoint.PointInTime `json:"point_in_time"`
}

func restoreStatus(plan *checkpoint.RestorePlan) string {
	if plan.DryRun {
		return "dry run: nothing written"
	}
	return "restored"
}

// restoreHasDotDot reports whether a target address has a ".." path element, in
// either slash direction, before any cleaning could hide it.
func restoreHasDotDot(address string) bool {
	for _, el := range strings.FieldsFunc(address, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return true
		}
	}
	return false
}

// restoreLocalTarget returns the directory a plain path or file:// address names.
func restoreLocalTarget(address string) (string, bool) {
	if strings.HasPrefix(strings.ToLower(address), "file://") {
		u, err := url.Parse(address)
		if err != nil {
			return "", false
		}
		return filepath.FromSlash(u.Path), true
	}
	if i := strings.Index(address, "://"); i > 0 {
		return "", false
	}
	return address, true
}

// restorePathExists reports whether path exists; an error other than "does
// not exist" counts as existing, so that opening it reports the error.
func restorePathExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// isTerminal reports whether w is a terminal, where progress bars and
// colours help rather than litter.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
