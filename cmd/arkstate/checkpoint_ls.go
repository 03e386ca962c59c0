package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/units"
	"github.com/arkstate/arkstate/pkg/checkpoint"
)

// checkpointLsOptions are the flags of `checkpoint ls`.
type checkpointLsOptions struct {
	store storeFlags
	out   outputFlag
	// openRepo opens the store named on the command line; RunE sets it.
	openRepo func(context.Context) (*checkpoint.Repo, error)
}

func (o *checkpointLsOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
}

func newCheckpointLsCmd() *cobra.Command {
	var opts checkpointLsOptions
	cmd := &cobra.Command{
		Use:   "ls STORE",
		Short: "List the checkpoints in a store",
		Long: `List every complete checkpoint (every checkpoint whose MANIFEST exists) with
its kind, parent, operators, live-entry count and sizes, read from the manifests
alone: no segment is read, so it is quick on S3 too.

KEYS is exact for checkpoints made only of base layers and an upper bound
(shown as ≤N) for incremental ones. STORED counts each distinct segment once;
EXCLUSIVE is the part no other checkpoint references, what deleting this
checkpoint alone would free. A manifest that cannot be read is listed as
damaged with the reason; ls still exits 0 (use verify to fail on damage).

Exit status: 0 when listed, damaged checkpoints included; 2 for bad
arguments or a store that is not an arkstate store; 3 when the store cannot
be read.`,
		Example: `  arkstate checkpoint ls /var/lib/arkstate
  arkstate checkpoint ls s3://bucket/job --output json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			return runCheckpointLs(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// checkpointLsResult is the JSON and YAML document of `checkpoint ls`.
type checkpointLsResult struct {
	Checkpoints []checkpoint.CheckpointSummary `json:"checkpoints"`
}

func runCheckpointLs(ctx context.Context, opts *checkpointLsOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	repo, err := opts.openRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Store().Close()
	list, err := checkpoint.List(ctx, repo)
	if err != nil {
		return err
	}
	err = opts.out.render(out, checkpointLsResult{Checkpoints: list}, func(t *tableWriter) {
		t.setHeader("id", "created", "kind", "parent", "operators", "keys", "segments", "logical", "stored", "exclusive", "status")
		for _, s := range list {
			if s.Status != checkpoint.StatusOK && s.Kind == "" {
				t.row(s.ID, "-", "-", "-", "-", "-", "-", "-", "-", "-", s.Status)
				continue
			}
			keys := strconv.FormatUint(s.Keys, 10)
			if !s.KeysExact {
				keys = "≤" + keys
			}
			t.row(s.ID, s.CreatedAt.UTC().Format(time.RFC3339), s.Kind, lsParentCell(s.Parent), strings.Join(s.Operators, ","),
				keys, s.Segments, units.Bytes(s.LogicalBytes), units.Bytes(s.StoredBytes), units.Bytes(s.ExclusiveBytes), s.Status)
		}
	})
	if err != nil || opts.out.format != "table" {
		return err
	}
	if len(list) == 0 {
		_, err = fmt.Fprintf(out, "no checkpoints in %s\n", repo.Store().Location())
		return err
	}
	for _, s := range list {
		if s.Error != "" {
			if _, err := fmt.Fprintf(out, "checkpoint %d: %s\n", s.ID, s.Error); err != nil {
				return err
			}
		}
	}
	return nil
}

func lsParentCell(p uint64) string {
	if p == 0 {
		return "-"
	}
	return strconv.FormatUint(p, 10)
}
