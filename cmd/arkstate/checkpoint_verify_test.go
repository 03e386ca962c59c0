package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/golden"
	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// The data-driven CLI tests run ls, show and verify over the damage matrix
// of testdata/checkpoints (see pkg/checkpoint's TestDamageMatrix) and compare
// their JSON with testdata/cli/checkpoint-*/. Regenerate the golden files
// with: go test ./cmd/arkstate -run 'TestCheckpoint' -rewrite

const (
	inspectFixtures = "../../testdata/checkpoints"
	inspectGoldens  = "../../testdata/cli"
)

// inspectCase is the part of testdata/checkpoints/cases.json these tests use.
type inspectCase struct {
	Name       string   `json:"name"`
	Object     string   `json:"object"`
	Checkpoint uint64   `json:"checkpoint"`
	Kind       string   `json:"kind"`
	Affects    []uint64 `json:"affects"`
	Structural bool     `json:"structural"`
}

// inspectCases returns the fixture cases, the good store first (with no
// damaged object).
func inspectCases(t *testing.T) []inspectCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(inspectFixtures, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var damaged []inspectCase
	if err := json.Unmarshal(data, &damaged); err != nil {
		t.Fatal(err)
	}
	return append([]inspectCase{{Name: "good", Checkpoint: 3}}, damaged...)
}

// inspectGolden compares got with the golden file, or writes it with -rewrite.
func inspectGolden(t *testing.T, path, got string) {
	t.Helper()
	if !golden.Check(t, filepath.Join(inspectGoldens, path), []byte(got)) {
		t.FailNow()
	}
}

func decodeVerifyReport(t *testing.T, stdout string) checkpoint.VerifyReport {
	t.Helper()
	var rep checkpoint.VerifyReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("verify output is not a JSON report: %v\n%s", err, stdout)
	}
	return rep
}

func TestCheckpointVerifyCmd(t *testing.T) {
	for _, c := range inspectCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			dir := filepath.Join(inspectFixtures, c.Name)
			wantCode := exitFindings
			if c.Object == "" {
				wantCode = exitOK
			}
			// Every checkpoint, deep: the golden report.
			stdout, stderr, code := cliUnchanged(t, dir, nil, "checkpoint", "verify", dir, "--all", "--deep", "-o", "json")
			if code != wantCode || stderr != "" {
				t.Fatalf("exit %d, want %d; stderr %q", code, wantCode, stderr)
			}
			inspectGolden(t, "checkpoint-verify/"+c.Name+".json", stdout)
			rep := decodeVerifyReport(t, stdout)
			if c.Object != "" && (len(rep.Problems) != 1 || rep.Problems[0].File != c.Object || rep.Problems[0].Kind != c.Kind ||
				!slices.Equal(rep.Problems[0].Checkpoints, c.Affects)) {
				t.Fatalf("problems %+v, want one naming %s (%s) for %v", rep.Problems, c.Object, c.Kind, c.Affects)
			}

			// The default: the latest checkpoint, structure only, as a table.
			stdout, _, code = cliUnchanged(t, dir, nil, "checkpoint", "verify", dir)
			wantStructural := exitOK
			if c.Structural {
				wantStructural = exitFindings
			}
			if code != wantStructural {
				t.Fatalf("verify without --deep: exit %d, want %d\n%s", code, wantStructural, stdout)
			}
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			summary := lines[len(lines)-1]
			if !strings.HasPrefix(summary, "verified 1 checkpoint (3), ") || strings.HasSuffix(summary, ": ok") == (code != exitOK) {
				t.Fatalf("summary line %q for exit %d", summary, code)
			}
			if code != exitOK && (!strings.Contains(stdout, c.Object) || !strings.Contains(stdout, "advice: ")) {
				t.Fatalf("table does not name %s with advice:\n%s", c.Object, stdout)
			}

			// One checkpoint by id, deep, as YAML.
			stdout, _, code = cliUnchanged(t, dir, nil, "checkpoint", "verify", dir, "3", "--deep", "-o", "yaml")
			if code != wantCode || !strings.Contains(stdout, "problems:") || !strings.Contains(stdout, c.Object) {
				t.Fatalf("yaml: exit %d, want %d:\n%s", code, wantCode, stdout)
			}
		})
	}
}

func TestCheckpointVerifyCmd_Sample(t *testing.T) {
	dir := filepath.Join(inspectFixtures, "good")
	total, deep := 0, 0
	for n := 1; n <= 3; n++ {
		stdout, _, code := cliUnchanged(t, dir, nil, "checkpoint", "verify", dir, "--all", "--sample", fmt.Sprintf("%d/3", n), "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		rep := decodeVerifyReport(t, stdout)
		if !rep.Deep || rep.Sample != fmt.Sprintf("%d/3", n) {
			t.Fatalf("report %+v", rep)
		}
		total, deep = rep.Totals.Segments, deep+rep.Totals.DeepSegments
	}
	if deep != total || total == 0 {
		t.Fatalf("samples 1/3..3/3 deep-checked %d segments of %d", deep, total)
	}
}

func TestCheckpointVerifyCmd_ErrUsage(t *testing.T) {
	dir := filepath.Join(inspectFixtures, "good")
	for _, args := range [][]string{
		{"--sample", "0/3"},
		{"--sample", "4/3"},
		{"--sample", "garbage"},
		{"--sample", "1/0"},
		{"--all", "3"},
		{"x7"},
		{"9"},
		{"3", "4"},
		{"-o", "xml"},
		{"--no-such-flag"},
	} {
		stdout, stderr, code := cliUnchanged(t, dir, nil, append([]string{"checkpoint", "verify", dir}, args...)...)
		if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "arkstate: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 with a message", args, code, stdout, stderr)
		}
	}
	empty := t.TempDir()
	if _, _, code := cliRun(t, "", "checkpoint", "verify", empty); code != exitUsage {
		t.Errorf("verify of a directory that is not a store: exit %d, want 2", code)
	}
}

