package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyExample copies examples/<name> (without state or output left by a
// local run) into a temporary directory.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "state" || rel == "out" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func runExample(t *testing.T, dir string) {
	t.Helper()
	for i := range 2 { // the second run finds the input consumed and adds nothing
		if code := run(context.Background(), []string{"run", "-c", filepath.Join(dir, "pipeline.yaml"), "--log-level", "warn"}); code != 0 {
			t.Fatalf("run %d of %s exited %d", i+1, dir, code)
		}
	}
}

func TestExamples_WordCount(t *testing.T) {
	dir := copyExample(t, "word_count")
	runExample(t, dir)
	want := map[string]uint64{}
	f, err := os.Open(filepath.Join(dir, "input.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sep := regexp.MustCompile(`[^a-z0-9']+`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, w := range sep.Split(strings.ToLower(sc.Text()), -1) {
			if w != "" {
				want[w]++
			}
		}
	}
	if got := committed(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
		t.Fatalf("counts differ from a direct count of the input: %d keys vs %d", len(got), len(want))
	}
}

func TestExamples_StatefulPipeline(t *testing.T) {
	dir := copyExample(t, "stateful_pipeline")
	runExample(t, dir)
	data, err := os.ReadFile(filepath.Join(dir, "orders.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	seen := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		var o struct {
			ID     string  `json:"order_id"`
			User   string  `json:"user"`
			Amount float64 `json:"amount"`
		}
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatal(err)
		}
		if seen[o.ID] || o.Amount <= 0 {
			seen[o.ID] = true
			continue
		}
		seen[o.ID] = true
		size := "small"
		if o.Amount >= 100 {
			size = "large"
		}
		want[fmt.Sprintf("%s/%s", o.User, size)]++
	}
	if got := committed(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
}

func TestExamples_SessionWindow(t *testing.T) {
	dir := copyExample(t, "session_window")
	runExample(t, dir)
	lines := committedLines(t, filepath.Join(dir, "out"))
	if len(lines) == 0 {
		t.Fatal("no sessions emitted")
	}
	// Sessions of one user never overlap and are at least the gap apart.
	type window struct{ start, end int64 }
	byUser := map[string][]window{}
	events := 0
	for l := range lines {
		var w struct {
			Key   string `json:"key"`
			Start int64  `json:"window_start"`
			End   int64  `json:"window_end"`
			Count int    `json:"count"`
		}
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatal(err)
		}
		byUser[w.Key] = append(byUser[w.Key], window{w.Start, w.End})
		events += w.Count
	}
	for u, ws := range byUser {
		for i := range ws {
			for j := range ws {
				if i != j && ws[i].start < ws[j].end && ws[j].start < ws[i].end {
					t.Fatalf("user %s: sessions %v and %v overlap", u, ws[i], ws[j])
				}
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); events > n || events < n*9/10 {
		t.Fatalf("sessions hold %d events of %d (only late ones may be dropped)", events, n)
	}
}
