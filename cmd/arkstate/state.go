package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/units"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/pipeline/config"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// newStateCmd groups the commands that read and write a checkpoint's keyed
// state entry by entry.
func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Dump a checkpoint's keyed state as JSON lines, or import it back",
		Long: `State commands work on the entries of a checkpoint: dump writes them as JSON
lines, import commits JSON lines as a new checkpoint. The store address is a
directory path, file:///path or s3://bucket/prefix, as for checkpoint commands.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newStateDumpCmd(), newStateImportCmd())
	groupUsage(cmd)
	return cmd
}

// stateDumpOptions are the flags of `state dump`.
type stateDumpOptions struct {
	store    storeFlags
	out      outputFlag
	filter   checkpoint.DumpOptions
	ref      string
	openRepo func(context.Context) (*checkpoint.Repo, error)
	stderr   io.Writer // where the progress bar goes, if it is a terminal
}

func (o *stateDumpOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addJSONLinesFlag(cmd)
	cmd.Flags().StringVar(&o.filter.Operator, "operator", "", "only this operator's state")
	cmd.Flags().StringVar(&o.filter.State, "state", "", "only states of this name")
	cmd.Flags().StringVar(&o.filter.Key, "key", "", "only this key (reads only its key group)")
}

func newStateDumpCmd() *cobra.Command {
	var opts stateDumpOptions
	cmd := &cobra.Command{
		Use:   "dump STORE ID|latest",
		Short: "Write a checkpoint's live state entries as JSON lines",
		Long: `Write every live entry of a checkpoint as one JSON object per line:
{"operator","state","key","map_key" (map states),"value","expires_at" (TTL)}.
Values are in their codec's JSON form: numbers, strings, booleans, base64 for
bytes, the JSON itself for json values, arrays for list states. A key that is
not UTF-8 is written as "key_b64", and a value whose codec is unknown or whose
bytes have no exact JSON form as "value_b64", so nothing is lost: the lines
import back byte for byte (arkstate state import).

Entries are written operator by operator, each in key-group range, state,
key-group and key order; expired entries are included with their expiry.
The output is always JSON lines (--output json, the default; table is
accepted and gives the same; yaml is refused). Dump only reads the store.

Exit status: 0 when written; 1 when the checkpoint is damaged; 2 for bad
arguments, not a store, an unknown checkpoint, operator or state; 3 when the
store cannot be read or stdout is closed.`,
		Example: `  arkstate state dump /var/lib/arkstate latest > state.jsonl
  arkstate state dump s3://bucket/job 42 --operator count --key user-17`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.stderr = args[1], cmd.ErrOrStderr()
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			return runStateDump(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	cmd.ValidArgsFunction = opts.store.completeRefs(1)
	return cmd
}

func runStateDump(ctx context.Context, opts *stateDumpOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	if opts.out.format == "yaml" {
		return usageErrorf("state dump writes JSON lines; --output yaml is not supported")
	}
	repo, id, err := openCheckpoint(ctx, opts.openRepo, opts.ref)
	if err != nil {
		return err
	}
	defer repo.Store().Close()
	w := bufio.NewWriterSize(out, 256<<10)
	filter := opts.filter
	var finish func()
	filter.Progress, finish = progressSteps(opts.stderr, "dump")
	defer finish()
	err = checkpoint.Dump(ctx, repo, id, filter, func(rec checkpoint.DumpRecord) error {
		line, err := rec.MarshalJSON()
		if err != nil {
			return err
		}
		w.Write(line)
		return w.WriteByte('\n') // a failed write sticks in w and shows here
	})
	if err != nil {
		return stateUsageError(err)
	}
	return w.Flush()
}

// stateImportOptions are the flags of `state import`.
type stateImportOptions struct {
	store       storeFlags
	out         outputFlag
	from        string
	states      string
	incremental bool
	dryRun      bool
	operator    string
	spoolDir    string
	jobID       string
	keyGroups   uint32
	in          io.Reader // standard input, for --from -
	stderr      io.Writer
	address     string
	openRepo    func(context.Context) (*checkpoint.Repo, error)
	// openNew opens the store to create, which may not exist yet.
	openNew func(context.Context) (store.Store, error)
	// keyGroupsSet says whether --key-groups was given.
	keyGroupsSet bool
}

