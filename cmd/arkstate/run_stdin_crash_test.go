package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arkstate/arkstate/internal/crashpoint"
)

const stdinCrashConfig = `streams:
  - id: feed
    input: {type: stdin}
    pipeline:
      thread_num: 2
      processors:
        - {type: count, key: line}
    output: {type: file, path: out/}
state:
  enabled: true
  backend_type: local
  path: ./state
  checkpoint_interval_ms: 100
  retained_checkpoints: 3
  exactly_once: true
  txlog: {enabled: true, segment_bytes: 65536}
`

// stdinFeed is the test's side of standard input: unique lines, written
// once and never again, whatever happens to the reader, at about 1 MB/s so
// that each 100 ms checkpoint interval carries about 100 KiB.
type stdinFeed struct {
	lines   []string     // every line written into some pipe, whole or in part, in order
	partial map[int]bool // the lines of lines only partly written
	rng     *rand.Rand
}

func newStdinFeed() *stdinFeed {
	return &stdinFeed{partial: map[int]bool{}, rng: rand.New(rand.NewPCG(5, 9))}
}

// feedPace is how often the feed writes one batch of at most
// feedBatch bytes.
const (
	feedPace  = 2 * time.Millisecond
	feedBatch = 4096 // PIPE_BUF, so a write lands whole or not at all
)

// nextLine makes line i.
func (f *stdinFeed) nextLine(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "r%08d", i)
	for range f.rng.IntN(12) {
		fmt.Fprintf(&b, " w%d", f.rng.IntN(1000))
	}
	b.WriteByte('\n')
	return b.String()
}

// feed writes new lines into w until a write fails because the reader
// died, or, with limit > 0, until limit lines were written (then it
// closes w). Writes are of random sizes up to feedBatch, so they end
// inside lines as often as not, and each lands whole or not at all: the
// feed knows exactly which bytes entered the pipe. A line only partly
// written when the reader died is recorded in partial; the next pipe
// starts with the next line, as a producer that never resends would.
func (f *stdinFeed) feed(w *os.File, limit int) {
	defer w.Close()
	tick := time.NewTicker(feedPace)
	defer tick.Stop()
	var line string // the line being written
	done := 0       // how much of it was written
	for written := 0; ; {
		var batch strings.Builder
		size := 1 + f.rng.IntN(feedBatch)
		// The lines the batch touches: the current one from done on, then
		// new ones.
		next, nextDone, complete := line, done, []string(nil)
		for batch.Len() < size {
			if next == "" || nextDone == len(next) {
				if next != "" {
					complete = append(complete, next)
				}
				if limit > 0 && written+len(complete) >= limit {
					next = ""
					break
				}
				next, nextDone = f.nextLine(len(f.lines)+len(complete)), 0
			}
			n := min(size-batch.Len(), len(next)-nextDone)
			batch.WriteString(next[nextDone : nextDone+n])
			nextDone += n
		}
		if batch.Len() > 0 {
			if _, err := w.WriteString(batch.String()); err != nil {
				if done > 0 {
					f.partial[len(f.lines)] = true
					f.lines = append(f.lines, line)
				}
				return
			}
		}
		f.lines = append(f.lines, complete...)
		written += len(complete)
		line, done = next, nextDone
		if next == "" {
			return // limit reached
		}
		<-tick.C
	}
}

// stdinFinalLines is how many lines the final run reads before its input
// ends.
const stdinFinalLines = 20000

// stdinRunLimit bounds a run that is not killed by the test.
const stdinRunLimit = 30 * time.Second

