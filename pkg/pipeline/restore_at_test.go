package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// restoredCounts reads the word counts of the latest checkpoint of s.
func restoredCounts(t *testing.T, s store.Store) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	repo, err := checkpoint.OpenRepo(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	id, err := repo.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	err = checkpoint.Dump(ctx, repo, id, checkpoint.DumpOptions{State: "count"}, func(r checkpoint.DumpRecord) error {
		n, err := strconv.ParseUint(string(r.Value), 10, 64)
		counts[r.Key] = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// A point-in-time restore is exact: for random moments between the first
// checkpoint and the log's end, the restored word counts are those of a
// prefix of the input (one subtask, so the log's order is the input's),
// the prefixes grow with the moment, and most moments land between
// checkpoints, where only the log can tell the state.
func TestRestoreAt_Exact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	var words []string
	var lines strings.Builder
	for range 3000 {
		n := 1 + rng.IntN(3)
		for j := range n {
			w := fmt.Sprintf("w%d", rng.IntN(40))
			words = append(words, w)
			if j > 0 {
				lines.WriteString(" ")
			}
			lines.WriteString(w)
		}
		lines.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := openRepo(t, dir)
	spec := wordCountSpec(t, dir, 1)
	spec.Input = &slowInput{Input: spec.Input, every: 10, pause: time.Millisecond}
	r, err := NewRunner(spec, Options{Repo: repo, Interval: 20 * time.Millisecond,
		Txlog: &TxlogOptions{Dir: filepath.Join(dir, "state"), Log: txlog.Options{SegmentSize: 32 << 10}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}

	// The prefix a state is the counts of: its counts sum to its length.
	prefixOf := func(counts map[string]uint64) int {
		t.Helper()
		k := 0
		for _, n := range counts {
			k += int(n)
		}
		want := map[string]uint64{}
		for _, w := range words[:k] {
			want[w]++
		}
		if !maps.Equal(counts, want) {
			t.Fatalf("restored counts (%d words) are not those of the input's first %d words", k, k)
		}
		return k
	}
	atCheckpoint := map[int]bool{}
	ids, err := repo.IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		dst := store.NewMem(fmt.Sprintf("chk-%d", id))
		if _, err := checkpoint.Restore(ctx, repo, id, dst, checkpoint.RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		atCheckpoint[prefixOf(restoredCounts(t, dst))] = true
	}

	earliest, latest, err := checkpoint.RestorableRange(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	span := latest.Sub(earliest)
	if span <= 0 {
		t.Fatalf("restorable range %s .. %s", earliest, latest)
	}
	var times []time.Time
	for range 40 {
		times = append(times, earliest.Add(time.Duration(rng.Int64N(int64(span)+1))))
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	prev, between := 0, 0
	for i, at := range times {
		dst := store.NewMem(fmt.Sprintf("at-%d", i))
		_, got, err := checkpoint.RestoreAt(ctx, repo, at, dst, checkpoint.RestoreOptions{})
		if err != nil {
			t.Fatalf("restore at %s: %v", at, err)
		}
		k := prefixOf(restoredCounts(t, dst))
		if k < prev {
			t.Fatalf("restore at %s holds the first %d words, an earlier moment %d", at, k, prev)
		}
		prev = k
		if !atCheckpoint[k] {
			between++
		}
		if got.Changes > 0 && got.Checkpoint != got.Base+1 {
			t.Fatalf("restore at %s: %+v", at, got)
		}
	}
	if between*2 < len(times) {
		t.Fatalf("only %d of %d moments landed between checkpoints; the test shows little beyond restore", between, len(times))
	}
	t.Logf("%d checkpoints; %d of %d moments between them; the last holds the first %d of %d words", len(ids), between, len(times), prev, len(words))

	// Outside the range: refused, naming it.
	for _, at := range []time.Time{earliest.Add(-time.Second), latest.Add(time.Second)} {
		_, _, err := checkpoint.RestoreAt(ctx, repo, at, store.NewMem("out"), checkpoint.RestoreOptions{})
		if !errors.Is(err, checkpoint.ErrTimeNotRetained) || !strings.Contains(err.Error(), earliest.Format(time.RFC3339Nano)) {
			t.Fatalf("restore at %s: %v; want ErrTimeNotRetained naming the range", at, err)
		}
	}
}
