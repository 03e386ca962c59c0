package main

import (
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const gcLoopConfig = `streams:
  - id: wordcount
    input:  {type: generate, seed: 5, count: 20000, rate: 5000}   # about 4 s
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
  checkpoint_interval_ms: 50
  retained_checkpoints: 2
  exactly_once: true
`

// TestRunGCLoop runs gc and prune, without any grace period, in a loop
// against a live job. They must refuse while the job writes (exit 3, with
// nothing deleted), so every checkpoint stays restorable and the output
// equals an uninterrupted run's; once the job has stopped they run.
func TestRunGCLoop(t *testing.T) {
	want := referenceCounts(t, gcLoopConfig)

	dir := t.TempDir()
	cfg := writePipeline(t, dir, gcLoopConfig)
	job := exec.Command(arkstateBinary(t), "run", "-c", cfg, "-q")
	var jobErr lockedBuffer
	job.Stderr = &jobErr
	if err := job.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- job.Wait() }()
	store := filepath.Join(dir, "state")
	refused, rounds := 0, 0
loop:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the job failed while gc ran beside it: %v\n%s", err, jobErr.String())
			}
			break loop
		default:
		}
		time.Sleep(5 * time.Millisecond)
		if checkpointCount(dir) == 0 {
			continue // no store yet
		}
		rounds++
		for _, args := range [][]string{
			{"checkpoint", "gc", store, "--grace", "0s"},
			{"checkpoint", "prune", store, "--keep-last", "1", "--grace", "0s"},
		} {
			_, stderr, code := cliRun(t, "", args...)
			switch {
			case code == exitIO && strings.Contains(stderr, "does not delete beside a running job") && strings.Contains(stderr, "lease held"):
				refused++
			case code == exitOK:
				// The job had just released its lease on the way out.
			default:
				t.Fatalf("%v beside the job: exit %d\n%s", args, code, stderr)
			}
		}
	}
	if refused == 0 {
		t.Fatalf("gc never ran while the job held the store (%d rounds): the test saw nothing", rounds)
	}
	if got := committed(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
		t.Fatalf("output after gc ran beside the job differs from an uninterrupted run's (%d vs %d keys)", len(got), len(want))
	}
	opsVerify(t, store)
	if _, stderr, code := cliRun(t, "", "checkpoint", "prune", store, "--keep-last", "1", "--grace", "0s"); code != exitOK {
		t.Fatalf("prune after the job stopped: exit %d\n%s", code, stderr)
	}
	opsVerify(t, store)
	t.Logf("%d gc and prune runs refused beside the job in %d rounds", refused, rounds)
}
