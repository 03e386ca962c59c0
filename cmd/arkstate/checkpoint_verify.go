package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/units"
	"github.com/arkstate/arkstate/pkg/checkpoint"
)

// errNothingToVerify is verify's outcome on a store without checkpoints:
// exit 1, and a message, unlike damage, which the report already shows.
var errNothingToVerify = errors.New("the store holds no checkpoint: nothing to verify (give --allow-empty when an empty store is expected)")

// checkpointVerifyOptions are the flags of `checkpoint verify`.
type checkpointVerifyOptions struct {
	store    storeFlags
	out      outputFlag
	all      bool
	deep     bool
	sample   string
	empty    bool      // --allow-empty
	ref      string    // "" for the latest
	stderr   io.Writer // where the progress bar goes, if it is a terminal
	openRepo func(context.Context) (*checkpoint.Repo, error)
}

func (o *checkpointVerifyOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().BoolVar(&o.all, "all", false, "verify every checkpoint instead of one")
	cmd.Flags().BoolVar(&o.deep, "deep", false, "read every block and check every checksum and each segment's SHA-256")
	cmd.Flags().StringVar(&o.sample, "sample", "", "deep-check only slice N/T of the segments (1/7 .. 7/7 cover all); implies --deep for that slice")
	cmd.Flags().BoolVar(&o.empty, "allow-empty", false, "exit 0 when the store holds no checkpoint (default: exit 1, as a store that lost every manifest looks the same)")
}

func newCheckpointVerifyCmd() *cobra.Command {
	var opts checkpointVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify STORE [ID|latest]",
		Short: "Check checkpoints for damage",
		Long: `Check one checkpoint (the latest unless ID is given) or, with --all, every
checkpoint, and report each problem with the damaged object and what to do.

Without --deep, verify checks that every manifest parses and its checksum
matches, that an incremental checkpoint's parent exists, that the layers agree
with the manifests of the checkpoints that wrote them, and that every segment
exists with the recorded size and an intact footer and index. --deep also reads
every block, checking each checksum and entry, and the SHA-256 of each segment
against its name. Segments shared by several checkpoints are checked once.

--sample N/T deep-checks only the segments whose hash's first byte modulo T is
N-1: running 1/T through T/T (one a night, say) deep-checks everything once.

A store that holds no checkpoint has nothing to verify: the report says so
("empty": true) and verify exits 1, since a store that lost every manifest
looks the same, unless --allow-empty says an empty store is expected.

Exit status: 0 when no damage is found, 1 when some is (the report is printed
first) or the store holds no checkpoint without --allow-empty, 2 for bad
arguments, 3 when the store cannot be read.`,
		Example: `  arkstate checkpoint verify /var/lib/arkstate
  arkstate checkpoint verify s3://bucket/job --all --deep --output json
  arkstate checkpoint verify s3://bucket/job --all --sample 3/7`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				opts.ref = args[1]
			}
			opts.stderr = cmd.ErrOrStderr()
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			return runCheckpointVerify(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	cmd.ValidArgsFunction = opts.store.completeRefs(1)
	return cmd
}

func runCheckpointVerify(ctx context.Context, opts *checkpointVerifyOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	vo := checkpoint.VerifyOptions{All: opts.all, Deep: opts.deep}
	if opts.all && opts.ref != "" {
		return usageErrorf("give a checkpoint ID or --all, not both")
	}
	if opts.ref != "" {
		if err := checkpointRefArg(opts.ref); err != nil {
			return err
		}
	}
	if opts.sample != "" {
		s, err := checkpoint.ParseSample(opts.sample)
		if err != nil {
			return usageErrorf("--sample: %v", err)
		}
		vo.Sample = s
	}
	repo, err := opts.openRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Store().Close()
	if opts.ref != "" {
		id, err := repo.Resolve(ctx, opts.ref)
		if err != nil {
			return err
		}
		vo.IDs = []uint64{id}
	}
	var finish func()
	vo.Progress, finish = progressBar(opts.stderr, "verify")
	rep, err := checkpoint.Verify(ctx, repo, vo)
	finish()
	if err != nil {
		return err
	}
	switch {
	case opts.out.format != "table":
		err = opts.out.render(out, rep, nil)
	case rep.OK():
		// An empty grid says nothing the summary line does not.
		err = writeVerifySummary(out, rep)
	default:
		err = opts.out.render(out, rep, func(t *tableWriter) {
			t.setHeader("checkpoints", "file", "kind", "problem")
			for _, p := range rep.Problems {
				t.row(verifyIDList(p.Checkpoints), p.File, p.Kind, p.Problem)
			}
		})
		if err == nil {
			err = writeVerifySummary(out, rep)
		}
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return &findingsError{fmt.Sprintf("verify found %d problems", len(rep.Problems))}
	}
	if rep.Empty && !opts.empty {
		return errNothingToVerify
	}
	return nil
}

// writeVerifySummary follows the problem table with each distinct piece of
// advice and one summary line.
func writeVerifySummary(w io.Writer, rep *checkpoint.VerifyReport) error {
	var seen []string
	for _, p := range rep.Problems {
		if !slices.Contains(seen, p.Advice) {
			seen = append(seen, p.Advice)
			if _, err := fmt.Fprintf(w, "advice: %s\n", p.Advice); err != nil {
				return err
			}
		}
	}
	t := rep.Totals
	mode := "structure only"
	switch {
	case rep.Sample != "":
		mode = fmt.Sprintf("deep, sample %s: %d read in full, %s", rep.Sample, t.DeepSegments, units.Bytes(t.DeepBytes))
	case rep.Deep:
		mode = fmt.Sprintf("deep: %d read in full, %s", t.DeepSegments, units.Bytes(t.DeepBytes))
	}
	verdict := "ok"
	switch {
	case !rep.OK():
		verdict = verifyPlural(len(rep.Problems), "problem")
	case rep.Empty:
		verdict = "nothing to verify: the store holds no checkpoint"
	}
	_, err := fmt.Fprintf(w, "verified %s (%s), %s of %s (%s): %s\n",
		verifyPlural(t.Checkpoints, "checkpoint"), verifyIDList(rep.Checkpoints), verifyPlural(t.Segments, "segment"), units.Bytes(t.SegmentBytes), mode, verdict)
	return err
}

func verifyIDList(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// verifyPlural renders "1 segment", "2 segments".
func verifyPlural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
