package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
)

// checkpointDiffOptions are the flags and arguments of `checkpoint diff`.
type checkpointDiffOptions struct {
	store    storeFlags
	out      outputFlag
	keys     bool
	exitCode bool
	a, b     string
	openRepo func(context.Context) (*checkpoint.Repo, error)
}

func (o *checkpointDiffOptions) addFlags(cmd *cobra.Command) {
	o.store.addFlags(cmd)
	o.out.addFlag(cmd)
	cmd.Flags().BoolVar(&o.keys, "keys", false, "list every added, removed or changed key (JSON lines with --output json)")
	cmd.Flags().BoolVar(&o.exitCode, "exit-code", false, "exit with status 1 when the checkpoints differ")
}

func newCheckpointDiffCmd() *cobra.Command {
	var opts checkpointDiffOptions
	cmd := &cobra.Command{
		Use:   "diff STORE A B",
		Short: "Show what changed in the state between two checkpoints",
		Long: `Compare the live state of checkpoints A and B (ids, chk-<id> or latest) and
count, per operator and state, the keys added, removed and changed and the value
bytes added and removed. Key-group ranges whose segment layers are identical in
both checkpoints are skipped without reading them; the rest is streamed, so the
diff of two large checkpoints needs little memory.

--keys lists each differing key as it is found: the operator, state, key group,
key, kind of change and the value sizes. Keys that are not printable text are
shown as 0x<hex> in the table; JSON has key (text) or key_b64 (base64) and
stored_key_b64 with the exact stored bytes, and map-state keys are split into
the user key and the map key.

Exit status: 0 when the diff ran (also with differences unless --exit-code),
1 with --exit-code when the checkpoints differ or when a checkpoint is damaged,
2 for bad arguments, 3 when the store cannot be read.`,
		Example: `  arkstate checkpoint diff /var/lib/arkstate 41 latest
  arkstate checkpoint diff s3://bucket/job 40 41 --keys --output json | jq 'select(.type=="key")'
  arkstate checkpoint diff /var/lib/arkstate 41 42 --exit-code`,
		Args: usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.a, opts.b = args[1], args[2]
			opts.openRepo = func(ctx context.Context) (*checkpoint.Repo, error) {
				return opts.store.openRepo(ctx, cmd, args[0])
			}
			return runCheckpointDiff(cmd.Context(), &opts, cmd.OutOrStdout())
		},
	}
	opts.addFlags(cmd)
	cmd.ValidArgsFunction = opts.store.completeRefs(2)
	return cmd
}

// diffKeyLine is one --keys record of JSON and YAML output.
type diffKeyLine struct {
	Type     string `json:"type"` // "key"
	Operator string `json:"operator"`
	State    string `json:"state"`
	KeyGroup uint32 `json:"key_group"`
	// Key and MapKey (map state) are text when they are valid UTF-8,
	// else KeyB64 and MapKeyB64 hold them in base64, as in state dump.
	Key          string `json:"key,omitempty"`
	KeyB64       string `json:"key_b64,omitempty"`
	MapKey       string `json:"map_key,omitempty"`
	MapKeyB64    string `json:"map_key_b64,omitempty"`
	StoredKeyB64 string `json:"stored_key_b64"` // the exact stored key (for map state the composite key)
	Change       string `json:"change"`
	OldSize      int    `json:"old_size_bytes"`
	NewSize      int    `json:"new_size_bytes"`
}

// diffSummaryLine is the last record of --keys output in JSON and YAML.
type diffSummaryLine struct {
	SchemaVersion           int    `json:"schema_version"`
	Type                    string `json:"type"` // "summary"
	*checkpoint.DiffSummary `yaml:",inline"`
}

