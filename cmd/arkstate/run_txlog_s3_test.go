package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/crashpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
)

const txlogRemoteConfig = `streams:
  - id: wordcount
    input:  {type: generate, seed: 7, count: 8000, rate: 20000}
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}
    output: {type: file, path: out/}
state:
  enabled: true
  backend_type: %s
  path: ./state
  checkpoint_interval_ms: 50
  retained_checkpoints: 4
  exactly_once: true
  s3_config: {bucket: %s, prefix: job, region: us-east-1, endpoint: %q, path_style: true, use_ssl: false}
  txlog: {enabled: true, segment_bytes: 65536, dir: %s}
`

// With an s3 or hybrid store the log is written in txlog.dir and copied to
// the store before each checkpoint commits. A writer killed after a
// checkpoint is followed by one on "another machine" (another txlog.dir):
// the store's copy has no gap and covers every checkpoint (txlog verify),
// replaying it from the oldest checkpoint rebuilds the newest (txlog
// replay --write-checkpoint), restore --at works from the store, and when
// the first machine comes back its stale local log is set aside instead of
// colliding with the store's.
func TestRunTxlog_Remote(t *testing.T) {
	for _, backend := range []string{"s3", "hybrid"} {
		t.Run(backend, func(t *testing.T) {
			srv, bucket, env := startS3Env(t)
			setAWSEnv(t, srv.AccessKey, srv.SecretKey)
			dir := t.TempDir()
			config := func(txlogDir string) {
				writePipeline(t, dir, fmt.Sprintf(txlogRemoteConfig, backend, bucket, srv.Endpoint, txlogDir))
			}
			config("./machine-a")
			c := crashRun{t: t, dir: dir, env: env}
			if !c.run(crashpoint.AfterManifest + ":4") {
				t.Fatal("the first writer was not killed")
			}
			config("./machine-b")
			if c.run("") {
				t.Fatal("the second writer was killed")
			}

			addr := []string{"s3://" + bucket + "/job", "--s3-endpoint", srv.Endpoint, "--s3-path-style"}
			cmd := func(args ...string) []string {
				return append(append(args[:len(args):len(args)], addr...), "-o", "json")
			}
			if stdout, stderr, code := cliRun(t, "", cmd("txlog", "verify")...); code != exitOK {
				t.Fatalf("txlog verify of the store's copy: exit %d\n%s%s", code, stdout, stderr)
			}

			// The newest checkpoint, and the oldest replayed to the log's end.
			latest := filepath.Join(t.TempDir(), "latest")
			if _, stderr, code := cliRun(t, "", append(cmd("checkpoint", "restore"), "latest", "--to", latest)...); code != exitOK {
				t.Fatalf("restore latest: exit %d\n%s", code, stderr)
			}
			repo := openDirRepo(t, latest)
			ids, err := repo.IDs(t.Context())
			if err != nil || len(ids) == 0 {
				t.Fatalf("restored %v, %v", ids, err)
			}
			last := checkpointtest.Manifest(t, repo, ids[len(ids)-1])
			stdout, _, _ := cliRun(t, "", cmd("checkpoint", "ls")...)
			oldest := firstCheckpointID(t, stdout)
			replayed := filepath.Join(t.TempDir(), "replayed")
			if _, stderr, code := cliRun(t, "", append(cmd("txlog", "replay"), "--from", oldest, "--write-checkpoint", "--into", replayed)...); code != exitOK {
				t.Fatalf("replay --write-checkpoint: exit %d\n%s", code, stderr)
			}
			rrepo := openDirRepo(t, replayed)
			rids, _ := rrepo.IDs(t.Context())
			written := checkpointtest.Manifest(t, rrepo, rids[len(rids)-1])
			for _, o := range last.Operators {
				want := checkpointtest.OperatorEntries(t, repo, last, o.ID)
				if got := checkpointtest.OperatorEntries(t, rrepo, written, o.ID); !slices.Equal(got, want) {
					t.Fatalf("operator %s: checkpoint %s plus the store's log holds %d entries, the newest checkpoint %d", o.ID, oldest, len(got), len(want))
				}
			}

			// restore --at works from the store: a moment before its range is
			// refused with the range, and the middle of it is restored.
			_, stderr, code := cliRun(t, "", append(cmd("checkpoint", "restore"), "--at", "2000-01-01T00:00:00Z", "--to", filepath.Join(t.TempDir(), "x"))...)
			m := regexp.MustCompile(`can restore from (\S+) \(checkpoint \d+\) to (\S+) `).FindStringSubmatch(stderr)
			if code != exitUsage || m == nil {
				t.Fatalf("restore --at before the log: exit %d\n%s", code, stderr)
			}
			from, err1 := time.Parse(time.RFC3339Nano, m[1])
			to, err2 := time.Parse(time.RFC3339Nano, m[2])
			if err1 != nil || err2 != nil || !to.After(from) {
				t.Fatalf("range %q to %q: %v %v", m[1], m[2], err1, err2)
			}
			at := filepath.Join(t.TempDir(), "at")
			mid := from.Add(to.Sub(from) / 2).Format(time.RFC3339Nano)
			if _, stderr, code := cliRun(t, "", append(cmd("checkpoint", "restore"), "--at", mid, "--to", at)...); code != exitOK {
				t.Fatalf("restore --at %s from the store: exit %d\n%s", mid, code, stderr)
			}
			if stdout, stderr, code := cliRun(t, "", "checkpoint", "verify", at, "--all"); code != exitOK {
				t.Fatalf("verify of the store restored --at: exit %d\n%s%s", code, stdout, stderr)
			}

			// Machine A comes back: its log did not write the store's newest
			// segment, so it is set aside and the store's copy stays whole.
			config("./machine-a")
			if c.run("") {
				t.Fatal("the returning writer was killed")
			}
			if aside, _ := filepath.Glob(filepath.Join(dir, "machine-a", "txlog-set-aside", "wordcount-*")); len(aside) != 1 {
				t.Fatalf("machine A's stale log was not set aside: %v", aside)
			}
			if stdout, stderr, code := cliRun(t, "", cmd("txlog", "verify")...); code != exitOK {
				t.Fatalf("txlog verify after machine A returned: exit %d\n%s%s", code, stdout, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "machine-b", "txlog", "wordcount")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// firstCheckpointID returns the oldest checkpoint's id from checkpoint ls
// JSON.
func firstCheckpointID(t *testing.T, lsJSON string) string {
	t.Helper()
	var ls checkpointLsResult
	if err := json.Unmarshal([]byte(lsJSON), &ls); err != nil || len(ls.Checkpoints) == 0 {
		t.Fatalf("checkpoint ls: %v\n%s", err, lsJSON)
	}
	return strconv.FormatUint(ls.Checkpoints[0].ID, 10)
}