func TestCheckpointVerifyCmd_ErrUnreachable(t *testing.T) {
	setAWSEnv(t, "AKIDTEST", "secret")
	for _, cmd := range []string{"verify", "ls"} {
		_, stderr, code := cliRun(t, "", "checkpoint", cmd, "s3://bucket/prefix", "--s3-endpoint", "http://127.0.0.1:1", "--s3-path-style")
		if code != exitIO || !strings.Contains(stderr, "unavailable") {
			t.Errorf("%s against a closed port: exit %d, stderr %q; want 3", cmd, code, stderr)
		}
	}
}

// TestCheckpointInspectCmds_S3 runs ls, show and verify against a store
// written into a real S3 server.
func TestCheckpointInspectCmds_S3(t *testing.T) {
	ctx := context.Background()
	srv, err := s3test.Start(ctx)
	if err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	bucket := srv.NewBucket(t)
	s, err := store.NewS3(ctx, bucket, "job", store.S3Options{
		Endpoint: srv.Endpoint, Region: s3test.Region, PathStyle: true, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := checkpointtest.Standard(t, s)
	setAWSEnv(t, srv.AccessKey, srv.SecretKey)
	addr := "s3://" + bucket + "/job"
	flags := []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style", "-o", "json"}

	t.Run("ls", func(t *testing.T) {
		stdout, stderr, code := cliRun(t, "", append([]string{"checkpoint", "ls", addr}, flags...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var res checkpointLsResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Checkpoints) != 3 || res.Checkpoints[2].Kind != format.KindIncremental || res.Checkpoints[2].Parent != 2 ||
			res.Checkpoints[0].Status != checkpoint.StatusOK || !res.Checkpoints[0].KeysExact {
			t.Fatalf("ls %+v", res.Checkpoints)
		}
	})
	t.Run("show", func(t *testing.T) {
		stdout, stderr, code := cliRun(t, "", append([]string{"checkpoint", "show", addr, "latest", "--segments"}, flags...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var m format.Manifest
		if err := json.Unmarshal([]byte(stdout), &m); err != nil {
			t.Fatal(err)
		}
		want, err := j.Repo.Manifest(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if m.CheckpointID != 3 || len(m.Operators) != len(want.Operators) || !strings.Contains(stdout, `"blocks"`) {
			t.Fatalf("show output:\n%s", stdout)
		}
	})
	t.Run("verify", func(t *testing.T) {
		stdout, stderr, code := cliRun(t, "", append([]string{"checkpoint", "verify", addr, "--all", "--deep"}, flags...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
		}
		rep := decodeVerifyReport(t, stdout)
		if rep.Totals.Checkpoints != 3 || rep.Totals.DeepSegments != rep.Totals.Segments || rep.Totals.Segments == 0 {
			t.Fatalf("totals %+v", rep.Totals)
		}
		m3, err := j.Repo.Manifest(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		l := m3.Operators[1].Ranges[0].Layers[2]
		victim := format.SegmentPath(l.Hash)
		data := make([]byte, l.Size)
		obj, err := s.Open(ctx, victim)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := obj.ReadAt(data, 0); err != nil {
			t.Fatal(err)
		}
		obj.Close()
		data[l.Size/3] ^= 0x01
		if err := s.Put(ctx, victim, bytes.NewReader(data), l.Size); err != nil {
			t.Fatal(err)
		}
		stdout, _, code = cliRun(t, "", append([]string{"checkpoint", "verify", addr, "--deep"}, flags...)...)
		rep = decodeVerifyReport(t, stdout)
		if code != exitFindings || len(rep.Problems) != 1 || rep.Problems[0].File != victim {
			t.Fatalf("exit %d, problems %+v; want exit 1 naming %s", code, rep.Problems, victim)
		}
	})
}

// A store with no checkpoint has nothing to verify: verify says so and
// exits 1, as a store that lost every manifest looks the same, unless
// --allow-empty says an empty store is expected. Before, --all passed.
func TestCheckpointVerify_Empty(t *testing.T) {
	dir := t.TempDir()
	s, err := store.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.InitRepo(context.Background(), s, checkpointtest.JobID, checkpointtest.KeyGroups); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, args := range [][]string{{}, {"--all"}, {"--all", "--deep"}} {
		stdout, stderr, code := cliUnchanged(t, dir, leaseFiles, append([]string{"checkpoint", "verify", dir, "-o", "json"}, args...)...)
		var rep checkpoint.VerifyReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != exitFindings || !rep.Empty || !strings.Contains(stderr, "--allow-empty") {
			t.Fatalf("verify %v of an empty store: exit %d, %v, empty %v\n%s%s", args, code, err, rep.Empty, stdout, stderr)
		}
		stdout, stderr, code = cliUnchanged(t, dir, leaseFiles, append([]string{"checkpoint", "verify", dir, "--allow-empty"}, args...)...)
		if code != exitOK || !strings.Contains(stdout, "nothing to verify") {
			t.Fatalf("verify %v --allow-empty of an empty store: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	// A store with checkpoints is not affected by the flag.
	full, _ := checkpointtest.StandardDir(t)
	if stdout, stderr, code := cliUnchanged(t, full, leaseFiles, "checkpoint", "verify", full, "--all", "--allow-empty"); code != exitOK || strings.Contains(stdout, "nothing to verify") {
		t.Fatalf("verify --all --allow-empty of a store with checkpoints: exit %d\n%s%s", code, stdout, stderr)
	}
}
