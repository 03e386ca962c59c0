package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/s3test"
)

// The S3 output reaches S3 as the state store does (one S3Connection): its
// own keys, while the AWS chain holds wrong ones, and use_ssl: false for an
// endpoint given without a scheme.
func TestRunS3OutputConnection(t *testing.T) {
	want := referenceCounts(t, fmt.Sprintf(crashpointConfig, "{type: file, path: out/}", "local", ""))
	srv, bucket, _ := startS3Env(t)
	host := strings.TrimPrefix(srv.Endpoint, "http://")
	wrongChain := awsEnv(t, "AKIDWRONG", "wrong-secret")
	output := func(prefix, keys string) string {
		return fmt.Sprintf("{type: s3, bucket: %s, prefix: %s, endpoint: %q, use_ssl: false, region: %s, path_style: true%s}",
			bucket, prefix, host, s3test.Region, keys)
	}

	t.Run("OwnKeys", func(t *testing.T) {
		dir := t.TempDir()
		keys := fmt.Sprintf(", access_key_id: %s, secret_access_key: %s", srv.AccessKey, srv.SecretKey)
		writePipeline(t, dir, fmt.Sprintf(crashpointConfig, output("keyed/out", keys), "local", ""))
		if (crashRun{t: t, dir: dir, env: wrongChain}).run("") {
			t.Fatal("the run was killed")
		}
		if got := committedS3(t, srv, bucket, "keyed/out/"); !maps.Equal(got, want) {
			t.Fatalf("the S3 output's committed counts differ from the file output's (%d vs %d keys)", len(got), len(want))
		}
	})
	t.Run("ChainKeys", func(t *testing.T) {
		// Without its own keys the output takes the chain's, which S3
		// refuses: so the keys above were what reached it.
		dir := t.TempDir()
		writePipeline(t, dir, fmt.Sprintf(crashpointConfig, output("chain/out", ""), "local", ""))
		cmd := exec.Command(arkstateBinary(t), "run", "-c", filepath.Join(dir, "pipeline.yaml"), "-q")
		cmd.Env = append(os.Environ(), wrongChain...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
			t.Fatalf("run with the wrong chain keys: %v, want exit %d\n%s", err, exitUsage, out)
		}
		if !strings.Contains(strings.ToLower(string(out)), "access key") {
			t.Fatalf("run with the wrong chain keys did not say the key was refused:\n%s", out)
		}
		if strings.Contains(string(out), "wrong-secret") {
			t.Fatalf("the secret key was printed:\n%s", out)
		}
	})
}
