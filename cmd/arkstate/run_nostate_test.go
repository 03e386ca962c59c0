package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunNoState_Interrupt stops a run without state (SIGINT) in the middle
// of its input: what it wrote is committed in whole lines, nothing is left
// pending, and it exits 0. (Before, half-written parts stayed under
// .pending and nothing was committed.)
func TestRunNoState_Interrupt(t *testing.T) {
	dir := t.TempDir()
	yaml := `streams:
  - id: w
    input: {type: generate, count: 50000, rate: 5000}
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}
    output: {type: file, path: out/}
`
	cfg := writePipeline(t, dir, yaml)
	cmd := exec.Command(arkstateBinary(t), "run", "-c", cfg, "-q")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("interrupted run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "state is not kept") {
		t.Fatalf("the interruption message does not say state is not kept:\n%s", stderr.String())
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "out", "part-*.jsonl"))
	if len(parts) == 0 {
		t.Fatal("nothing committed on SIGINT")
	}
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 || b[len(b)-1] != '\n' {
			t.Fatalf("%s: %d bytes, err %v; want whole lines", p, len(b), err)
		}
	}
	counts := committed(t, filepath.Join(dir, "out")) // checks 1..n per key
	if len(counts) == 0 {
		t.Fatal("no counts committed")
	}
	if pending, _ := os.ReadDir(filepath.Join(dir, "out", ".pending")); len(pending) != 0 {
		t.Fatalf("%d parts left pending", len(pending))
	}
}
