package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/arkstate/arkstate/internal/crashpoint"
	"github.com/arkstate/arkstate/internal/s3test"
)

// The crash matrix: the real binary, killed by SIGKILL at a named point of
// the commit protocol (internal/crashpoint), then run again to the end. For
// every point, on a directory and an S3 store, with file and S3 output, the
// committed output must equal an uninterrupted run's and nothing may be left
// pending. Random kills (run_crash_test.go) rarely land in these windows.

const crashpointConfig = `streams:
  - id: wordcount
    input:  {type: generate, seed: 7, count: 8000, rate: 5000}   # paced: about 1.6 s, 40 checkpoints, so that even a loaded machine passes every point
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}
    output: %s
state:
  enabled: true
  backend_type: %s
  path: ./state
  checkpoint_interval_ms: 40
  retained_checkpoints: 2
  exactly_once: true
%s`

// crashRun is one arkstate run of a crash-matrix case.
// crashRunLimit bounds one run of a crashRun.
const crashRunLimit = 2 * time.Minute

type crashRun struct {
	t   *testing.T
	dir string
	env []string
}

// run runs the pipeline with crashAt armed ("" for none) and reports
// whether the process died of SIGKILL; any other failure fails the test.
func (c crashRun) run(crashAt string) (killed bool) {
	c.t.Helper()
	// A run that hangs (a checkpoint failing for good) fails the test
	// with its goroutines' stacks instead of stalling the suite.
	cmd := exec.Command(arkstateBinary(c.t), "run", "-c", filepath.Join(c.dir, "pipeline.yaml"), "--log-level", "warn", "-q")
	cmd.Env = append(append(os.Environ(), c.env...), crashpoint.Env+"="+crashAt)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	hung := time.AfterFunc(crashRunLimit, func() { cmd.Process.Signal(syscall.SIGQUIT) })
	err := cmd.Wait()
	if !hung.Stop() {
		out := stderr.String()
		c.t.Fatalf("run with %s=%q did not end in %v; the end of its stderr:\n%s", crashpoint.Env, crashAt, crashRunLimit, out[max(0, len(out)-16<<10):])
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		return true
	}
	if err != nil {
		c.t.Fatalf("run with %s=%q: %v\n%s", crashpoint.Env, crashAt, err, stderr.String())
	}
	return false
}

// cli runs an arkstate command with crashAt armed and reports whether it
// died of SIGKILL; any other failure fails the test.
func (c crashRun) cli(crashAt string, args ...string) (killed bool) {
	c.t.Helper()
	cmd := exec.Command(arkstateBinary(c.t), args...)
	cmd.Env = append(append(os.Environ(), c.env...), crashpoint.Env+"="+crashAt)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		return true
	}
	if err != nil {
		c.t.Fatalf("%v with %s=%q: %v\n%s", args, crashpoint.Env, crashAt, err, out)
	}
	return false
}

// mustCrash runs with crashAt armed and fails unless the point killed it.
func (c crashRun) mustCrash(crashAt string) {
	c.t.Helper()
	if !c.run(crashAt) {
		c.t.Fatalf("the run ended without passing %s: the input is too small to reach it", crashAt)
	}
}

func TestRunCrashPoints(t *testing.T) {
	want := referenceCounts(t, fmt.Sprintf(crashpointConfig, "{type: file, path: out/}", "local", ""))

	srv, bucket, env := startS3Env(t)

	// Each point with the passage that is armed; recovery's point is
	// reached on the run after a crash that left output to commit.
	points := []struct {
		point string
		at    int
		after string // a crash that must come first
		gc    bool   // the point is armed in `checkpoint gc`, not in run
	}{
		{point: crashpoint.AfterPrepare, at: 3},
		{point: crashpoint.AfterSegments, at: 3},
		{point: crashpoint.AfterManifest, at: 3},
		{point: crashpoint.BetweenCommits, at: 3},
		{point: crashpoint.AfterCommit, at: 3},
		{point: crashpoint.RecoverAfterCommit, at: 1, after: crashpoint.AfterManifest + ":3"},
		{point: crashpoint.BetweenPruneDeletes, at: 2},
		// A crash after the segments leaves orphans; gc dies deleting them.
		{point: crashpoint.BetweenGCDeletes, at: 1, after: crashpoint.AfterSegments + ":3", gc: true},
	}
	n := 0
	for _, store := range []string{"local", "s3"} {
		for _, output := range []string{"file", "s3"} {
			for _, p := range points {
				n++
				prefix := fmt.Sprintf("case-%d", n)
				t.Run(fmt.Sprintf("%s/%s-store/%s-output", p.point, store, output), func(t *testing.T) {
					dir := t.TempDir()
					out := "{type: file, path: out/}"
					if output == "s3" {
						out = fmt.Sprintf("{type: s3, bucket: %s, prefix: %s/out, endpoint: %q, region: %s, path_style: true}", bucket, prefix, srv.Endpoint, s3test.Region)
					}
					extra := ""
					if store == "s3" {
						extra = fmt.Sprintf("  s3_config: {bucket: %s, prefix: %s/state, region: %s, endpoint: %q, path_style: true, use_ssl: false}\n", bucket, prefix, s3test.Region, srv.Endpoint)
					}
					writePipeline(t, dir, fmt.Sprintf(crashpointConfig, out, store, extra))
					c := crashRun{t: t, dir: dir, env: env}
					if p.after != "" {
						c.mustCrash(p.after)
					}
					if p.gc {
						storeAddr := []string{filepath.Join(dir, "state")}
						if store == "s3" {
							storeAddr = []string{"s3://" + bucket + "/" + prefix + "/state", "--s3-endpoint", srv.Endpoint, "--s3-path-style"}
						}
						if !c.cli(fmt.Sprintf("%s:%d", p.point, p.at), append([]string{"checkpoint", "gc", "--grace", "0s"}, storeAddr...)...) {
							t.Fatalf("gc ended without passing %s", p.point)
						}
					} else {
						c.mustCrash(fmt.Sprintf("%s:%d", p.point, p.at))
					}
					if c.run("") {
						t.Fatal("the recovery run was killed")
					}
					var got map[string]uint64
					if output == "s3" {
						got = committedS3(t, srv, bucket, prefix+"/out/")
					} else {
						got = committed(t, filepath.Join(dir, "out"))
						if pending, _ := os.ReadDir(filepath.Join(dir, "out", ".pending")); len(pending) != 0 {
							t.Fatalf("%d parts left pending", len(pending))
						}
					}
					if !maps.Equal(got, want) {
						t.Fatalf("after a crash at %s the committed counts differ from an uninterrupted run (%d vs %d keys)", p.point, len(got), len(want))
					}
				})
			}
		}
	}
}

// committedS3 downloads the committed parts under prefix and returns each
// key's counts as committed does, checking that no multipart upload (a
// pending transaction) is left open.
func committedS3(t *testing.T, srv *s3test.Server, bucket, prefix string) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	c := srv.Client()
	dir := t.TempDir()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(key)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left open under %s", len(ups.Uploads), prefix)
	}
	return committed(t, dir)
}