func (o *stateImportOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().StringVar(&o.from, "from", "", "JSON lines to import, as state dump writes them (- for standard input)")
	cmd.Flags().StringVar(&o.states, "states", "", "JSON file declaring state descriptors the latest checkpoint lacks: [{\"operator\":OP,\"states\":[{\"state\",\"kind\",\"codec\",\"ttl_ms\"}]}], as in checkpoint show's \"operators\" (a manifest's names id, name and ttl_millis work too)")
	cmd.Flags().BoolVar(&o.incremental, "incremental", false, "apply the lines as upserts on top of the latest checkpoint instead of replacing its state")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "check every line and report what the import would commit, without writing anything")
	cmd.Flags().StringVar(&o.operator, "operator", "", "import only this operator's lines; the other operators keep their state")
	cmd.Flags().StringVar(&o.spoolDir, "spool-dir", "", "directory for segments before upload (default: the system's temporary directory)")
	cmd.Flags().StringVar(&o.jobID, "job-id", "", "create a new store for this job when STORE is missing or empty (the state block's job_id, or the stream ids `arkstate run` joins); checked against an existing store")
	cmd.Flags().Uint32Var(&o.keyGroups, "key-groups", config.DefaultKeyGroups, "key groups of a store the import creates (the state block's key_groups); checked against an existing store")
}

