package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/monitor"
	"github.com/arkstate/arkstate/pkg/tui"
)

type topOptions struct {
	addr     string
	store    string
	storeOpt storeFlags
	interval time.Duration
	once     bool
	out      outputFlag
}

func newTopCmd() *cobra.Command {
	var opts topOptions
	cmd := &cobra.Command{
		Use:   "top [--addr HOST:PORT] [--store STORE]",
		Short: "Watch a running job: throughput, checkpoints and health, live",
		Long: `Poll the /status of a job started with 'arkstate run --metrics-addr' and
show, for each stream, whether it runs and is healthy, records in and out per
second, its checkpoints (completed, failed, the last one's id, age, duration
and size) and the checkpoint it resumed from. With --store it also lists the
newest checkpoints of that store. Keys: q quits, r polls at once.

--once prints a single frame to stdout, with the colours the output can show
(none when it is not a terminal, when NO_COLOR is set or TERM=dumb), and
exits. --once --output json (or yaml) prints the job's /status document
instead, in this binary's names, with the store's checkpoints as
"checkpoints" when --store is given.

Exit status: 0 when quit with q, or when --once printed; 2 for a bad --addr,
--interval or store, or --output json without --once; 3 when --once cannot
reach the job, or the store cannot be read.`,
		Example: `  arkstate run -c pipeline.yaml --metrics-addr 127.0.0.1:9090 &
  arkstate top --addr 127.0.0.1:9090 --store ./state`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTop(cmd.Context(), cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.addr, "addr", "127.0.0.1:9090", "the job's --metrics-addr (HOST:PORT or an http:// URL)")
	cmd.Flags().StringVar(&opts.store, "store", "", "also list the checkpoints of this store")
	cmd.Flags().DurationVar(&opts.interval, "interval", time.Second, "time between polls")
	cmd.Flags().BoolVar(&opts.once, "once", false, "print one frame and exit")
	opts.storeOpt.addFlags(cmd)
	opts.out.addFlag(cmd)
	_ = cmd.Flags().MarkHidden("no-headers") // a frame has no table headers
	return cmd
}

func runTop(ctx context.Context, cmd *cobra.Command, opts topOptions) error {
	if opts.interval <= 0 {
		return usageErrorf("--interval %s: must be positive", opts.interval)
	}
	if err := opts.out.validate(); err != nil {
		return err
	}
	if opts.out.format != "table" && !opts.once {
		return usageErrorf("--output %s needs --once: the live view is for a terminal", opts.out.format)
	}
	addr := opts.addr
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		return usageErrorf("--addr %s: want HOST:PORT or an http:// URL", opts.addr)
	}
	topts := tui.Options{Addr: addr, Interval: opts.interval}
	if opts.store != "" {
		repo, err := opts.storeOpt.openRepo(ctx, cmd, opts.store)
		if err != nil {
			return err
		}
		topts.Checkpoints = func(ctx context.Context) ([]checkpoint.CheckpointSummary, error) {
			return checkpoint.List(ctx, repo)
		}
	}
	if opts.once {
		return topOnce(ctx, cmd, topts, &opts.out)
	}
	p := tea.NewProgram(tui.New(topts), tea.WithContext(ctx),
		tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
	_, err := p.Run()
	return err
}

// topDocument is `top --once --output json`: the /status document, read
// into this binary's types (so in its names and schema version), and the
// store's checkpoints as `checkpoint ls` lists them.
type topDocument struct {
	monitor.Report
	Checkpoints []checkpoint.CheckpointSummary `json:"checkpoints,omitzero"` // [] with --store, absent without
}

// topOnce polls each source once and prints a frame, or with --output
// json or yaml the document.
func topOnce(ctx context.Context, cmd *cobra.Command, opts tui.Options, out *outputFlag) error {
	r, err := tui.FetchStatus(ctx, &http.Client{Timeout: 10 * time.Second}, opts.Addr)
	if err != nil {
		return fmt.Errorf("cannot reach the job: %w", err) // exit 3
	}
	if out.format != "table" {
		r.SchemaVersion = 0 // render writes this binary's, first
		doc := topDocument{Report: r}
		if opts.Checkpoints != nil {
			if doc.Checkpoints, err = opts.Checkpoints(ctx); err != nil {
				return err
			}
			if doc.Checkpoints == nil {
				doc.Checkpoints = []checkpoint.CheckpointSummary{}
			}
		}
		return out.render(cmd.OutOrStdout(), doc, nil)
	}
	var st tui.State
	st.Observe(r, nil)
	if opts.Checkpoints != nil {
		st.Checkpoints, st.CheckpointsErr = opts.Checkpoints(ctx)
	}
	// The frame's colours go down to what the output can show: none on a
	// pipe, with NO_COLOR or TERM=dumb, fewer on a 256-colour terminal.
	w := colorprofile.NewWriter(cmd.OutOrStdout(), os.Environ())
	_, err = w.WriteString(tui.Render(&st, opts.Addr, 0))
	return err
}
