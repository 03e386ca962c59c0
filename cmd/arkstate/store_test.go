package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/store"
)

// TestStoreCmds_Hybrid opens hybrid stores from the CLI, by address and by
// --remote, and shows that ls, verify and restore read through to the
// remote copy when the local side is empty or damaged.
func TestStoreCmds_Hybrid(t *testing.T) {
	src, j := checkpointtest.StandardDir(t)
	srv, err := s3test.Start(context.Background())
	if err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	setAWSEnv(t, srv.AccessKey, srv.SecretKey)
	bucket := srv.NewBucket(t)
	s3flags := []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style"}
	remote := "s3://" + bucket + "/job"
	if _, stderr, code := cliRun(t, "", append([]string{"checkpoint", "restore", src, "latest", "--to", remote}, s3flags...)...); code != exitOK {
		t.Fatalf("restore to S3: exit %d: %s", code, stderr)
	}

	t.Run("EmptyLocal", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "local")
		addr, err := store.HybridAddress(local, remote)
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := cliRun(t, "", append([]string{"checkpoint", "ls", addr, "-o", "json"}, s3flags...)...)
		if code != exitOK || !strings.Contains(stdout, `"checkpoint_id": `+jsonNumber(3)) {
			t.Fatalf("ls %s: exit %d\n%s%s", addr, code, stdout, stderr)
		}
		opsVerify(t, append([]string{addr}, s3flags...)...)
		back := filepath.Join(t.TempDir(), "back")
		if _, stderr, code := cliRun(t, "", append([]string{"checkpoint", "restore", addr, "3", "--to", back}, s3flags...)...); code != exitOK {
			t.Fatalf("restore from %s: exit %d: %s", addr, code, stderr)
		}
		opsDirCounts(t, back, j)
	})

	t.Run("DamagedLocal", func(t *testing.T) {
		// The local side is the source directory with every segment
		// truncated: restore reads each from the remote copy.
		local := filepath.Join(t.TempDir(), "local")
		if err := os.CopyFS(local, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		damaged := 0
		err := filepath.WalkDir(filepath.Join(local, "segments"), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			damaged++
			return os.Truncate(p, 10)
		})
		if err != nil || damaged == 0 {
			t.Fatalf("damaged %d segments: %v", damaged, err)
		}
		// The relative spelling with --remote, from the local side's parent.
		t.Chdir(filepath.Dir(local))
		back := filepath.Join(t.TempDir(), "back")
		args := append([]string{"checkpoint", "restore", "local", "3", "--to", back, "--remote", remote}, s3flags...)
		if _, stderr, code := cliRun(t, "", args...); code != exitOK {
			t.Fatalf("restore through the damaged local side: exit %d: %s", code, stderr)
		}
		opsDirCounts(t, back, j)
	})

	t.Run("ErrUsage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"checkpoint", "ls", "hybrid:///tmp/x"}, "remote=ADDRESS"},
			{[]string{"checkpoint", "ls", "hybrid:///tmp/x?remote=" + remote + "&region=x"}, `unknown parameter "region"`},
			{[]string{"checkpoint", "ls", "hybrid:///tmp/x?remote=hybrid:///tmp/y"}, "cannot be hybrid"},
			{[]string{"checkpoint", "ls", remote, "--remote", remote}, "must be a directory"},
		} {
			_, stderr, code := cliRun(t, "", append(tc.args, s3flags...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, exitUsage, tc.want)
			}
		}
	})
}

// The CLI reads the ARKFLOW_STATE_S3_* variables with run's parser: values
// are trimmed, a bad one names the variable (exit 2), flags win, and the
// variables of other settings are none of its business.
func TestStoreFlags_Env(t *testing.T) {
	t.Setenv("ARKFLOW_STATE_S3_PATH_STYLE", " true ")
	t.Setenv("ARKFLOW_STATE_S3_USE_SSL", "false")
	t.Setenv("ARKFLOW_STATE_S3_REGION", "eu-west-1")
	t.Setenv("ARKFLOW_STATE_KEY_GROUPS", "not a number")
	var f storeFlags
	cmd := &cobra.Command{Use: "x"}
	f.addFlags(cmd)
	o, err := f.options(cmd)
	if err != nil || !o.S3.PathStyle || !o.S3.DisableSSL || o.S3.Region != "eu-west-1" {
		t.Fatalf("options = %+v, %v", o.S3, err)
	}
	if err := cmd.Flags().Set("s3-region", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Flags().Set("s3-path-style", "false"); err != nil {
		t.Fatal(err)
	}
	if o, err = f.options(cmd); err != nil || o.S3.PathStyle || o.S3.Region != "us-east-1" {
		t.Fatalf("options with flags = %+v, %v; want the flags to win", o.S3, err)
	}
	t.Setenv("ARKFLOW_STATE_S3_USE_SSL", "nope")
	if _, err := f.options(cmd); exitCode(err) != exitUsage || !strings.Contains(fmt.Sprint(err), "ARKFLOW_STATE_S3_USE_SSL") {
		t.Fatalf("a bad variable: %v (exit %d); want exit 2 naming it", err, exitCode(err))
	}
}
