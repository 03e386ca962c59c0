package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// opsCounts restores operator "count" of checkpoint 3 from the store at dir
// and compares it with the live job.
func opsCounts(t *testing.T, s store.Store, j *checkpointtest.Job) {
	t.Helper()
	ctx := context.Background()
	r, err := checkpoint.OpenRepo(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RestoreBackend(ctx, m, "count", b); err != nil {
		t.Fatal(err)
	}
	v, err := state.NewValue(b, state.Descriptor[uint64]{Name: "count"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 700 {
		want, wantOK := j.Count(t, checkpointtest.Word(i))
		got, ok, err := v.Get(checkpointtest.Word(i))
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("%s: restored %d,%v,%v; live %d,%v", checkpointtest.Word(i), got, ok, err, want, wantOK)
		}
	}
}

// opsDirCounts is opsCounts on the directory store at dir.
func opsDirCounts(t *testing.T, dir string, j *checkpointtest.Job) {
	t.Helper()
	s, err := store.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opsCounts(t, s, j)
}

// opsVerify runs `checkpoint verify --all --deep` on a store.
func opsVerify(t *testing.T, args ...string) {
	t.Helper()
	stdout, stderr, code := cliRun(t, "", append([]string{"checkpoint", "verify"}, append(args, "--all", "--deep")...)...)
	if code != exitOK {
		t.Fatalf("verify of the restored store: exit %d\n%s%s", code, stdout, stderr)
	}
}

func decodePlan(t *testing.T, stdout string) checkpoint.RestorePlan {
	t.Helper()
	var p checkpoint.RestorePlan
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	return p
}

func TestCheckpointRestoreCmd(t *testing.T) {
	src, j := checkpointtest.StandardDir(t)

	t.Run("OK", func(t *testing.T) {
		to := filepath.Join(t.TempDir(), "restored")
		stdout, stderr, code := cliUnchanged(t, src, leaseFiles, "checkpoint", "restore", src, "latest", "--to", to, "-o", "json")
		if code != exitOK || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		p := decodePlan(t, stdout)
		if !p.Completed || p.Checkpoint != 3 || !slices.Equal(p.Chain, []uint64{1, 2, 3}) || p.Segments == 0 {
			t.Fatalf("plan %+v", p)
		}
		opsVerify(t, to)
		opsDirCounts(t, to, j)
	})

	t.Run("OKTable", func(t *testing.T) {
		to := filepath.Join(t.TempDir(), "restored")
		stdout, _, code := cliRun(t, "", "checkpoint", "restore", src, "2", "--to", "file://"+to)
		if code != exitOK || !strings.Contains(stdout, "status:") || !strings.Contains(stdout, "restored") || !strings.Contains(stdout, "1,2") {
			t.Fatalf("exit %d:\n%s", code, stdout)
		}
	})

	t.Run("OKDryRun", func(t *testing.T) {
		to := filepath.Join(t.TempDir(), "not-yet")
		stdout, stderr, code := cliUnchanged(t, src, leaseFiles, "checkpoint", "restore", src, "3", "--to", to, "--dry-run", "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if p := decodePlan(t, stdout); !p.DryRun || p.Completed || p.Files != p.Segments+4 {
			t.Fatalf("plan %+v", p)
		}
		if _, err := os.Stat(to); !os.IsNotExist(err) {
			t.Fatalf("dry run created the target: %v", err)
		}
	})

	t.Run("OKS3", func(t *testing.T) {
		srv, err := s3test.Start(context.Background())
		if err != nil {
			t.Fatalf("s3test: real S3 server unavailable: %v", err)
		}
		t.Cleanup(func() { srv.Stop() })
		setAWSEnv(t, srv.AccessKey, srv.SecretKey)
		bucket := srv.NewBucket(t)
		flags := []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style", "-o", "json"}
		// Directory to S3, then S3 back to a directory.
		s3addr := "s3://" + bucket + "/restored"
		stdout, stderr, code := cliRun(t, "", append([]string{"checkpoint", "restore", src, "latest", "--to", s3addr}, flags...)...)
		plan := decodePlan(t, stdout)
		if code != exitOK || !plan.Completed {
			t.Fatalf("dir to S3: exit %d: %s%s", code, stdout, stderr)
		}
		// The target in machine output is an address the next command
		// takes, with the endpoint in a field of its own. Before, it was
		// "s3://b/p (endpoint URL)", which ls refused.
		if plan.Target != s3addr || plan.TargetEndpoint != srv.Endpoint {
			t.Fatalf("target %q, endpoint %q; want %q and %q", plan.Target, plan.TargetEndpoint, s3addr, srv.Endpoint)
		}
		if _, stderr, code := cliRun(t, "", "checkpoint", "ls", plan.Target, "--s3-endpoint", plan.TargetEndpoint, "--s3-path-style"); code != exitOK {
			t.Fatalf("ls of the target restore printed: exit %d\n%s", code, stderr)
		}
		opsVerify(t, s3addr, "--s3-endpoint", srv.Endpoint, "--s3-path-style")
		back := filepath.Join(t.TempDir(), "back")
		stdout, stderr, code = cliRun(t, "", append([]string{"checkpoint", "restore", s3addr, "3", "--to", back}, flags...)...)
		if code != exitOK || !decodePlan(t, stdout).Completed {
			t.Fatalf("S3 to dir: exit %d: %s%s", code, stdout, stderr)
		}
		opsVerify(t, back)
		opsDirCounts(t, back, j)
	})

	t.Run("ErrTargetNotEmpty", func(t *testing.T) {
		to := filepath.Join(t.TempDir(), "restored")
		if _, stderr, code := cliRun(t, "", "checkpoint", "restore", src, "2", "--to", to); code != exitOK {
			t.Fatalf("first restore: exit %d: %s", code, stderr)
		}
		before := checkpointtest.TreeHashes(t, to)
		_, stderr, code := cliRun(t, "", "checkpoint", "restore", src, "3", "--to", to)
		if code != exitUsage || !strings.Contains(stderr, "not empty") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if after := checkpointtest.TreeHashes(t, to); len(after) != len(before) {
			t.Fatal("refused restore changed the target")
		}
		if _, stderr, code := cliRun(t, "", "checkpoint", "restore", src, "3", "--to", to, "--force"); code != exitOK {
			t.Fatalf("forced restore: exit %d: %s", code, stderr)
		}
		opsVerify(t, to)
	})

	t.Run("ErrDotDot", func(t *testing.T) {
		base := t.TempDir()
		for _, to := range []string{"../x", base + "/a/../../x", "s3://bucket/a/../b", `a\..\b`} {
			_, stderr, code := cliRun(t, "", "checkpoint", "restore", src, "3", "--to", to)
			if code != exitUsage || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, `".."`) {
				t.Errorf("--to %s: exit %d, stderr %q", to, code, stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(base), "x")); !os.IsNotExist(err) {
			t.Fatalf("a refused restore created a directory: %v", err)
		}
	})

	t.Run("ErrUsage", func(t *testing.T) {
		for _, args := range [][]string{
			{"checkpoint", "restore", src, "3"},
			{"checkpoint", "restore", src, "nope", "--to", t.TempDir()},
			{"checkpoint", "restore", src, "9", "--to", filepath.Join(t.TempDir(), "x")},
			{"checkpoint", "restore", src, "3", "--to", src, "--force"},
		} {
			if _, stderr, code := cliUnchanged(t, src, leaseFiles, args...); code != exitUsage {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	})

	t.Run("ErrDamaged", func(t *testing.T) {
		data, err := os.ReadFile("../../testdata/checkpoints/cases.json")
		if err != nil {
			t.Fatal(err)
		}
		var cases []struct{ Name, Object string }
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			t.Run(tc.Name, func(t *testing.T) {
				fx := opsFixture(t, tc.Name)
				to := filepath.Join(t.TempDir(), "restored")
				_, stderr, code := cliUnchanged(t, fx, leaseFiles, "checkpoint", "restore", fx, "3", "--to", to)
				if code != exitFindings || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.Object) || !strings.Contains(stderr, "checkpoint 3") {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
				for p := range checkpointtest.TreeHashes(t, to) {
					if filepath.Base(p) != ".arkstate-lock" {
						t.Fatalf("failed restore left %s", p)
					}
				}
			})
		}
	})
}
