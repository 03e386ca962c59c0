package main

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const zombieConfig = `streams:
  - id: wordcount
    input:  {type: generate, seed: 3, count: 40000, rate: 5000}   # about 8 s
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
  checkpoint_interval_ms: 100
  retained_checkpoints: 3
  lease_ttl_ms: 1000
  exactly_once: true
`

// checkpointCount counts the committed checkpoints of a directory store.
func checkpointCount(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "state", "checkpoints", "chk-*", "MANIFEST"))
	return len(m)
}

func latestCheckpointDir(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "state", "checkpoints", "chk-*", "MANIFEST"))
	if len(m) == 0 {
		return ""
	}
	return filepath.Base(filepath.Dir(m[len(m)-1]))
}

// TestRunZombie freezes the active writer (SIGSTOP) past its lease, lets a
// standby take over, and thaws the frozen one (SIGCONT): the thawed writer
// must commit nothing and exit 3 within a few seconds, naming the new
// holder, and the output must equal an uninterrupted run's.
func TestRunZombie(t *testing.T) {
	want := referenceCounts(t, zombieConfig)

	dir := t.TempDir()
	cfg := writePipeline(t, dir, zombieConfig)
	start := func(name string, args ...string) (*exec.Cmd, *lockedBuffer, chan error) {
		cmd := exec.Command(arkstateBinary(t), append([]string{"run", "-c", cfg, "-q"}, args...)...)
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		done := make(chan error, 1)
		exited := make(chan struct{})
		go func() {
			done <- cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGCONT)
			cmd.Process.Kill()
			<-exited
		})
		return cmd, stderr, done
	}
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen within %v", what, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	active, activeErr, activeDone := start("the active writer")
	waitFor("two checkpoints of the active writer", 30*time.Second, func() bool { return checkpointCount(dir) >= 2 })
	if err := active.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenAt := latestCheckpointDir(dir)

	_, standbyErr, standbyDone := start("the standby", "--wait-lease", "--log-level", "info")
	// The standby takes over once the frozen writer's lease expires, fences
	// it out, and goes on checkpointing.
	waitFor("the standby's takeover", 30*time.Second, func() bool { return strings.Contains(standbyErr.String(), "fenced it out") })
	taken := latestCheckpointDir(dir)
	waitFor("two checkpoints of the standby", 30*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "state", "checkpoints", "chk-*", "MANIFEST"))
		return len(m) > 0 && filepath.Base(filepath.Dir(m[len(m)-1])) > taken && latestCheckpointDir(dir) != taken
	})

	thawed := time.Now()
	if err := active.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-activeDone:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitIO {
			t.Fatalf("the thawed writer exited with %v; want exit %d\n%s", err, exitIO, activeErr.String())
		}
		if !strings.Contains(activeErr.String(), "lease lost") || !strings.Contains(activeErr.String(), "/") {
			t.Fatalf("the thawed writer's error does not say it lost the lease to a named holder:\n%s", activeErr.String())
		}
		t.Logf("the thawed writer (frozen at %s) stopped %v after SIGCONT", frozenAt, time.Since(thawed).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("the thawed writer is still running 10 s after SIGCONT\n%s", activeErr.String())
	}
	select {
	case err := <-standbyDone:
		if err != nil {
			t.Fatalf("the standby failed: %v\n%s", err, standbyErr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the standby did not finish")
	}
	// A restart cleans what the thawed writer left pending before it
	// stopped; the committed output is the uninterrupted run's.
	if (crashRun{t: t, dir: dir}).run("") {
		t.Fatal("the last run was killed")
	}
	if got := committed(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
		t.Fatalf("the committed counts differ from an uninterrupted run's (%d vs %d keys)", len(got), len(want))
	}
	if pending, _ := os.ReadDir(filepath.Join(dir, "out", ".pending")); len(pending) != 0 {
		t.Fatalf("%d parts left pending after a restart", len(pending))
	}
}

// lockedBuffer is a process's stderr, read by the test while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
