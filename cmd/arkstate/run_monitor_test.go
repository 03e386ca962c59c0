package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestRun_MetricsAddr runs the real binary with --metrics-addr, scrapes the
// live process until checkpoints show in every view, and stops it with
// SIGTERM.
func TestRun_MetricsAddr(t *testing.T) {
	bin := arkstateBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(monitorPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-c", cfg, "--metrics-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once the process is reaped; waitErr is then set.
	exited := make(chan struct{})
	var waitErr error
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	// The address is in the log line that says the server is up.
	addrs := make(chan string, 1)
	var logged strings.Builder
	go func() {
		addrRE := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	var base string
	select {
	case base = <-addrs:
	case <-exited:
		t.Fatalf("run exited before serving: %v\n%s", waitErr, logged.String())
	case <-time.After(time.Minute):
		t.Fatal("no monitor address logged within a minute")
	}

	var report monitor.Report
	deadline := time.Now().Add(time.Minute)
	for {
		body := httpGet(t, base+"/status", http.StatusOK)
		report = monitor.Report{}
		if err := json.Unmarshal([]byte(body), &report); err != nil {
			t.Fatalf("/status: %v\n%s", err, body)
		}
		if len(report.Streams) == 1 && report.Streams[0].CheckpointsCompleted >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 checkpoints within a minute: %+v", report)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("run after SIGTERM: %v\n%s", waitErr, logged.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not stop within a minute of SIGTERM")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the monitor still answers after run exited")
	}
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
