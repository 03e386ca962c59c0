package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A run that exits 2 has written nothing: no directory, no file, no
// object in its store (CLI.md: exit 2 "before anything is written").
// Before, a missing bucket was found after the file output had made
// out/.pending.
func TestRun_ErrUsageWritesNothing(t *testing.T) {
	srv, bucket, _ := startS3Env(t)
	setAWSEnv(t, srv.AccessKey, srv.SecretKey)
	conn := fmt.Sprintf("region: us-east-1, endpoint: %q, path_style: true, use_ssl: false", srv.Endpoint)
	for _, tc := range []struct{ name, output, state string }{
		{"S3OutputNoBucket", "{type: s3, bucket: no-such-bucket, prefix: out, " + conn + "}",
			"  enabled: true\n  backend_type: local\n  path: ./state\n"},
		{"S3StateNoBucket", "{type: file, path: out/}",
			"  enabled: true\n  backend_type: s3\n  s3_config: {bucket: no-such-bucket, prefix: p, " + conn + "}\n"},
		{"HybridStateNoBucket", "{type: file, path: out/}",
			"  enabled: true\n  backend_type: hybrid\n  path: ./state\n  s3_config: {bucket: no-such-bucket, prefix: p, " + conn + "}\n"},
		{"TxlogWithoutDir", "{type: file, path: out/}",
			"  enabled: true\n  backend_type: s3\n  s3_config: {bucket: " + bucket + ", prefix: p, " + conn + "}\n  txlog: {enabled: true}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writePipeline(t, dir, fmt.Sprintf(`streams:
  - id: words
    input: {type: generate, count: 10}
    output: %s
state:
%s`, tc.output, tc.state))
			before := treePaths(t, dir)
			_, stderr, code := cliRun(t, "", "run", "-c", cfg)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2\n%s", code, stderr)
			}
			if after := treePaths(t, dir); !slices.Equal(after, before) {
				t.Fatalf("a run that exits 2 wrote %v (before: %v)\n%s", after, before, stderr)
			}
		})
	}
}

// treePaths lists every file and directory below dir.
func treePaths(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// --log-format json makes every log line a JSON object a log pipeline can
// read (log/slog's JSON handler); another format is a usage error.
func TestRun_LogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	cfg := writePipeline(t, dir, `streams:
  - id: words
    input: {type: generate, count: 100}
    output: {type: file, path: out/}
state:
  enabled: true
  backend_type: local
  path: ./state
`)
	_, stderr, code := cliRun(t, "", "run", "-c", cfg, "--log-format", "json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	lines := 0
	for line := range strings.Lines(stderr) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Fatalf("log line %q is not a JSON log record (%v)", line, err)
		}
		lines++
	}
	if lines == 0 || !strings.Contains(stderr, `"msg":"run finished"`) {
		t.Fatalf("no JSON log records, or no summary record:\n%s", stderr)
	}
	if _, stderr, code := cliRun(t, "", "run", "-c", cfg, "--log-format", "logfmt"); code != exitUsage || !strings.Contains(stderr, "--log-format") {
		t.Fatalf("--log-format logfmt: exit %d, %q; want 2", code, stderr)
	}
}
