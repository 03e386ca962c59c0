package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/pkg/monitor"
	"github.com/arkstate/arkstate/pkg/pipeline"
	"github.com/arkstate/arkstate/pkg/pipeline/config"
	"github.com/arkstate/arkstate/pkg/store"
)

type runOptions struct {
	configFile  string
	logLevel    string
	logFormat   string
	metricsAddr string
	waitLease   bool
	quiet       bool
}

func newRunCmd() *cobra.Command {
	var opts runOptions
	cmd := &cobra.Command{
		Use:   "run -c PIPELINE.yaml",
		Short: "Run the pipelines of a configuration with checkpoints and exactly-once output",
		Long: `Run every stream of the configuration. With state enabled it restores
the latest checkpoint, resumes each input from its checkpointed position, and
checkpoints every checkpoint_interval_ms. A bounded input that ends drives a
final checkpoint and commit, then run exits 0. The ARKFLOW_STATE_* variables
override the file's state block.

Logs go to stderr as text, or with --log-format json as one JSON object per
line (log/slog's JSON handler: time, level, msg and the record's fields).

SIGINT and SIGTERM stop the run: streams stop reading, what the last
completed checkpoint covers stays committed, and run exits 0; a restart
resumes from that checkpoint.

Exit status: 0 when every stream finished its bounded input or was stopped
by SIGINT or SIGTERM; 1 when a stream read damaged data (the error names the
file); 2 for a bad flag, configuration, address or credentials, found before
anything is written; 3 when a store or output cannot be reached, or another
process holds a stream's writer lease (without --wait-lease).`,
		Example: `  arkstate run -c pipeline.yaml
  arkstate run -c pipeline.yaml --metrics-addr 127.0.0.1:9090 --log-format json
  ARKFLOW_STATE_BACKEND_TYPE=s3 ARKFLOW_STATE_S3_BUCKET=jobs arkstate run -c pipeline.yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), cmd, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.configFile, "config", "c", "", "pipeline configuration (YAML)")
	cmd.Flags().StringVar(&opts.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&opts.logFormat, "log-format", "text", "log format: text or json (one JSON object per line)")
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().BoolVar(&opts.waitLease, "wait-lease", false, "when another process holds the store's writer lease, wait for it (a standby) instead of exiting 3")
	cmd.Flags().StringVar(&opts.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics, /healthz and /status (for arkstate top) on this address, e.g. 127.0.0.1:9090")
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "print no start lines, progress or summary (logs still follow --log-level)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runRun(ctx context.Context, cmd *cobra.Command, opts runOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.logLevel)); err != nil {
		return usageErrorf("--log-level %q: %v", opts.logLevel, err)
	}
	// On a terminal: start lines, a live progress line and a summary;
	// elsewhere the summary is one log record; --quiet drops all three.
	if opts.logFormat != "text" && opts.logFormat != "json" {
		return usageErrorf("--log-format %q: want text or json", opts.logFormat)
	}
	report := newRunReport(cmd.ErrOrStderr(), !opts.quiet && isTerminal(cmd.ErrOrStderr()), level, opts.logFormat == "json")
	log := report.log
	cfg, err := loadRunConfig(opts.configFile)
	if err != nil {
		return err
	}
	// The monitor's address is taken first: one that cannot be listened on
	// is a usage error, and must fail before the store is touched.
	var mon *monitor.Monitor
	var monLn net.Listener
	if opts.metricsAddr != "" {
		ln, err := net.Listen("tcp", opts.metricsAddr)
		if err != nil {
			return usageErrorf("--metrics-addr %s: %v", opts.metricsAddr, err)
		}
		defer ln.Close() // in case a stream fails to build; Serve owns it after
		mon, monLn = monitor.New(currentBuildInfo().Version), ln
	}
	jobs, err := buildRunJobs(ctx, cmd, cfg, opts, report, mon)
	defer func() {
		for _, j := range jobs {
			j.mgr.Close()
		}
	}()
	if err != nil {
		return err
	}
	if mon != nil {
		for i, j := range jobs {
			mon.Add(cfg.Streams[i].ID, j.runner.Status)
		}
		defer serveMonitor(monLn, mon, log)()
	}
	err = runJobs(ctx, cfg, jobs, report)
	if err != nil && errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
		report.finish(nil)
		if cfg.State.Enabled {
			log.Info("interrupted; state is as of the last checkpoint")
		} else {
			log.Info("interrupted; state is not kept (state disabled): the output written so far is committed, and a restart starts over")
		}
		return nil
	}
	report.finish(err)
	return err
}

// loadRunConfig reads the configuration, applies the ARKFLOW_STATE_*
// variables and validates the result; every failure is a usage error.
func loadRunConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &usageError{err}
	}
	if err := config.ApplyEnv(cfg, os.Environ()); err != nil {
		return nil, &usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return nil, &usageError{err}
	}
	return cfg, nil
}

// runJob is one stream: its store and its runner.
type runJob struct {
	mgr    *pipeline.Manager
	runner *pipeline.Runner
}

// buildRunJobs builds every stream before any starts: a bad input, output
// or store fails here, before any stream writes. The caller closes the
// managers of the jobs returned, also with an error.
func buildRunJobs(ctx context.Context, cmd *cobra.Command, cfg *config.Config, opts runOptions, report *runReport, mon *monitor.Monitor) ([]runJob, error) {
	var jobs []runJob
	owner := leaseOwner()
	log := report.log
	for _, s := range cfg.Streams {
		spec, err := pipeline.BuildSpec(ctx, cfg, s, cmd.InOrStdin(), cmd.OutOrStdout())
		if errors.Is(err, store.ErrUnavailable) {
			return jobs, err // an S3 output that cannot be reached: exit 3
		}
		if err != nil {
			return jobs, &usageError{err}
		}
		if cfg.State.Enabled && cfg.State.ExactlyOnce && s.Output.Type == config.OutputStdout {
			log.Warn("stdout output is at-least-once: it writes records as they come, so a restart writes again what followed the last checkpoint; use file or s3 output for exactly-once", "stream", s.ID)
		}
		st, jobID := pipeline.StreamState(cfg, s)
		mgr, err := pipeline.NewManager(ctx, st, jobID, log.With("stream", s.ID))
		if err != nil {
			return jobs, err
		}
		ropts := mgr.Options(owner)
		var sr *streamReport
		if !opts.quiet {
			sr = report.addStream(s, st, jobID)
			ropts.OnStart = sr.onStart
		}
		ropts.LeaseAbandoned = leaseAbandoned
		ropts.WaitForLease = opts.waitLease
		if mon != nil {
			ropts.OnCheckpoint = func(r pipeline.CheckpointResult) { mon.ObserveCheckpoint(s.ID, r.Duration, r.Err) }
		}
		r, err := pipeline.NewRunner(spec, ropts)
		if err != nil {
			mgr.Close()
			return jobs, &usageError{err}
		}
		if sr != nil {
			sr.stats = r.Stats()
		}
		jobs = append(jobs, runJob{mgr, r})
	}
	return jobs, nil
}

// runJobs runs the streams side by side; the first that fails stops the
// others.
func runJobs(ctx context.Context, cfg *config.Config, jobs []runJob, report *runReport) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	report.startProgress()
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Go(func() {
			if err := j.runner.Run(ctx); err != nil {
				errs[i] = fmt.Errorf("stream %s: %w", cfg.Streams[i].ID, err)
				cancel(err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// serveMonitor serves mon on ln until stop is called.
func serveMonitor(ln net.Listener, mon *monitor.Monitor, log *slog.Logger) (stop func()) {
	srv := &http.Server{Handler: mon.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("monitor server stopped", "err", err)
		}
	}()
	log.Info("serving /metrics, /healthz and /status", "addr", "http://"+ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // past the timeout, scrapes in flight are cut off
		<-done
	}
}
