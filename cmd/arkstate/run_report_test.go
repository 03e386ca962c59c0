package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// reportConfig writes a word count over count generated lines, paced at
// rate lines a second, into a new directory.
func reportConfig(t *testing.T, count, rate int) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	cfg = filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`streams:
  - id: words
    input: {type: generate, count: %d, rate: %d}
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}
    output: {type: file, path: out/}
state:
  enabled: true
  backend_type: local
  path: ./state
  checkpoint_interval_ms: 200
  exactly_once: true
`, count, rate)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// TestRun_ReportNoTerminal runs the real binary with stderr on a pipe: no
// start line and no progress, one structured summary record.
func TestRun_ReportNoTerminal(t *testing.T) {
	dir, cfg := reportConfig(t, 3000, 0)
	var stderr bytes.Buffer
	cmd := exec.Command(arkstateBinary(t), "run", "-c", cfg)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	out := stderr.String()
	if strings.ContainsAny(out, "\r\x1b") || strings.Contains(out, "arkstate: stream") {
		t.Fatalf("stderr without a terminal has terminal output:\n%q", out)
	}
	re := regexp.MustCompile(`level=INFO msg="run finished" stream=words records_in=3000 records_out=(\d+) checkpoints=(\d+) checkpoints_failed=0 last_checkpoint=(\d+) store=(\S+) output="(.*?)" wall_time=\S+ ok=true`)
	m := re.FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("want one summary record, got %d in:\n%s", len(m), out)
	}
	if m[0][2] == "0" || m[0][2] != m[0][3] {
		t.Fatalf("summary says %s checkpoints, the last %s; want at least one, numbered from 1", m[0][2], m[0][3])
	}
	if want := filepath.Join(dir, "state"); m[0][4] != want {
		t.Fatalf("summary names store %s, want %s", m[0][4], want)
	}
	if want := filepath.Join(dir, "out") + "/ (committed part files, exactly-once)"; m[0][5] != want {
		t.Fatalf("summary names output %q, want %q", m[0][5], want)
	}

	// --quiet: nothing but what logs at warn and above.
	dir, cfg = reportConfig(t, 100, 0)
	stderr.Reset()
	cmd = exec.Command(arkstateBinary(t), "run", "-c", cfg, "--quiet")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run --quiet: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "run finished") {
		t.Fatalf("--quiet printed the summary:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err != nil {
		t.Fatalf("--quiet run wrote no output: %v", err)
	}
}

// TestRun_ReportTmux runs the real binary in a terminal: the start line,
// the live line moving, and the summary.
func TestRun_ReportTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is not installed; this test drives arkstate run in a real terminal (apt-get install tmux)")
	}
	dir, cfg := reportConfig(t, 20000, 5000) // about four seconds
	socket := filepath.Join(t.TempDir(), "tmux.sock")
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	done := filepath.Join(dir, "exit-code")
	script := fmt.Sprintf("%s run -c %s; echo $? > %s; sleep 600", arkstateBinary(t), cfg, done)
	if out, err := tm("new-session", "-d", "-s", "run", "-x", "250", "-y", "30", script); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tm("kill-server") })
	screen := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		var pane string
		for time.Now().Before(deadline) {
			pane, _ = tm("capture-pane", "-p", "-J", "-t", "run") // -J joins wrapped lines
			if ok(pane) {
				return pane
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the screen never showed %s:\n%s", what, pane)
		return ""
	}
	start := "arkstate: stream words: store " + filepath.Join(dir, "state") + " (fresh start); output " + filepath.Join(dir, "out") + "/ (committed part files, exactly-once)"
	live := regexp.MustCompile(`\(\d+ rec/s\) \[\d+s\] in (\d+) · out \d+ · checkpoints \d+`)
	first := screen("the start line and the live line", func(p string) bool {
		return strings.Contains(p, start) && live.MatchString(p)
	})
	firstIn := live.FindStringSubmatch(first)[1]
	screen("the live line moving", func(p string) bool {
		m := live.FindStringSubmatch(p)
		return m != nil && m[1] != firstIn
	})
	summary := regexp.MustCompile(`arkstate: stream words: 20000 records in, \d+ out; \d+ checkpoints, last \d+; output ` +
		regexp.QuoteMeta(filepath.Join(dir, "out")+"/ (committed part files, exactly-once)") + `; [\d.]+m?s`)
	final := screen("the summary", func(p string) bool { return summary.MatchString(p) })
	if live.MatchString(final) {
		t.Fatalf("the live line is still on the screen after the summary:\n%s", final)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(done)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			if code := strings.TrimSpace(string(b)); code != "0" {
				t.Fatalf("run exited %s", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("run did not exit")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