func runCheckpointDiff(ctx context.Context, opts *checkpointDiffOptions, out io.Writer) error {
	if err := opts.out.validate(); err != nil {
		return err
	}
	for _, ref := range []string{opts.a, opts.b} {
		if err := checkpointRefArg(ref); err != nil {
			return err
		}
	}
	repo, err := opts.openRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Store().Close()
	a, err := repo.Resolve(ctx, opts.a)
	if err != nil {
		return err
	}
	b, err := repo.Resolve(ctx, opts.b)
	if err != nil {
		return err
	}

	var emit func(checkpoint.KeyChange) error
	if opts.keys {
		emit = diffKeyWriter(opts.out.format, out)
	}
	sum, err := checkpoint.Diff(ctx, repo, a, b, checkpoint.DiffOptions{Keys: opts.keys}, emit)
	if err != nil {
		return err
	}
	switch {
	case opts.keys && opts.out.format == "json":
		err = json.NewEncoder(out).Encode(diffSummaryLine{SchemaVersion: schemaVersion, Type: "summary", DiffSummary: sum})
	case opts.keys && opts.out.format == "yaml":
		err = writeYAMLDocument(out, diffSummaryLine{SchemaVersion: schemaVersion, Type: "summary", DiffSummary: sum})
	case opts.out.format == "table":
		err = writeDiffTable(out, sum, opts)
	default:
		err = opts.out.render(out, sum, nil)
	}
	if err != nil {
		return err
	}
	if opts.exitCode && sum.Differences() > 0 {
		return &findingsError{fmt.Sprintf("checkpoints %d and %d differ in %d keys", a, b, sum.Differences())}
	}
	return nil
}

// diffKeyWriter returns the emit function that streams --keys output: one
// compact JSON object per line, one YAML document per key, or one table
// line per key.
func diffKeyWriter(outFormat string, out io.Writer) func(checkpoint.KeyChange) error {
	enc := json.NewEncoder(out)
	headed := false
	return func(c checkpoint.KeyChange) error {
		line := diffKeyLine{Type: "key", Operator: c.Operator, State: c.State, KeyGroup: c.KeyGroup,
			StoredKeyB64: base64.StdEncoding.EncodeToString(c.Key), Change: string(c.Change), OldSize: c.OldSize, NewSize: c.NewSize}
		userKey, mapKey, isMap := c.Key, []byte(nil), false
		if c.Kind == format.StateKindMap {
			if uk, mk, ok := state.SplitMapKey(c.Key); ok {
				userKey, mapKey, isMap = uk, mk, true
			}
		}
		line.Key, line.KeyB64 = textOrB64(userKey)
		if isMap {
			line.MapKey, line.MapKeyB64 = textOrB64(mapKey)
		}
		switch outFormat {
		case "json":
			return enc.Encode(line)
		case "yaml":
			return writeYAMLDocument(out, line)
		}
		if !headed {
			headed = true
			if _, err := fmt.Fprintf(out, "%-8s %-24s %5s  %-32s %s\n", "CHANGE", "OPERATOR/STATE", "KG", "KEY", "SIZE"); err != nil {
				return err
			}
		}
		key := diffDisplayKey(userKey)
		if isMap {
			key += "[" + diffDisplayKey(mapKey) + "]"
		}
		_, err := fmt.Fprintf(out, "%-8s %-24s %5d  %-32s %d -> %d\n", line.Change, c.Operator+"/"+c.State, c.KeyGroup, key, c.OldSize, c.NewSize)
		return err
	}
}

// diffDisplayKey shows a key as text when it is printable UTF-8, else as 0x<hex>.
func diffDisplayKey(k []byte) string {
	if !utf8.Valid(k) {
		return "0x" + hex.EncodeToString(k)
	}
	for _, r := range string(k) {
		if !unicode.IsPrint(r) {
			return "0x" + hex.EncodeToString(k)
		}
	}
	return string(k)
}

func writeDiffTable(out io.Writer, sum *checkpoint.DiffSummary, opts *checkpointDiffOptions) error {
	if opts.keys && sum.Differences() > 0 {
		if _, err := fmt.Fprintln(out); err != nil {
			return err
		}
	}
	if sum.Differences() == 0 {
		_, err := fmt.Fprintf(out, "checkpoints %d and %d hold the same state (%d key-group ranges compared, %d skipped as identical)\n",
			sum.A, sum.B, sum.RangesCompared, sum.RangesSkipped)
		return err
	}
	if _, err := fmt.Fprintf(out, "checkpoint %d -> %d: %d keys differ (%d added, %d removed, %d changed), values +%d -%d bytes\n",
		sum.A, sum.B, sum.Differences(), sum.Added, sum.Removed, sum.Changed, sum.BytesAdded, sum.BytesRemoved); err != nil {
		return err
	}
	return opts.out.render(out, sum, func(t *tableWriter) {
		t.setHeader("operator", "state", "added", "removed", "changed", "bytes added", "bytes removed")
		for _, o := range sum.Operators {
			for _, s := range o.States {
				t.row(o.Operator, s.State, s.Added, s.Removed, s.Changed, s.BytesAdded, s.BytesRemoved)
			}
		}
	})
}
