package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/store"
)

func TestMain(m *testing.M) {
	// The AWS credential chain must never reach for an instance metadata
	// service from a test: only loopback traffic is allowed.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	goleak.VerifyTestMain(m)
}

// writeWords writes n lines of random words from a vocabulary of v words and
// returns the expected final count of each word.
func writeWords(t testing.TB, path string, n, v int, seed uint64) map[string]uint64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	want := map[string]uint64{}
	for range n {
		k := 1 + rng.IntN(6)
		for j := range k {
			word := fmt.Sprintf("w%d", rng.IntN(v))
			want[word]++
			if j > 0 {
				w.WriteString(", ")
			}
			w.WriteString(strings.ToUpper(word[:1]) + word[1:])
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return want
}

func wordCountSpec(t testing.TB, dir string, parallelism int) Spec {
	t.Helper()
	split, err := Split("line", "[^a-z0-9']+", true, "word")
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		ID:          "wordcount",
		Input:       &FileInput{Path: filepath.Join(dir, "input.txt")},
		Processors:  []ProcessorSpec{split, Count("word")},
		Output:      &FileOutput{Dir: filepath.Join(dir, "out"), ExactlyOnce: true},
		Parallelism: parallelism,
		KeyGroups:   128,
	}
}

// readCounts reads the committed part files and checks that each word's
// counts are exactly 1, 2, ..., n.
func readCounts(t testing.TB, out string) map[string]uint64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, "part-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]uint64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			if line == "" {
				continue
			}
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
				t.Fatalf("word %q: committed counts %v are not 1..%d", k, cs, len(cs))
			}
		}
		final[k] = uint64(len(cs))
	}
	return final
}

func openRepo(t testing.TB, dir string) *checkpoint.Repo {
	t.Helper()
	s, err := store.NewDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := checkpoint.InitRepo(context.Background(), s, "wordcount", 128)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunner_WordCount(t *testing.T) {
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 5000, 300, 1)
	r, err := NewRunner(wordCountSpec(t, dir, 2), Options{Repo: openRepo(t, dir), Interval: 5 * time.Millisecond, Retained: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readCounts(t, filepath.Join(dir, "out"))
	if len(got) != len(want) {
		t.Fatalf("%d words counted, want %d", len(got), len(want))
	}
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %s: %d, want %d", w, got[w], n)
		}
	}
	if r.Stats().CheckpointsCompleted.Load() < 2 {
		t.Fatalf("only %d checkpoints", r.Stats().CheckpointsCompleted.Load())
	}
	st := r.Status()
	if st.Stream != "wordcount" || st.Running || st.Err != "" || st.StartedAt.IsZero() || !st.Checkpointing ||
		st.CheckpointInterval != 5*time.Millisecond || st.RecordsIn != 5000 || st.RecordsOut == 0 ||
		st.CheckpointsCompleted != r.Stats().CheckpointsCompleted.Load() || st.FailuresSinceSuccess != 0 ||
		st.LastCheckpointAt.Before(st.StartedAt) || st.CheckpointBytes <= 0 || st.BytesUploaded < st.CheckpointBytes/2 {
		t.Fatalf("status after the run: %+v", st)
	}
	if h := st.Check(time.Now()); !h.Healthy {
		t.Fatalf("a stream that finished is unhealthy: %s", h.Reason)
	}
	pending, _ := os.ReadDir(filepath.Join(dir, "out", pendingDir))
	if len(pending) != 0 {
		t.Fatalf("%d parts left pending", len(pending))
	}
}

// A run cancelled at random moments and restarted — with another
// parallelism each time — commits every count exactly once.
func TestRunner_RestartExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 6000, 500, 2)
	rng := rand.New(rand.NewPCG(3, 3))
	// Attempts that complete no checkpoint get longer, so a slow, loaded
	// machine still makes progress.
	slack := time.Duration(0)
	for attempt := 0; ; attempt++ {
		if attempt > 200 {
			t.Fatal("did not finish in 200 attempts")
		}
		r, err := NewRunner(wordCountSpec(t, dir, 1+attempt%3), Options{Repo: openRepo(t, dir), Interval: 3 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(30+rng.IntN(200))*time.Millisecond+slack)
		err = r.Run(ctx)
		cancel()
		if err == nil {
			break
		}
		if r.Stats().CheckpointsCompleted.Load() == 0 {
			slack += 50 * time.Millisecond
		}
	}
	got := readCounts(t, filepath.Join(dir, "out"))
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %s: %d, want %d", w, got[w], n)
		}
	}
}

// Once the input goes quiet, keyed tasks fold the layers their snapshots
// froze into the base while idle: no later write is needed to pay for it.
func TestRunner_IdleMaintenance(t *testing.T) {
	dir := t.TempDir()
	writeWords(t, filepath.Join(dir, "input.txt"), 2000, 300, 5)
	spec := wordCountSpec(t, dir, 2)
	spec.Input = &FileInput{Path: filepath.Join(dir, "input.txt"), Follow: true}
	r, err := NewRunner(spec, Options{Repo: openRepo(t, dir), Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	}()
	deadline := time.Now().Add(time.Minute)
	// All records read, then a few checkpoints, each freezing what the
	// last records wrote; after that only idle maintenance can fold them.
	var checkpointsAtEnd int64
	for {
		st := r.Status()
		if checkpointsAtEnd == 0 && st.RecordsIn == 2000 {
			checkpointsAtEnd = st.CheckpointsCompleted
		}
		if checkpointsAtEnd > 0 && st.CheckpointsCompleted >= checkpointsAtEnd+3 && st.FrozenLayers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("frozen layers never folded while idle: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
