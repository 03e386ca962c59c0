package txlog

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
)

// crashHelperEnv, when set, makes the test binary the crash helper: it
// appends to the log in that directory until it is killed.
const crashHelperEnv = "ARKSTATE_TXLOG_CRASH_DIR"

// TestLog_CrashHelper is the child process of TestLog_Crash. Four
// goroutines append concurrently (so group commit is what gets killed) to a
// log with small segments (so rolls are too), and print "LSN i" for every
// acknowledged mutation(i). It gives up on its own after a while, so that a
// parent that died cannot leave it running.
func TestLog_CrashHelper(t *testing.T) {
	dir := os.Getenv(crashHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestLog_Crash")
	}
	l, err := Open(dir, "crash", Options{SegmentSize: 8 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	base, _ := strconv.Atoi(os.Getenv(crashHelperEnv + "_BASE"))
	var mu sync.Mutex
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for seq := 0; time.Now().Before(deadline); seq++ {
				i := base + g*1_000_000 + seq
				lsn, err := l.Append(mutation(i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				mu.Lock()
				// Unbuffered: the parent must see an ack as soon as it is made.
				_, err = fmt.Fprintf(os.Stdout, "%d %d\n", lsn, i)
				mu.Unlock()
				if err != nil {
					os.Exit(3) // the parent is gone
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	os.Exit(0)
}

// TestLog_Crash kills a process that is appending with SIGKILL at a random
// moment, several times over the same log, and checks after each kill that
// the log opens, that every acknowledged record is there and intact, that
// the tail is clean, and that LSNs continue.
func TestLog_Crash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	acked := map[uint64]int{} // LSN -> mutation number, over all rounds
	for round := range 4 {
		got := runCrashRound(t, dir, (round+1)*10_000_000)
		for lsn, i := range got {
			if prev, dup := acked[lsn]; dup {
				t.Fatalf("round %d: LSN %d acknowledged twice (mutation %d and %d)", round, lsn, prev, i)
			}
			acked[lsn] = i
		}
		if len(got) == 0 {
			t.Fatalf("round %d: the helper acknowledged nothing", round)
		}

		l := openLog(t, dir, "crash", Options{})
		if tc := l.TailCut(); tc != nil {
			t.Logf("round %d: cut a torn tail of %d bytes at %s:%d (%v)", round, tc.Bytes, tc.Segment, tc.Offset, tc.Reason)
		}
		next := l.Stats().NextLSN
		var maxAcked uint64
		for lsn := range acked {
			maxAcked = max(maxAcked, lsn)
		}
		if next <= maxAcked {
			t.Fatalf("round %d: next LSN %d, but %d was acknowledged", round, next, maxAcked)
		}
		closeLog(t, l)

		s := dirStore(t, dir)
		rep, err := Verify(context.Background(), s, "crash")
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 0 {
			t.Fatalf("round %d: after reopening, verify reports %+v", round, rep.Problems)
		}
		if rep.LastLSN != next-1 || rep.FirstLSN != 1 {
			t.Fatalf("round %d: log holds %d..%d, next LSN %d", round, rep.FirstLSN, rep.LastLSN, next)
		}
		seen := 0
		err = Replay(context.Background(), s, "crash", 0, 0, zeroTime, func(r *format.Record) error {
			if i, ok := acked[r.LSN]; ok {
				checkMutation(t, r, i, r.LSN)
				seen++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != len(acked) {
			t.Fatalf("round %d: %d of %d acknowledged records replayed", round, seen, len(acked))
		}
		t.Logf("round %d: %d acknowledged, log holds LSN 1..%d in %d segments", round, len(got), rep.LastLSN, len(rep.Segments))
	}
}

// runCrashRound starts the helper, kills it at a random moment after its
// first acknowledgements, and returns what it acknowledged.
func runCrashRound(t *testing.T, dir string, base int) map[uint64]int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLog_CrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, fmt.Sprintf("%s_BASE=%d", crashHelperEnv, base))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	got := map[uint64]int{}
	parse := func(line string) {
		var lsn uint64
		var i int
		if _, err := fmt.Sscanf(line, "%d %d", &lsn, &i); err != nil {
			t.Errorf("helper printed %q", line)
			return
		}
		got[lsn] = i
	}
	// Let it get going (the first acks mean the log is open and appends are
	// flowing), then kill it somewhere in the next 150 ms.
	timeout := time.After(10 * time.Second)
	for len(got) < 50 {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("helper exited early: %s", stderr.String())
			}
			parse(line)
		case <-timeout:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper acknowledged only %d records in 10s: %s", len(got), stderr.String())
		}
	}
	time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	for line := range lines {
		parse(line)
	}
	<-readDone
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("helper ended with %v, want killed: %s", err, stderr.String())
	}
	return got
}