// stdinRun runs the pipeline in dir on a fresh pipe of pipeSize bytes fed
// from f, with env added. With kill > 0 it SIGKILLs the process after kill
// if it still runs; with crashAt it expects the process to kill itself
// there. It returns the lines [first, end) that entered this run's pipe
// and whether the process was killed.
func stdinRun(t *testing.T, dir string, f *stdinFeed, pipeSize int, crashAt string, kill time.Duration) (first, end int, killed bool) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeSize); err != nil {
		t.Fatalf("F_SETPIPE_SZ %d: %v", pipeSize, err)
	}
	cmd := exec.Command(arkstateBinary(t), "run", "-c", filepath.Join(dir, "pipeline.yaml"), "--log-level", "warn")
	cmd.Dir = dir
	cmd.Stdin = r
	cmd.Env = os.Environ()
	if crashAt != "" {
		cmd.Env = append(cmd.Env, crashpoint.Env+"="+crashAt)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	first = len(f.lines)
	fed := make(chan struct{})
	final := kill == 0 && crashAt == ""
	go func() {
		defer close(fed)
		limit := 0
		if final {
			limit = stdinFinalLines
		}
		f.feed(w, limit)
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var limit <-chan time.Time
	switch {
	case kill > 0:
		limit = time.After(kill)
	default:
		limit = time.After(stdinRunLimit)
	}
	var werr error
	select {
	case werr = <-done:
	case <-limit:
		if kill == 0 {
			cmd.Process.Signal(syscall.SIGQUIT) // for its goroutines' stacks
			<-done
			t.Fatalf("run (crash at %q) did not end in %v\n%s", crashAt, stdinRunLimit, stderr.String())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		werr = <-done
	}
	<-fed // the write end fails once the reader is gone
	var exit *exec.ExitError
	killed = errors.As(werr, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	switch {
	case final && werr != nil:
		t.Fatalf("final run failed: %v\n%s", werr, stderr.String())
	case !final && werr != nil && !killed:
		t.Fatalf("run (crash at %q) failed: %v\n%s", crashAt, werr, stderr.String())
	case !final && !killed:
		t.Fatalf("run (crash at %q) ended although its input had not", crashAt)
	}
	return first, len(f.lines), killed
}

// Standard input with the transaction log, killed with SIGKILL at random
// moments and at the commit protocol's crash points, by a feed that never
// sends a line twice and writes pieces that end inside lines: no line is
// counted twice, no line is glued to another across a restart, and what a
// killed run loses is only what it had not read or not yet logged — a
// suffix of its pipe's lines, within the pipe's size plus one read and the
// lines those cut.
func TestRunCrash_Stdin(t *testing.T) {
	dir := t.TempDir()
	writePipeline(t, dir, stdinCrashConfig)
	const pipeSize = 4096
	f := newStdinFeed()
	type run struct {
		first, end int
		how        string
	}
	var runs []run
	// The first two die in their first checkpoint, before it commits: the
	// third run recovers from the same position as the second, across the
	// restarts of both.
	points := []string{
		crashpoint.AfterPrepare + ":1", crashpoint.AfterSegments + ":1",
		crashpoint.AfterPrepare + ":2", crashpoint.AfterSegments + ":2", crashpoint.AfterLog + ":2", crashpoint.AfterManifest + ":2",
		crashpoint.RecoverAfterCommit + ":1", crashpoint.BetweenCommits + ":2", crashpoint.AfterCommit + ":2",
		crashpoint.BetweenPruneDeletes + ":1",
	}
	started := time.Now()
	for _, p := range points {
		first, end, _ := stdinRun(t, dir, f, pipeSize, p, 0)
		runs = append(runs, run{first, end, p})
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for range crashKills(t) / 2 {
		// From before the first checkpoint to a few intervals in, so that
		// some recoveries reach back across an earlier restart.
		d := 20*time.Millisecond + time.Duration(rng.Int64N(int64(500*time.Millisecond)))
		first, end, killed := stdinRun(t, dir, f, pipeSize, "", d)
		if !killed {
			t.Fatal("a killed run was not killed")
		}
		runs = append(runs, run{first, end, "SIGKILL after " + d.Round(time.Millisecond).String()})
	}
	first, end, _ := stdinRun(t, dir, f, pipeSize, "", 0)
	took := time.Since(started)
	runs = append(runs, run{first, end, "final"})
	if end-first != stdinFinalLines {
		t.Fatalf("the final run took %d lines, want %d", end-first, stdinFinalLines)
	}
	maxLine := 0
	for _, l := range f.lines {
		maxLine = max(maxLine, len(l))
	}

	counts := committed(t, filepath.Join(dir, "out"))
	for k, n := range counts {
		if n != 1 {
			t.Fatalf("line %q counted %d times", k, n)
		}
	}
	fed := make(map[string]bool, len(f.lines))
	for i, l := range f.lines {
		if !f.partial[i] {
			fed[strings.TrimSuffix(l, "\n")] = true
		}
	}
	for k := range counts {
		if !fed[k] {
			t.Fatalf("committed %q, which is no line fed whole (lines glued across a restart?)", k)
		}
	}
	present := func(i int) bool { _, ok := counts[strings.TrimSuffix(f.lines[i], "\n")]; return ok }
	lostBytes, worst := 0, 0
	for _, r := range runs {
		// What this run's pipe lost is a suffix: everything before the
		// first lost line was read and logged, so it is counted.
		lost := r.end
		for lost > r.first && !present(lost-1) {
			lost--
		}
		for i := r.first; i < lost; i++ {
			if !present(i) {
				t.Fatalf("run %q: line %d was lost although line %d after it, in the same pipe, was read", r.how, i, lost-1)
			}
		}
		n := 0
		for i := lost; i < r.end; i++ {
			n += len(f.lines[i])
		}
		if r.how == "final" && n > 0 {
			t.Fatalf("the final run lost %d bytes", n)
		}
		// The pipe's bytes, the read not yet logged, the line that read
		// cut, and the line the feed was writing.
		if bound := 2*pipeSize + 2*maxLine; n > bound {
			t.Fatalf("run %q lost %d bytes (%d lines), more than the pipe (%d), one read (%d) and two lines (%d)", r.how, n, r.end-lost, pipeSize, pipeSize, 2*maxLine)
		}
		lostBytes += n
		worst = max(worst, n)
	}
	fedBytes := 0
	for _, l := range f.lines {
		fedBytes += len(l)
	}
	perInterval := float64(fedBytes) / took.Seconds() / 10 // 100 ms checkpoints
	t.Logf("%d runs (%d killed), %d lines fed; lost %d bytes in all, at most %d in one kill; one checkpoint interval carried about %.0f bytes",
		len(runs), len(runs)-1, len(f.lines), lostBytes, worst, perInterval)
	checkTxlogAfterCrashes(t, filepath.Join(dir, "state"))
}
