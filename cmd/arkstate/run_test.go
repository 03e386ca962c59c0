package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodPipeline is the crash tests' word count on a local store.
var goodPipeline = fmt.Sprintf(crashConfig, "local", 200, "")

// Each bad setup fails with a one-line error naming the problem, the
// contract's exit code, and without writing anything.
func TestRun_ErrBadSetup(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string
		env    map[string]string
		setup  func(t *testing.T, dir string)
		args   []string
		code   int
		want   string
	}{
		{name: "ErrMetricsAddr", config: goodPipeline, args: []string{"--metrics-addr", "127.0.0.1:99999"}, code: exitUsage, want: "--metrics-addr 127.0.0.1:99999"},
		{name: "ErrUnknownField", config: strings.Replace(goodPipeline, "key: word}", "keyy: word}", 1), code: exitUsage, want: `unknown field "keyy"`},
		{name: "ErrBadEnv", config: goodPipeline, env: map[string]string{"ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS": "soon"}, code: exitUsage, want: "ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS"},
		{name: "ErrMissingInput", config: strings.Replace(goodPipeline, "input.txt", "missing.txt", 1), code: exitUsage, want: "missing.txt"},
		{name: "ErrOutputNotWritable", config: goodPipeline, setup: func(t *testing.T, dir string) {
			// A file where the output directory should be.
			if err := os.WriteFile(filepath.Join(dir, "out"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, code: exitUsage, want: "out"},
		{name: "ErrJobMismatch", config: goodPipeline, setup: func(t *testing.T, dir string) {
			cfg := strings.Replace(goodPipeline, "path: ./state", "path: ./state\n  job_id: another", 1)
			other := filepath.Join(dir, "other.yaml")
			if err := os.WriteFile(other, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, stderr, code := cliRun(t, "", "run", "-c", other, "--log-level", "error"); code != 0 {
				t.Fatalf("setup run exited %d: %s", code, stderr)
			}
			os.RemoveAll(filepath.Join(dir, "out"))
		}, code: exitUsage, want: "different job"},
		{name: "ErrKeyGroupMismatch", config: strings.Replace(goodPipeline, "path: ./state", "path: ./state\n  key_groups: 64", 1), setup: func(t *testing.T, dir string) {
			cfg := filepath.Join(dir, "first.yaml")
			if err := os.WriteFile(cfg, []byte(goodPipeline), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, stderr, code := cliRun(t, "", "run", "-c", cfg, "--log-level", "error"); code != 0 {
				t.Fatalf("setup run exited %d: %s", code, stderr)
			}
			os.RemoveAll(filepath.Join(dir, "out"))
		}, code: exitUsage, want: "key groups"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte("a b a\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if c.setup != nil {
				c.setup(t, dir)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg := filepath.Join(dir, "pipeline.yaml")
			if err := os.WriteFile(cfg, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			before := listFiles(t, dir)
			_, stderr, code := cliRun(t, "", append([]string{"run", "-c", cfg, "--log-level", "error"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, c.code, c.want)
			}
			if after := listFiles(t, dir); after != before {
				t.Fatalf("files changed by a failed run:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// listFiles names every file under dir with its size, skipping the store's
// lock file (taking a lock is not writing data).
func listFiles(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".arkstate-") {
			return err
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + ":" + string(rune('0'+info.Size()%10)) + " ")
		return nil
	})
	return b.String()
}

// A transaction log on a backend it is not kept for yet is refused before
// anything is written, rather than accepted and not kept.
func TestRun_TxlogBackend(t *testing.T) {
	dir := t.TempDir()
	cfg := writePipeline(t, dir, `streams:
  - {id: s, input: {type: generate, count: 10}, output: {type: file, path: out/}}
state: {enabled: true, backend_type: memory, exactly_once: true, txlog: {enabled: true}}
`)
	_, stderr, code := cliRun(t, "", "run", "-c", cfg, "-q")
	if code != exitUsage || !strings.Contains(stderr, "state.txlog.enabled") || !strings.Contains(stderr, "local") {
		t.Fatalf("exit %d, stderr %q; want exit %d naming state.txlog.enabled and local", code, stderr, exitUsage)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Fatalf("the refused run created its output: %v", err)
	}
}
