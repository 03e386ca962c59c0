package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/s3test"
)

// The crash tests run the real arkstate binary on a multi-megabyte input,
// kill it with SIGKILL at random moments and restart the same command until
// it exits 0. Every key's committed counts must then be exactly 1..n, and
// the committed output must equal that of one uninterrupted run.
// ARKSTATE_CRASH_KILLS sets the number of kills (default 20); see
// bench/crashloop.sh for long soaks.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// arkstateBinary builds the command once per test binary.
func arkstateBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "arkstate-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "arkstate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func crashKills(t *testing.T) int {
	if v := os.Getenv("ARKSTATE_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("ARKSTATE_CRASH_KILLS=%q: %v", v, err)
		}
		return n
	}
	return 20
}

// writeCrashInput writes about size bytes of text lines.
func writeCrashInput(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(7, 7))
	n := 0
	for n < size {
		words := 3 + rng.IntN(10)
		for j := range words {
			if j > 0 {
				w.WriteByte(' ')
				n++
			}
			word := fmt.Sprintf("Word%d", rng.IntN(2000))
			w.WriteString(word)
			n += len(word)
		}
		w.WriteString(".\n")
		n += 2
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

const crashConfig = `streams:
  - id: wordcount
    input:  {type: file, path: input.txt}
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}
    output: {type: file, path: out/}
state:
  enabled: true
  backend_type: %s
  path: ./state
  checkpoint_interval_ms: %d
  retained_checkpoints: 5
  exactly_once: true
%s`

// committed reads out/part-*.jsonl and returns each key's counts, checking
// they are exactly 1..n.
func committed(t *testing.T, out string) map[string]uint64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(out, "part-*.jsonl"))
	seen := map[string][]uint64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			var rec struct {
				Key   string `json:"key"`
				Count uint64 `json:"count"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%s: %q: %v", f, line, err)
			}
			seen[rec.Key] = append(seen[rec.Key], rec.Count)
		}
	}
	final := map[string]uint64{}
	for k, cs := range seen {
		slices.Sort(cs)
		for i, c := range cs {
			if c != uint64(i+1) {
				t.Fatalf("key %q: committed counts are not 1..%d: %v", k, len(cs), cs[max(0, i-3):min(len(cs), i+3)])
			}
		}
		final[k] = uint64(len(cs))
	}
	return final
}

type crashSetup struct {
	backend  string
	extra    string
	env      []string
	interval int
	// config, when set, is the whole configuration (it ignores the fields
	// above but env).
	config string
}

// runCrashLoop runs the pipeline in dir, killing it kills times after a
// random time up to maxDelay, then lets it finish. It returns how many kills
// landed and how long the last, uninterrupted run took.
func runCrashLoop(t *testing.T, dir string, cs crashSetup, kills int, maxDelay time.Duration) (killed int, last time.Duration) {
	t.Helper()
	bin := arkstateBinary(t)
	cfg := filepath.Join(dir, "pipeline.yaml")
	text := cs.config
	if text == "" {
		text = fmt.Sprintf(crashConfig, cs.backend, cs.interval, cs.extra)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for attempt := 0; ; attempt++ {
		if attempt > kills+20 {
			t.Fatalf("still not done after %d runs", attempt)
		}
		started := time.Now()
		cmd := exec.Command(bin, "run", "-c", cfg, "--log-level", "warn")
		cmd.Env = append(os.Environ(), cs.env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if killed < kills {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run %d failed: %v\n%s", attempt, err, stderr.String())
				}
				return killed, time.Since(started) // finished before the kill
			case <-time.After(20*time.Millisecond + time.Duration(rng.Int64N(int64(maxDelay)))):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				killed++
				continue
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("final run failed: %v\n%s", err, stderr.String())
			}
			return killed, time.Since(started)
		case <-time.After(5 * time.Minute):
			cmd.Process.Kill()
			<-done
			t.Fatal("final run did not finish in 5 minutes")
		}
	}
}

// killWindow is the longest a crash run lives before its kill: a fraction
// of an uninterrupted run, so that the kills land on any machine speed, and
// long enough for checkpoints to complete between them.
func killWindow(uninterrupted time.Duration) time.Duration {
	return max(uninterrupted/15, 100*time.Millisecond)
}

func testRunCrash(t *testing.T, cs crashSetup, size int) {
	kills := crashKills(t)
	ref := t.TempDir()
	writeCrashInput(t, filepath.Join(ref, "input.txt"), size)
	refSetup := cs
	if cs.backend == "s3" {
		// The reference run needs no S3: only its output matters.
		refSetup = crashSetup{backend: "local", interval: cs.interval}
	}
	_, took := runCrashLoop(t, ref, refSetup, 0, 0)
	want := committed(t, filepath.Join(ref, "out"))

	crashUntilKilled(t, cs, kills, took, func(dir string) {
		writeCrashInput(t, filepath.Join(dir, "input.txt"), size)
	}, func(dir string, killed int) {
		got := committed(t, filepath.Join(dir, "out"))
		if !maps.Equal(got, want) {
			t.Fatalf("final counts after %d kills differ from an uninterrupted run (%d vs %d keys)", killed, len(got), len(want))
		}
		pending, _ := os.ReadDir(filepath.Join(dir, "out", ".pending"))
		if len(pending) != 0 {
			var names []string
			for _, e := range pending {
				names = append(names, e.Name())
			}
			t.Fatalf("%d files left pending: %v", len(pending), names)
		}
		t.Logf("%d kills, %d keys, counts identical to an uninterrupted run", killed, len(got))
	})
}

// crashUntilKilled runs the crash loop in a fresh directory (prepare writes
// its input) and checks the result with check, whatever the number of kills.
// When the job finished before all kills landed — one run can outpace the
// kill window on a loaded machine — it tries again with a window half as
// long, up to three times.
func crashUntilKilled(t *testing.T, cs crashSetup, kills int, uninterrupted time.Duration, prepare func(dir string), check func(dir string, killed int)) {
	t.Helper()
	window := killWindow(uninterrupted)
	for try := 1; ; try++ {
		dir := t.TempDir()
		prepare(dir)
		killed, _ := runCrashLoop(t, dir, cs, kills, window)
		check(dir, killed)
		if killed >= kills {
			return
		}
		if try == 3 {
			t.Fatalf("only %d kills landed before the run finished, in 3 tries; the input is too small for this machine", killed)
		}
		t.Logf("try %d: the run finished after %d kills; trying again with a shorter kill window", try, killed)
		window = max(window/2, 20*time.Millisecond)
	}
}

func TestRunCrash_Local(t *testing.T) {
	testRunCrash(t, crashSetup{backend: "local", interval: 100}, 4<<20)
}

func TestRunCrash_S3(t *testing.T) {
	srv, err := s3test.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	bucket := srv.NewBucket(t)
	extra := fmt.Sprintf("  s3_config: {bucket: %s, prefix: crash, region: %s, endpoint: %q, path_style: true, use_ssl: false}\n", bucket, s3test.Region, srv.Endpoint)
	env := awsEnv(t, srv.AccessKey, srv.SecretKey)
	testRunCrash(t, crashSetup{backend: "s3", extra: extra, env: env, interval: 100}, 4<<20)
}

const sessionCrashConfig = `streams:
  - id: sessions
    input: {type: file, path: events.jsonl, format: jsonl}
    pipeline:
      thread_num: 2
      processors:
        - {type: window, kind: session, key: user, time_field: ts, gap_ms: 30000, watermark_delay_ms: 5000, aggregate: sum, field: bytes}
    output: {type: file, path: out/}
state:
  enabled: true
  backend_type: local
  path: ./state
  checkpoint_interval_ms: 100
  retained_checkpoints: 3
  exactly_once: true
`

// writeSessionEvents writes about size bytes of click events: per user a
// few sessions of events a few seconds apart, interleaved in time order with
// some disorder within the watermark delay.
func writeSessionEvents(t *testing.T, path string, size int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 5))
	type event struct {
		ts    int64
		user  string
		bytes int
	}
	var events []event
	n := 0
	for u := 0; n < size; u++ {
		user := fmt.Sprintf("u%05d", u)
		ts := int64(1795737600000) + rng.Int64N(3_600_000)
		for range 2 + rng.IntN(6) {
			for range 3 + rng.IntN(20) {
				ts += 500 + rng.Int64N(20_000)
				events = append(events, event{ts, user, 100 + rng.IntN(5000)})
				n += 50
			}
			ts += 60_000 + rng.Int64N(900_000)
		}
	}
	slices.SortFunc(events, func(a, b event) int { return int(a.ts - b.ts) })
	for i := 0; i+1 < len(events); i += 7 {
		if events[i+1].ts-events[i].ts < 3000 {
			events[i], events[i+1] = events[i+1], events[i]
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, e := range events {
		fmt.Fprintf(w, `{"user":%q,"ts":%d,"bytes":%d}`+"\n", e.user, e.ts, e.bytes)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// committedLines returns the committed output lines as a set, failing on a
// line committed twice.
func committedLines(t *testing.T, out string) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(out, "part-*.jsonl"))
	set := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if set[line] {
				t.Fatalf("%s: %q committed twice", f, line)
			}
			set[line] = true
		}
	}
	return set
}

// The session-window pipeline, killed 20 times and restarted, emits exactly
// the set of windows of an uninterrupted run.
func TestRunCrash_SessionWindows(t *testing.T) {
	kills := crashKills(t)
	ref := t.TempDir()
	writeSessionEvents(t, filepath.Join(ref, "events.jsonl"), 4<<20)
	cs := crashSetup{config: sessionCrashConfig}
	_, took := runCrashLoop(t, ref, cs, 0, 0)
	want := committedLines(t, filepath.Join(ref, "out"))
	crashUntilKilled(t, cs, kills, took, func(dir string) {
		writeSessionEvents(t, filepath.Join(dir, "events.jsonl"), 4<<20)
	}, func(dir string, killed int) {
		got := committedLines(t, filepath.Join(dir, "out"))
		if !maps.Equal(got, want) {
			missing, extra := 0, 0
			for l := range want {
				if !got[l] {
					missing++
				}
			}
			for l := range got {
				if !want[l] {
					extra++
				}
			}
			t.Fatalf("after %d kills: %d windows missing, %d extra (of %d)", killed, missing, extra, len(want))
		}
		t.Logf("%d kills, %d windows identical to an uninterrupted run", killed, len(got))
	})
}
