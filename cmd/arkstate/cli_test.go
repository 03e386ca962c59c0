package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/s3test"
)

// The CLI test harness: every in-process run of the command goes through
// cliRun, and every comparison of files before and after through
// fileHashes. The helpers of the older test files wrap them.

// cliResult is what one run of the command left.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cliRun runs arkstate with args and stdin as main does.
func cliRun(t testing.TB, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// fileHashes maps every file below root to its SHA-256 in hex; a missing
// root has none.
func fileHashes(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		sum := sha256.Sum256(b)
		out[p] = hex.EncodeToString(sum[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writePipeline writes yaml as dir/pipeline.yaml and returns its path.
func writePipeline(t testing.TB, dir, yaml string) string {
	t.Helper()
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// referenceCounts runs the word-count pipeline yaml once, uninterrupted, in
// a new directory and returns its committed counts: what a run with faults
// must end with.
func referenceCounts(t *testing.T, yaml string) map[string]uint64 {
	t.Helper()
	ref := t.TempDir()
	writePipeline(t, ref, yaml)
	if (crashRun{t: t, dir: ref}).run("") {
		t.Fatal("the reference run was killed")
	}
	return committed(t, filepath.Join(ref, "out"))
}

// startS3Env starts a real S3 server for the test and returns it, a new
// bucket, and the environment that gives the arkstate binary its
// credentials and keeps it from the machine's AWS configuration.
func startS3Env(t *testing.T) (*s3test.Server, string, []string) {
	t.Helper()
	srv, err := s3test.Start(context.Background())
	if err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	env := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
		"AWS_REGION=" + s3test.Region, "AWS_EC2_METADATA_DISABLED=true"}
	return srv, srv.NewBucket(t), env
}
