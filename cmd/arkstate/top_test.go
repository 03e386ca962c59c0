package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// top --once against a live job prints one plain frame: the stream's row
// and the store's newest checkpoints.
func TestTop_Once(t *testing.T) {
	run := startMonitoredRun(t)
	run.waitCheckpoints(t, 2)
	out, err := exec.Command(arkstateBinary(t), "top", "--once", "--addr", strings.TrimPrefix(run.base, "http://"),
		"--store", filepath.Join(run.dir, "state")).CombinedOutput()
	if err != nil {
		t.Fatalf("top --once: %v\n%s", err, out)
	}
	frame := string(out)
	if strings.Contains(frame, "\x1b[") {
		t.Errorf("frame written to a pipe has escape codes:\n%q", frame)
	}
	for _, want := range []string{"healthy", "Checkpoints in the store", " full ", "q quit"} {
		if !strings.Contains(frame, want) {
			t.Errorf("frame lacks %q:\n%s", want, frame)
		}
	}
	if f := rowFields(frame, "words"); len(f) < 3 || f[1] != "running" || f[2] != "ok" {
		t.Errorf("words row %q in\n%s", f, frame)
	}
	run.stop(t)
}

// top --once on a terminal paints in colour, and not with NO_COLOR or
// TERM=dumb, which the interactive top already respected. Before, --once
// painted 24-bit colours whatever they said.
func TestTop_OnceColours(t *testing.T) {
	run := startMonitoredRun(t)
	run.waitCheckpoints(t, 1)
	frame := func(env ...string) string {
		t.Helper()
		cmd := exec.Command(arkstateBinary(t), "top", "--once", "--addr", strings.TrimPrefix(run.base, "http://"))
		cmd.Env = append(os.Environ(), env...)
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
		if err != nil {
			t.Fatalf("start on a pseudo-terminal: %v", err)
		}
		defer tty.Close()
		raw, _ := io.ReadAll(tty) // ends with EIO when the process exits
		if err := cmd.Wait(); err != nil {
			t.Fatalf("top --once %v: %v\n%q", env, err, raw)
		}
		return string(raw)
	}
	colour := regexp.MustCompile(`\x1b\[[0-9;]*(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m`)
	if f := frame("TERM=xterm-256color", "COLORTERM=truecolor", "NO_COLOR="); !colour.MatchString(f) {
		t.Fatalf("a colour terminal got no colour: the test cannot see colours\n%q", f)
	}
	for _, env := range [][]string{{"TERM=xterm-256color", "COLORTERM=truecolor", "NO_COLOR=1"}, {"TERM=dumb", "COLORTERM="}} {
		f := frame(env...)
		if m := colour.FindString(f); m != "" {
			t.Errorf("top --once with %v paints in colour (%q):\n%q", env, m, f)
		}
		if !strings.Contains(f, "healthy") {
			t.Errorf("top --once with %v printed no frame:\n%q", env, f)
		}
	}
	run.stop(t)
}

func rowFields(frame, first string) []string {
	for line := range strings.SplitSeq(frame, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

func TestTop_ErrExitCodes(t *testing.T) {
	// A port nothing listens on: the job cannot be reached.
	_, stderr, code := cliRun(t, "", "top", "--once", "--addr", "127.0.0.1:1")
	if code != exitIO || !strings.Contains(stderr, "cannot reach the job") {
		t.Errorf("unreachable job: exit %d, %s", code, stderr)
	}
	for _, args := range [][]string{
		{"top", "--once", "--addr", "ftp://127.0.0.1:1"},
		{"top", "--once", "--interval", "0s"},
		{"top", "--once", "--store", filepath.Join(t.TempDir(), "missing")},
		{"top", "extra"},
	} {
		if _, stderr, code := cliRun(t, "", args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, code, exitUsage, stderr)
		}
	}
}

// TestTop_Tmux drives the real dashboard in a terminal: it must show the
// live stream and the store, follow the counts as they grow, and quit on q.
func TestTop_Tmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (.ci/run installs it)")
	}
	run := startMonitoredRun(t)
	run.waitCheckpoints(t, 2)
	session := fmt.Sprintf("arkstate-top-%d", time.Now().UnixNano())
	socket := filepath.Join(t.TempDir(), "tmux.sock") // a server of our own, not the user's
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	top := fmt.Sprintf("%s top --addr %s --store %s --interval 200ms", arkstateBinary(t), run.base, filepath.Join(run.dir, "state"))
	if out, err := tm("new-session", "-d", "-s", session, "-x", "140", "-y", "40", top); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tm("kill-server") })

	// screen waits until the pane shows a frame that passes ok.
	screen := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		var pane string
		for time.Now().Before(deadline) {
			pane, _ = tm("capture-pane", "-p", "-t", session)
			if ok(pane) {
				return pane
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("the screen never showed %s:\n%s", what, pane)
		return ""
	}
	recordsIn := func(pane string) string {
		if f := rowFields(pane, "words"); len(f) > 5 {
			return f[5]
		}
		return ""
	}
	first := screen("the running stream and the store", func(p string) bool {
		f := rowFields(p, "words")
		return len(f) > 5 && f[1] == "running" && f[2] == "ok" && f[3] != "-" &&
			strings.Contains(p, "Checkpoints in the store") && strings.Contains(p, " full ")
	})
	screen("the record count moving", func(p string) bool {
		return recordsIn(p) != "" && recordsIn(p) != recordsIn(first)
	})
	if out, err := tm("send-keys", "-t", session, "q"); err != nil {
		t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := tm("has-session", "-t", session); err != nil {
			break // top quit, and its session ended with it
		}
		if time.Now().After(deadline) {
			pane, _ := tm("capture-pane", "-p", "-t", session)
			t.Fatalf("top did not quit on q:\n%s", pane)
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.stop(t)
}

// top prints JSON only as one poll (--once); without it --output json is a
// usage error, and a job it cannot reach is exit 3 with nothing on stdout.
func TestTop_OutputJSON(t *testing.T) {
	if stdout, stderr, code := cliRun(t, "", "top", "-o", "json"); code != exitUsage || stdout != "" || !strings.Contains(stderr, "--once") {
		t.Fatalf("top -o json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if stdout, stderr, code := cliRun(t, "", "top", "--once", "-o", "json", "--addr", "127.0.0.1:1"); code != exitIO || stdout != "" {
		t.Fatalf("top --once -o json on no job: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