func newStateImportCmd() *cobra.Command {
	var opts stateImportOptions
	cmd := &cobra.Command{
		Use:   "import STORE --from FILE.jsonl",
		Short: "Commit JSON lines of state entries as a new checkpoint",
		Long: `Read state entries as JSON lines (the format state dump writes) and commit them
as a new checkpoint, numbered one past the latest. The latest checkpoint's
source positions, transaction-log position and pending transactions are
carried over, so a pipeline restored from the new checkpoint resumes where it
would have.

Without --incremental the new checkpoint holds exactly the lines: the whole
keyed state is replaced (with --operator, only that operator's; the others are
carried over). With --incremental the lines are upserts on top of the latest
checkpoint: each replaces one entry (a whole list for list states), and every
other entry stays. A line {"operator":..., "state":..., "key":..., "deleted": true} (with map_key
for map states) deletes that entry; deleting one that is not there is
reported, not an error.

Into a missing or empty directory or S3 prefix, the import creates the store:
give --job-id, --key-groups (default 128) and --states. Nothing is created
unless every line is good.

State kinds, codecs and TTLs come from the latest checkpoint; for an empty
store, or operators and states it does not have, declare them with --states.
Every line is checked before anything is written: a bad line is reported with
its file, line number and field, and nothing is committed. The input is sorted
in memory (up to 1 GiB of entries); import larger states one operator at a
time with --operator. Stop the pipeline first: a checkpoint it commits with the
same id makes the import fail.

Exit status: 0 when committed (with --dry-run: when it would be); 1 when
the latest checkpoint is damaged; 2 for bad arguments, a bad input line or
--states file, or a store that does not match --job-id or --key-groups; 3
when the store cannot be read or written, or another writer committed the id
first.`,
		Example: `  arkstate state dump /var/lib/arkstate latest > state.jsonl
  arkstate state import /var/lib/arkstate --from state.jsonl
  arkstate state import s3://bucket/job --from fixes.jsonl --incremental --output json
  arkstate state import ./new-store --from batch.jsonl --job-id wordcount --states states.json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.in = cmd.InOrStdin()
			opts.stderr = cmd.ErrOrStderr()
			opts.address = args[0]
			opts.keyGroupsSet = cmd.Flags().Changed("key-groups")
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			opts.openNew = func(ctx context.Context) (store.Store, error) {
				return opts.store.openStore(ctx, cmd, args[0])
			}
			return runStateImport(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// stateImportReport is the JSON and YAML output of `state import`.
type stateImportReport struct {
	CheckpointID uint64 `json:"checkpoint_id"`
	Kind         string `json:"kind,omitempty"` // absent in a dry run
	Parent       uint64 `json:"parent_checkpoint_id,omitempty"`
	Created      bool   `json:"created"`
	// DryRun says nothing was written: CheckpointID is the id the import
	// would commit.
	DryRun  bool  `json:"dry_run"`
	Entries int64 `json:"entry_count"`
	Deleted int64 `json:"deleted_count"`
	Skipped int64 `json:"skipped_count"`
	// Missing lists delete lines that found no entry; never null.
	Missing          []checkpoint.ImportMissing `json:"missing"`
	SegmentsWritten  int                        `json:"written_segment_count"`
	SegmentsUploaded int                        `json:"uploaded_segment_count"`
	BytesUploaded    int64                      `json:"uploaded_bytes"`
}

func runStateImport(ctx context.Context, opts *stateImportOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	if opts.from == "" {
		return usageErrorf("--from FILE is required (- reads standard input)")
	}
	iopts := checkpoint.ImportOptions{Incremental: opts.incremental, Operator: opts.operator, Name: opts.from, SpoolDir: opts.spoolDir, DryRun: opts.dryRun}
	if opts.states != "" {
		f, err := os.Open(opts.states)
		if err != nil {
			return &usageError{fmt.Errorf("--states: %w", err)}
		}
		iopts.States, err = checkpoint.DecodeStateDescriptors(f, opts.states)
		f.Close()
		if err != nil {
			return stateUsageError(err)
		}
	}
	in := opts.in
	size := int64(-1)
	if opts.from != "-" {
		f, err := os.Open(opts.from)
		if err != nil {
			return &usageError{fmt.Errorf("--from: %w", err)}
		}
		defer f.Close()
		in = f
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	} else {
		iopts.Name = "<stdin>"
	}
	progress, finish := progressBar(opts.stderr, "import")
	if progress != nil {
		in = &progressReader{r: in, total: size, progress: progress}
	}
	res, created, err := importInto(ctx, opts, in, iopts)
	finish()
	if err != nil {
		return err
	}
	for _, ms := range res.Missing {
		fmt.Fprintf(opts.stderr, "arkstate: %s:%d: operator %q state %q key %q: no such entry in the latest checkpoint; nothing deleted\n",
			iopts.Name, ms.Line, ms.Operator, ms.State, ms.Key)
	}
	rep := stateImportReport{CheckpointID: res.Checkpoint, Parent: res.Parent, Created: created && !opts.dryRun, DryRun: opts.dryRun,
		Entries: res.Entries, Deleted: res.Deleted, Skipped: res.Skipped, Missing: res.Missing,
		SegmentsWritten: res.Build.Segments, SegmentsUploaded: res.Build.SegmentsUploaded, BytesUploaded: res.Build.BytesUploaded}
	if m := res.Manifest; m != nil {
		rep.Kind, rep.Parent = m.Kind, m.Parent
	}
	if rep.Missing == nil {
		rep.Missing = []checkpoint.ImportMissing{}
	}
	return opts.out.render(out, rep, func(t *tableWriter) {
		if rep.DryRun {
			t.row("dry run", "nothing written; the import would commit:")
		}
		t.row("checkpoint", rep.CheckpointID)
		kind := cmp.Or(rep.Kind, "-")
		if rep.Parent != 0 {
			kind += fmt.Sprintf(" (parent %d)", rep.Parent)
		}
		t.row("kind", kind)
		if rep.Created {
			t.row("store", "created")
		}
		if rep.DryRun && created {
			t.row("store", "would be created")
		}
		t.row("entries", rep.Entries)
		if rep.Deleted > 0 || len(rep.Missing) > 0 {
			t.row("deleted", fmt.Sprintf("%d (%d delete lines found no entry)", rep.Deleted, len(rep.Missing)))
		}
		if opts.operator != "" {
			t.row("skipped", fmt.Sprintf("%d (other operators)", rep.Skipped))
		}
		t.row("segments", fmt.Sprintf("%d written, %d uploaded (%s)", rep.SegmentsWritten, rep.SegmentsUploaded, units.Bytes(rep.BytesUploaded)))
	})
}

// importInto imports into the store the options name, creating it when
// it is missing or empty. created reports that it did.
func importInto(ctx context.Context, opts *stateImportOptions, in io.Reader, iopts checkpoint.ImportOptions) (res *checkpoint.ImportResult, created bool, err error) {
	repo, err := opts.openRepo(ctx)
	if err == nil {
		defer repo.Store().Close()
		mk := repo.Marker()
		if opts.jobID != "" && opts.jobID != mk.JobID {
			return nil, false, usageErrorf("%s belongs to job %q, not --job-id %q", repo.Store().Location(), mk.JobID, opts.jobID)
		}
		if opts.keyGroupsSet && opts.keyGroups != mk.KeyGroups {
			return nil, false, usageErrorf("%s has %d key groups, not --key-groups %d", repo.Store().Location(), mk.KeyGroups, opts.keyGroups)
		}
		res, err := checkpoint.Import(ctx, repo, in, iopts)
		if err != nil {
			return nil, false, stateUsageError(err)
		}
		return res, false, nil
	}
	dir, local := restoreLocalTarget(opts.address)
	missingDir := local && opts.store.remote == "" && !restorePathExists(dir)
	if !missingDir && !errors.Is(err, checkpoint.ErrNotRepo) {
		return nil, false, err
	}
	res, err = bootstrapImport(ctx, opts, in, iopts)
	return res, err == nil, err
}

// bootstrapImport creates a store from an import. The import runs against
// a store in memory first, so bad input is refused before anything is
// created; the checkpoint is then restored into the new store, which must
// be empty (a directory that holds anything else is refused, as restore
// refuses it).
func bootstrapImport(ctx context.Context, opts *stateImportOptions, in io.Reader, iopts checkpoint.ImportOptions) (*checkpoint.ImportResult, error) {
	switch {
	case opts.jobID == "":
		return nil, usageErrorf("%s is not an arkstate store yet; to create one, give --job-id (the state block's job_id, or the stream ids `arkstate run` joins with \",\") and --states", opts.address)
	case opts.states == "":
		return nil, usageErrorf("%s is not an arkstate store yet, so no state is known; declare the states to create with --states", opts.address)
	case opts.incremental:
		return nil, usageErrorf("%s is not an arkstate store yet: an incremental import has no checkpoint to extend; create the store with a full import", opts.address)
	}
	mem, err := checkpoint.InitRepo(ctx, store.NewMem("import"), opts.jobID, opts.keyGroups)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--job-id %q, --key-groups %d: %w", opts.jobID, opts.keyGroups, err)}
	}
	defer mem.Store().Close()
	res, err := checkpoint.Import(ctx, mem, in, iopts)
	if err != nil {
		return nil, stateUsageError(err)
	}
	if iopts.DryRun {
		return res, nil
	}
	dst, err := opts.openNew(ctx)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	if _, err := checkpoint.Restore(ctx, mem, res.Manifest.CheckpointID, dst, checkpoint.RestoreOptions{SpoolDir: opts.spoolDir}); err != nil {
		if errors.Is(err, checkpoint.ErrTargetNotEmpty) {
			return nil, usageErrorf("%s is not an arkstate store and not empty; create the store in an empty directory or prefix", dst.Location())
		}
		return nil, err
	}
	return res, nil
}

// stateUsageError marks the failures that are the user's input rather than
// the store's: bad lines, unknown operators or states, conflicting
// descriptors. They exit 2.
func stateUsageError(err error) error {
	var ie *checkpoint.ImportError
	if errors.As(err, &ie) ||
		errors.Is(err, checkpoint.ErrOperatorNotFound) ||
		errors.Is(err, checkpoint.ErrStateNotFound) ||
		errors.Is(err, state.ErrStateConflict) {
		return &usageError{err}
	}
	return err
}
