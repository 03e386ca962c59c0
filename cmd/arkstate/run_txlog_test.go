package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/store"
)

// txlogPipeline writes into dir the word count of a generated input on a
// local store with the transaction log on (segment_bytes 0: the default)
// and returns the file's path.
func txlogPipeline(t *testing.T, dir string, intervalMS, segmentBytes int) string {
	t.Helper()
	txlog := "{enabled: true}"
	if segmentBytes > 0 {
		txlog = fmt.Sprintf("{enabled: true, segment_bytes: %d}", segmentBytes)
	}
	return writePipeline(t, dir, fmt.Sprintf(`streams:
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
  backend_type: local
  path: ./state
  checkpoint_interval_ms: %d
  exactly_once: true
  txlog: %s
`, intervalMS, txlog))
}

// openDirRepo opens the checkpoint store in dir; it is closed when t ends.
func openDirRepo(t *testing.T, dir string) *checkpoint.Repo {
	t.Helper()
	s, err := store.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	repo, err := checkpoint.OpenRepo(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// run with state.txlog on keeps the log beside a local store: txlog ls
// lists the stream's segments, verify passes, each checkpoint records its
// log position, and replay prints the stream's epochs and commits.
func TestRunTxlog_Local(t *testing.T) {
	dir := t.TempDir()
	cfg := txlogPipeline(t, dir, 50, 65536)
	if _, stderr, code := cliRun(t, "", "run", "-c", cfg, "-q"); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	store := filepath.Join(dir, "state")

	stdout, stderr, code := cliUnchanged(t, store, nil, "txlog", "ls", store, "-o", "json")
	if code != exitOK {
		t.Fatalf("txlog ls: exit %d\n%s", code, stderr)
	}
	var ls txlogLsView
	if err := json.Unmarshal([]byte(stdout), &ls); err != nil {
		t.Fatal(err)
	}
	if len(ls.Streams) != 1 || ls.Streams[0].Stream != "wordcount" || len(ls.Streams[0].Segments) < 2 || ls.Streams[0].Records < 20 { // records: a task's changes between flushes share one
		t.Fatalf("txlog ls: %s", stdout)
	}
	if _, stderr, code := cliUnchanged(t, store, nil, "txlog", "verify", store); code != exitOK {
		t.Fatalf("txlog verify: exit %d\n%s", code, stderr)
	}
	// The log's objects are no checkpoint's business: verify passes and gc
	// leaves them alone.
	if stdout, stderr, code := cliUnchanged(t, store, nil, "checkpoint", "verify", store, "--all"); code != exitOK {
		t.Fatalf("checkpoint verify: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, _, code := cliUnchanged(t, store, leaseFiles, "checkpoint", "gc", store, "--dry-run", "-o", "json"); code != exitOK || strings.Contains(stdout, "txlog/") {
		t.Fatalf("checkpoint gc --dry-run: exit %d\n%s", code, stdout)
	}

	stdout, _, code = cliUnchanged(t, store, nil, "checkpoint", "show", store, "latest", "-o", "json")
	var show struct {
		Txlog *struct {
			Stream string `json:"stream"`
			LSN    uint64 `json:"lsn"`
		} `json:"txlog"`
	}
	if err := json.Unmarshal([]byte(stdout), &show); code != exitOK || err != nil || show.Txlog == nil || show.Txlog.Stream != "wordcount" || show.Txlog.LSN == 0 {
		t.Fatalf("checkpoint show: exit %d, %v\n%s", code, err, stdout)
	}

	stdout, stderr, code = cliUnchanged(t, store, nil, "txlog", "replay", store, "--stream", "wordcount")
	if code != exitOK {
		t.Fatalf("txlog replay: exit %d\n%s", code, stderr)
	}
	for _, kind := range []string{"epoch-begin", "mutation", "position", "txn-prepare", "epoch-end", "txn-commit"} {
		if !strings.Contains(stdout, kind) {
			t.Errorf("txlog replay prints no %s record", kind)
		}
	}
}

// A log whose oldest segments are gone no longer covers the checkpoints
// that need them: txlog verify says which, and exits 1.
func TestTxlogVerify_Uncovered(t *testing.T) {
	dir := t.TempDir()
	cfg := txlogPipeline(t, dir, 50, 16384)
	if _, stderr, code := cliRun(t, "", "run", "-c", cfg, "-q"); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	store := filepath.Join(dir, "state")
	segs, err := filepath.Glob(filepath.Join(store, "txlog", "wordcount", "*.log"))
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	// Drop the oldest segments, as a truncation gone wrong would.
	for _, p := range segs[:len(segs)-1] {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	stdout, _, code := cliUnchanged(t, store, nil, "txlog", "verify", store, "-o", "json")
	var view txlogVerifyView
	if err := json.Unmarshal([]byte(stdout), &view); err != nil {
		t.Fatal(err)
	}
	if code != exitFindings || view.OK || len(view.Streams) != 1 {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	uncovered := 0
	for _, p := range view.Streams[0].Problems {
		if p.Kind == "uncovered-checkpoint" && strings.Contains(p.What, "the stream starts at LSN") {
			uncovered++
		}
	}
	if uncovered == 0 {
		t.Fatalf("no uncovered checkpoint reported:\n%s", stdout)
	}
	// A point-in-time restore refuses the moments the log no longer
	// reaches, naming what it can restore.
	_, stderr, code := cliRun(t, "", "checkpoint", "restore", store, "--at", "2000-01-01T00:00:00Z", "--to", filepath.Join(t.TempDir(), "x"))
	if code != exitUsage || !strings.Contains(stderr, "can restore from") && !strings.Contains(stderr, "covers no checkpoint") {
		t.Fatalf("restore --at before the log: exit %d\n%s", code, stderr)
	}
}

// checkpoint restore --at restores the state at a moment between
// checkpoints into a store that verifies, and refuses a moment the store
// does not retain with the range it can restore.
func TestCheckpointRestoreAt(t *testing.T) {
	dir := t.TempDir()
	cfg := txlogPipeline(t, dir, 100, 0)
	if _, stderr, code := cliRun(t, "", "run", "-c", cfg, "-q"); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	storeDir := filepath.Join(dir, "state")
	earliest, latest, err := checkpoint.RestorableRange(context.Background(), openDirRepo(t, storeDir))
	if err != nil {
		t.Fatal(err)
	}
	mid := earliest.Add(latest.Sub(earliest) / 2).Format(time.RFC3339Nano)

	to := filepath.Join(t.TempDir(), "restored")
	stdout, stderr, code := cliUnchanged(t, storeDir, leaseFiles, "checkpoint", "restore", storeDir, "--at", mid, "--to", to, "-o", "json")
	var view struct {
		PointInTime *checkpoint.PointInTime `json:"point_in_time"`
	}
	if err := json.Unmarshal([]byte(stdout), &view); code != exitOK || err != nil || view.PointInTime == nil || view.PointInTime.Base == 0 {
		t.Fatalf("restore --at: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if stdout, stderr, code := cliUnchanged(t, to, nil, "checkpoint", "verify", to, "--all"); code != exitOK {
		t.Fatalf("verify of the restored store: exit %d\n%s%s", code, stdout, stderr)
	}
	if view.PointInTime.Changes > 0 && view.PointInTime.Checkpoint != view.PointInTime.Base+1 {
		t.Fatalf("point in time %+v", view.PointInTime)
	}

	for _, bad := range [][]string{
		{"--at", earliest.Add(-time.Hour).Format(time.RFC3339Nano)},
		{"--at", latest.Add(time.Hour).Format(time.RFC3339Nano)},
		{"--at", "yesterday"},
		{"latest", "--at", mid},
	} {
		args := append([]string{"checkpoint", "restore", storeDir}, bad...)
		args = append(args, "--to", filepath.Join(t.TempDir(), "x"))
		_, stderr, code := cliUnchanged(t, storeDir, leaseFiles, args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", bad, code, exitUsage, stderr)
		}
		if strings.Contains(bad[1], "T") && bad[0] == "--at" && !strings.Contains(stderr, earliest.Format(time.RFC3339Nano)) {
			t.Errorf("%v: the refusal does not name the range: %s", bad, stderr)
		}
	}
}

// replay --from applies the log onto a checkpoint: from the oldest retained
// checkpoint to the log's end it rebuilds the last checkpoint's state, which
// --write-checkpoint writes into a new store that verifies; --print shows
// exactly the changes it applied, all of epochs after the base; --to stops
// at an LSN.
func TestTxlogReplay_FromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := txlogPipeline(t, dir, 50, 65536)
	if _, stderr, code := cliRun(t, "", "run", "-c", cfg, "-q"); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	src := filepath.Join(dir, "state")
	repo := openDirRepo(t, src)
	ids, err := repo.IDs(context.Background())
	if err != nil || len(ids) < 3 {
		t.Fatalf("checkpoints %v, %v: want at least 3", ids, err)
	}
	base, last := ids[0], checkpointtest.Manifest(t, repo, ids[len(ids)-1])
	baseID := strconv.FormatUint(base, 10)

	into := filepath.Join(t.TempDir(), "replayed")
	stdout, stderr, code := cliUnchanged(t, src, nil, "txlog", "replay", src, "--from", baseID, "--print", "--write-checkpoint", "--into", into, "-o", "json")
	if code != exitOK {
		t.Fatalf("replay --write-checkpoint: exit %d\n%s", code, stderr)
	}
	mutations := 0
	for _, rec := range replayRecords(t, stdout) {
		if rec.Epoch <= base {
			t.Fatalf("--print shows a record of epoch %d, which checkpoint %d already holds: %+v", rec.Epoch, base, rec)
		}
		if rec.Type == "mutation" {
			mutations++
		}
	}
	var rep txlogReplayReport
	if err := json.Unmarshal([]byte(stderr), &rep); err != nil {
		t.Fatalf("report on stderr: %v\n%s", err, stderr)
	}
	if rep.Base != base || rep.Changes != mutations || mutations == 0 || rep.Checkpoint != base+1 {
		t.Fatalf("report %+v; printed %d mutations", rep, mutations)
	}
	dst := openDirRepo(t, into)
	written := checkpointtest.Manifest(t, dst, base+1)
	for _, o := range last.Operators {
		want := checkpointtest.OperatorEntries(t, repo, last, o.ID)
		if got := checkpointtest.OperatorEntries(t, dst, written, o.ID); !slices.Equal(got, want) {
			t.Fatalf("operator %s: checkpoint %d plus the log holds %d entries, the last checkpoint %d %d", o.ID, base, len(got), last.CheckpointID, len(want))
		}
	}
	if stdout, stderr, code := cliUnchanged(t, into, nil, "checkpoint", "verify", into, "--all"); code != exitOK {
		t.Fatalf("checkpoint verify of the written store: exit %d\n%s%s", code, stdout, stderr)
	}

	// --to stops at an LSN: what is printed and applied ends there. (The
	// state at an LSN is no checkpoint's: epochs interleave in the log.
	// TestRestoreAt_Exact checks that such cuts are prefixes of the input.)
	to := checkpointtest.Manifest(t, repo, ids[1]).Txlog.LSN
	into2 := filepath.Join(t.TempDir(), "to-lsn")
	stdout, stderr, code = cliUnchanged(t, src, nil, "txlog", "replay", src, "--from", baseID, "--to", strconv.FormatUint(to, 10), "--print", "--write-checkpoint", "--into", into2, "-o", "json")
	if code != exitOK {
		t.Fatalf("replay --to: exit %d\n%s", code, stderr)
	}
	mutations = 0
	for _, rec := range replayRecords(t, stdout) {
		if rec.LSN > to {
			t.Fatalf("replay --to %d printed %+v", to, rec)
		}
		if rec.Type == "mutation" {
			mutations++
		}
	}
	if err := json.Unmarshal([]byte(stderr), &rep); err != nil || rep.Changes != mutations || rep.ToLSN != to || mutations == 0 {
		t.Fatalf("replay --to %d: report %+v (%v), %d mutations printed", to, rep, err, mutations)
	}

	// Into a store that is not empty: refused, nothing written.
	if _, stderr, code := cliUnchanged(t, into, nil, "txlog", "replay", src, "--from", baseID, "--write-checkpoint", "--into", into); code != exitUsage || !strings.Contains(stderr, "not empty") {
		t.Fatalf("replay into a non-empty store: exit %d\n%s", code, stderr)
	}
}

// replayRecords decodes txlog replay's JSON lines, failing t on a line
// that is not one record.
func replayRecords(t *testing.T, stdout string) []txlogRecordView {
	t.Helper()
	var recs []txlogRecordView
	for line := range strings.Lines(stdout) {
		var r txlogRecordView
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("replay line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}
