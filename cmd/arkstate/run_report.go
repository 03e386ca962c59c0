package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/arkstate/arkstate/pkg/pipeline"
	"github.com/arkstate/arkstate/pkg/pipeline/config"
)

// runReport is what `arkstate run` tells the person who started it: a line
// per stream once it has restored (store, checkpoint or fresh start,
// output), a live progress line while it runs, and a summary at exit. On a
// terminal all three are printed; otherwise only the summary, as a log
// record, so that log collectors get one structured line.
type runReport struct {
	w        io.Writer // stderr
	log      *slog.Logger
	terminal bool
	start    time.Time
	streams  []*streamReport

	mu   sync.Mutex // orders writes to w between the bar and log lines
	bar  *progressbar.ProgressBar
	stop chan struct{}
	done chan struct{}
}

type streamReport struct {
	id, store, output string
	stats             *pipeline.Stats // set once the runner exists
	report            *runReport
	started           atomic.Bool
}

func newRunReport(w io.Writer, terminal bool, level slog.Level, jsonLogs bool) *runReport {
	r := &runReport{w: w, terminal: terminal, start: time.Now()}
	hopts := &slog.HandlerOptions{Level: level}
	if jsonLogs {
		r.log = slog.New(slog.NewJSONHandler(r.logWriter(), hopts))
	} else {
		r.log = slog.New(slog.NewTextHandler(r.logWriter(), hopts))
	}
	return r
}

// addStream registers a stream. Set its stats once the runner exists, and
// make onStart the runner's OnStart.
func (r *runReport) addStream(s config.StreamConfig, st config.EnhancedStateConfig, jobID string) *streamReport {
	sr := &streamReport{id: s.ID, store: describeStore(st, jobID), output: describeOutput(s.Output, st), report: r}
	r.streams = append(r.streams, sr)
	return sr
}

// onStart prints the stream's start line.
func (sr *streamReport) onStart(restored uint64) {
	defer sr.started.Store(true)
	if !sr.report.terminal {
		return
	}
	from := "fresh start"
	if restored != 0 {
		from = fmt.Sprintf("restored checkpoint %d", restored)
	}
	sr.report.printLine(fmt.Sprintf("arkstate: stream %s: store %s (%s); output %s", sr.id, sr.store, from, sr.output))
}

// logWriter returns the writer logs go to: on a terminal it clears the
// progress line before each log line, so the two do not overwrite each
// other.
func (r *runReport) logWriter() io.Writer {
	if !r.terminal {
		return r.w
	}
	return writerFunc(func(p []byte) (int, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.bar != nil {
			_ = r.bar.Clear()
		}
		return r.w.Write(p)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (r *runReport) printLine(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		_ = r.bar.Clear()
	}
	fmt.Fprintln(r.w, s)
}

// startProgress shows the live line on a terminal until finish.
func (r *runReport) startProgress() {
	if !r.terminal || len(r.streams) == 0 {
		return
	}
	r.bar = progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(r.w),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetItsString("rec"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionClearOnFinish(),
	)
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			// The live line follows the start lines: a standby waiting
			// for its lease shows nothing moving.
			if r.allStarted() {
				r.mu.Lock()
				in, desc := r.progress()
				r.bar.Describe(desc)
				_ = r.bar.Set64(in)
				r.mu.Unlock()
			}
			select {
			case <-t.C:
			case <-r.stop:
				return
			}
		}
	}()
}

func (r *runReport) allStarted() bool {
	for _, s := range r.streams {
		if !s.started.Load() {
			return false
		}
	}
	return true
}

// progress returns the records read by all streams and the rest of the
// live line: records written, checkpoints, and the age of the last one.
func (r *runReport) progress() (int64, string) {
	var in, out, cps int64
	var last int64
	for _, s := range r.streams {
		in += s.stats.RecordsIn.Load()
		out += s.stats.RecordsOut.Load()
		cps += s.stats.CheckpointsCompleted.Load()
		last = max(last, s.stats.LastCheckpointUnix.Load())
	}
	desc := fmt.Sprintf("in %d · out %d · checkpoints %d", in, out, cps)
	if last > 0 {
		desc += fmt.Sprintf(" · last %s ago", time.Since(time.Unix(0, last)).Round(100*time.Millisecond))
	}
	return in, desc
}

// finish stops the live line and reports the summary.
func (r *runReport) finish(err error) {
	if r.stop != nil {
		close(r.stop)
		<-r.done
		r.mu.Lock()
		_ = r.bar.Finish() // clears the line
		r.bar = nil
		r.mu.Unlock()
	}
	wall := time.Since(r.start).Round(time.Millisecond)
	for _, s := range r.streams {
		in, out := s.stats.RecordsIn.Load(), s.stats.RecordsOut.Load()
		cps, failed := s.stats.CheckpointsCompleted.Load(), s.stats.CheckpointsFailed.Load()
		lastID := s.stats.LastCheckpointID.Load()
		if !r.terminal {
			r.log.Info("run finished", "stream", s.id, "records_in", in, "records_out", out,
				"checkpoints", cps, "checkpoints_failed", failed, "last_checkpoint", lastID,
				"store", s.store, "output", s.output, "wall_time", wall, "ok", err == nil)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "arkstate: stream %s: %d records in, %d out; %d checkpoints", s.id, in, out, cps)
		if failed > 0 {
			fmt.Fprintf(&b, " (%d failed)", failed)
		}
		if lastID > 0 {
			fmt.Fprintf(&b, ", last %d", lastID)
		}
		fmt.Fprintf(&b, "; output %s; %s", s.output, wall)
		r.printLine(b.String())
	}
}

// describeStore names the store as the CLI's commands take it.
func describeStore(st config.EnhancedStateConfig, jobID string) string {
	if !st.Enabled {
		return "none (state disabled)"
	}
	addr, _, err := pipeline.StoreAddress(st, jobID)
	if err != nil {
		return string(st.BackendType)
	}
	if st.BackendType == config.StateBackendMemory {
		return addr + " (in memory: lost at exit)"
	}
	return addr
}

// describeOutput says where committed output goes, and with which
// guarantee.
func describeOutput(o config.OutputConfig, st config.EnhancedStateConfig) string {
	exactly := st.Enabled && st.ExactlyOnce
	switch o.Type {
	case config.OutputStdout:
		return "stdout (at-least-once)"
	case config.OutputFile:
		dir := o.File.Path
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		if exactly {
			return dir + string(filepath.Separator) + " (committed part files, exactly-once)"
		}
		return dir + string(filepath.Separator)
	case config.OutputS3:
		u := url.URL{Scheme: "s3", Host: o.S3.Bucket, Path: "/" + strings.Trim(o.S3.Prefix, "/")}
		return u.String() + " (committed objects)"
	}
	return string(o.Type)
}
