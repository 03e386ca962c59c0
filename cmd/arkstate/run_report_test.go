package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// reportConfig writes a word count over count generated lines, paced at
// rate lines a second, into a new directory.
func reportConfig(t *testing.T, count, rate int) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
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
	return dir, writePipeline(t, dir, yaml)
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

// screenOf replays what a program wrote to a terminal (text, carriage
// returns and newlines, which is all the progress line uses) and returns
// the lines left on the screen, trailing blanks trimmed.
func screenOf(raw []byte) []string {
	var lines [][]rune
	row, col := 0, 0
	for _, r := range string(raw) {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		switch r {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
		default:
			for len(lines[row]) <= col {
				lines[row] = append(lines[row], ' ')
			}
			lines[row][col] = r
			col++
		}
	}
	var out []string
	for _, l := range lines {
		if s := strings.TrimRight(string(l), " "); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TestRun_ReportTerminal runs the real binary on a pseudo-terminal: the
// start line, the live line moving, and at exit the live line gone and the
// summary in its place.
func TestRun_ReportTerminal(t *testing.T) {
	dir, cfg := reportConfig(t, 20000, 5000) // about four seconds
	cmd := exec.Command(arkstateBinary(t), "run", "-c", cfg)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 300})
	if err != nil {
		t.Fatalf("start on a pseudo-terminal: %v", err)
	}
	defer tty.Close()
	// Reading ends with EIO when the process has exited and closed its end.
	raw, _ := io.ReadAll(tty)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%q", err, raw)
	}
	out := filepath.Join(dir, "out") + "/ (committed part files, exactly-once)"
	start := "arkstate: stream words: store " + filepath.Join(dir, "state") + " (fresh start); output " + out
	live := regexp.MustCompile(`\(\d+ rec/(?:s|hr)\) \[\d+s\] in (\d+) · out \d+ · checkpoints \d+`)
	seen := map[string]bool{}
	for _, m := range live.FindAllSubmatch(raw, -1) {
		seen[string(m[1])] = true
	}
	if len(seen) < 3 {
		t.Fatalf("the live line showed %d different record counts, want it moving:\n%q", len(seen), raw)
	}
	summary := regexp.MustCompile(`^arkstate: stream words: 20000 records in, \d+ out; \d+ checkpoints, last \d+; output ` + regexp.QuoteMeta(out) + `; [\d.]+m?s$`)
	screen := screenOf(raw)
	if len(screen) != 2 || screen[0] != start || !summary.MatchString(screen[1]) {
		t.Fatalf("the screen at exit is\n%s\nwant the start line\n%s\nand the summary, nothing else", strings.Join(screen, "\n"), start)
	}
}
