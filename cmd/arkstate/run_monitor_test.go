package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/arkstate/arkstate/pkg/monitor"
)

// monitorPipeline never ends: a generated word stream counted with
// exactly-once output and checkpoints every 50 ms.
const monitorPipeline = `streams:
  - id: words
    input: {type: generate, seed: 7, rate: 2000, words: 50}
    pipeline:
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9]+", as: word}
        - {type: count, key: word}
    output: {type: file, path: out/}
state:
  enabled: true
  backend_type: local
  path: ./state
  checkpoint_interval_ms: 50
  exactly_once: true
`

// monitoredRun is a real `arkstate run --metrics-addr` process.
type monitoredRun struct {
	dir  string // holds pipeline.yaml, state/ and out/
	base string // the monitor's URL
	cmd  *exec.Cmd
	// exited is closed once the process is reaped; waitErr is then set.
	exited  chan struct{}
	waitErr error
	logged  strings.Builder // stderr, complete once exited is closed
}

// startMonitoredRun starts monitorPipeline with the monitor on a free port
// and returns once the monitor's address is logged. The process is killed
// at the end of the test if it still runs.
func startMonitoredRun(t *testing.T) *monitoredRun {
	t.Helper()
	return startMonitoredRunIn(t, t.TempDir())
}

// startMonitoredRunIn is startMonitoredRun in dir, with extra run flags;
// several runs may share a dir, and so a store.
func startMonitoredRunIn(t *testing.T, dir string, flags ...string) *monitoredRun {
	t.Helper()
	bin := arkstateBinary(t)
	r := &monitoredRun{dir: dir, exited: make(chan struct{})}
	cfg := filepath.Join(r.dir, "pipeline.yaml")
	if _, err := os.Stat(cfg); errors.Is(err, fs.ErrNotExist) { // a test may write its own
		if err := os.WriteFile(cfg, []byte(monitorPipeline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.cmd = exec.Command(bin, append([]string{"run", "-c", cfg, "--metrics-addr", "127.0.0.1:0"}, flags...)...)
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
	})
	// The address is in the log line that says the server is up.
	addrs := make(chan string, 1)
	go func() {
		addrRE := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.logged.WriteString(sc.Text() + "\n")
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()
	select {
	case r.base = <-addrs:
	case <-r.exited:
		t.Fatalf("run exited before serving: %v\n%s", r.waitErr, r.logged.String())
	case <-time.After(time.Minute):
		t.Fatal("no monitor address logged within a minute")
	}
	return r
}

// waitCheckpoints polls /status until the stream has completed n checkpoints.
func (r *monitoredRun) waitCheckpoints(t *testing.T, n int64) monitor.Report {
	t.Helper()
	return r.waitStatus(t, fmt.Sprintf("%d checkpoints", n), func(s monitor.Status) bool { return s.CheckpointsCompleted >= n })
}

// waitStatus polls /status until the one stream's status passes ok.
func (r *monitoredRun) waitStatus(t *testing.T, what string, ok func(monitor.Status) bool) monitor.Report {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		body := httpGet(t, r.base+"/status", http.StatusOK)
		var report monitor.Report
		if err := json.Unmarshal([]byte(body), &report); err != nil {
			t.Fatalf("/status: %v\n%s", err, body)
		}
		if len(report.Streams) == 1 && ok(report.Streams[0]) {
			// /status follows the CLI's JSON vocabulary.
			docs, err := decodeJSONDocs(body)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range vocabularyProblems(docs[0], "/status") {
				t.Errorf("JSON contract: %s", p)
			}
			if report.SchemaVersion != schemaVersion {
				t.Errorf("/status: schema_version %d, want %d", report.SchemaVersion, schemaVersion)
			}
			return report
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute: %+v", what, report)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (r *monitoredRun) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.exited:
		if r.waitErr != nil {
			t.Fatalf("run after SIGTERM: %v\n%s", r.waitErr, r.logged.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not stop within a minute of SIGTERM")
	}
}

// TestRun_MetricsAddr runs the real binary with --metrics-addr, scrapes the
// live process until checkpoints show in every view, and stops it with
// SIGTERM.
func TestRun_MetricsAddr(t *testing.T) {
	run := startMonitoredRun(t)
	base := run.base
	report := run.waitCheckpoints(t, 3)
	s := report.Streams[0]
	if s.Stream != "words" || !s.Running || s.RecordsIn == 0 || s.CheckpointInterval != 50*time.Millisecond ||
		s.LastCheckpointAt.IsZero() || s.CheckpointBytes == 0 || !report.Health.Healthy || report.Version == "" {
		t.Fatalf("status of a running job: %+v", report)
	}
	httpGet(t, base+"/healthz", http.StatusOK)
	metrics := httpGet(t, base+"/metrics", http.StatusOK)
	for _, want := range []string{
		`arkstate_stream_running{stream="words"} 1`,
		`arkstate_stream_healthy{stream="words"} 1`,
		`arkstate_checkpoints_total{result="completed",stream="words"}`,
		`arkstate_records_in_total{stream="words"}`,
		`arkstate_checkpoint_duration_seconds_count{result="completed",stream="words"}`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics)
		}
	}

	run.stop(t)
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the monitor still answers after run exited")
	}
}

// TestRun_MetricsLint scrapes a live job before its first checkpoint and
// lints /metrics with `promtool check metrics` (promtool from
// $ARKSTATE_PROMTOOL or PATH; .ci/run installs Debian's and sets
// ARKSTATE_PROMTOOL so that CI cannot pass without it). Where promtool is
// not installed it lints with promlint, the client_golang package that
// promtool's check runs. arkstate_build_info must be there before any
// checkpoint completes.
func TestRun_MetricsLint(t *testing.T) {
	dir := t.TempDir()
	slow := strings.Replace(monitorPipeline, "checkpoint_interval_ms: 50", "checkpoint_interval_ms: 3600000", 1)
	if err := os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	run := startMonitoredRunIn(t, dir)
	report := run.waitStatus(t, "records", func(s monitor.Status) bool { return s.RecordsIn > 0 })
	metrics := httpGet(t, run.base+"/metrics", http.StatusOK)
	if report.Streams[0].CheckpointsCompleted != 0 || strings.Contains(metrics, "arkstate_checkpoint_last_success_timestamp_seconds{") {
		t.Fatalf("a checkpoint completed already: %+v", report.Streams[0])
	}
	for _, want := range []string{`arkstate_build_info{`, `arkstate_stream_start_time_seconds{stream="words"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics before the first checkpoint lacks %s:\n%s", want, metrics)
		}
	}

	promtool := os.Getenv("ARKSTATE_PROMTOOL")
	if promtool == "" {
		promtool, _ = exec.LookPath("promtool")
	}
	if promtool == "" {
		t.Log("promtool is not installed: linting with promlint, the package behind `promtool check metrics`")
		problems, err := promlint.New(strings.NewReader(metrics)).Lint()
		if err != nil || len(problems) > 0 {
			t.Fatalf("promlint: %v %+v", err, problems)
		}
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("%s check metrics: %v\n%s", promtool, err, out)
	}
	t.Logf("%s check metrics: clean", promtool)
	run.stop(t)
}

func httpGet(t *testing.T, url string, wantCode int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %d, want %d\n%s", url, resp.StatusCode, wantCode, body)
	}
	return string(body)
}

// A second run with --wait-lease is a standby: healthy and idle while the
// first holds the store, it takes over from the last checkpoint when the
// first stops.
func TestRun_WaitLease(t *testing.T) {
	active := startMonitoredRun(t)
	active.waitCheckpoints(t, 2)
	standby := startMonitoredRunIn(t, active.dir, "--wait-lease")
	report := standby.waitStatus(t, "a standby", func(s monitor.Status) bool { return s.WaitingForLease })
	if s := report.Streams[0]; s.RecordsIn != 0 || !report.Health.Healthy {
		t.Fatalf("standby: %+v", report)
	}
	httpGet(t, standby.base+"/healthz", http.StatusOK)

	active.stop(t)
	report = standby.waitStatus(t, "a takeover with 2 checkpoints", func(s monitor.Status) bool {
		return !s.WaitingForLease && s.CheckpointsCompleted >= 2 && s.RecordsIn > 0
	})
	if s := report.Streams[0]; s.RestoredFrom == 0 || s.RecordsIn == 0 || !report.Health.Healthy {
		t.Fatalf("after the takeover: %+v", report)
	}
	standby.stop(t)
	if !strings.Contains(standby.logged.String(), "took the writer lease") {
		t.Errorf("the standby's log does not say it took over:\n%s", standby.logged.String())
	}
}
