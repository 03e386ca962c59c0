package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/crashpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
)

// checkTxlogAfterCrashes checks the log a run kept through its crashes:
// txlog verify passes (a torn tail cut on restart is no damage), and every
// retained checkpoint plus the log's changes after it rebuilds the latest
// checkpoint's state, which fails if records a killed process logged for
// epochs its successor redid were counted.
func checkTxlogAfterCrashes(t *testing.T, storeDir string) {
	t.Helper()
	if stdout, stderr, code := cliUnchanged(t, storeDir, nil, "txlog", "verify", storeDir); code != exitOK {
		t.Fatalf("txlog verify after the crashes: exit %d\n%s%s", code, stdout, stderr)
	}
	checkpointtest.CheckTxlogReplay(t, openDirRepo(t, storeDir))
}

// The commit protocol's crash points with the transaction log on: after a
// SIGKILL at each and a recovery, the output is exact and the log still
// agrees with the checkpoints.
func TestRunCrashPoints_Txlog(t *testing.T) {
	const txlogExtra = "  txlog: {enabled: true, segment_bytes: 65536}\n"
	want := referenceCounts(t, fmt.Sprintf(crashpointConfig, "{type: file, path: out/}", "local", ""))
	for _, p := range []struct {
		point string
		at    int
		after string
	}{
		{point: crashpoint.AfterPrepare, at: 3},
		{point: crashpoint.AfterSegments, at: 3},
		{point: crashpoint.AfterLog, at: 3},
		{point: crashpoint.AfterManifest, at: 3},
		{point: crashpoint.BetweenCommits, at: 3},
		{point: crashpoint.AfterCommit, at: 3},
		{point: crashpoint.RecoverAfterCommit, at: 1, after: crashpoint.AfterManifest + ":3"},
		{point: crashpoint.BetweenPruneDeletes, at: 2},
	} {
		t.Run(p.point, func(t *testing.T) {
			dir := t.TempDir()
			writePipeline(t, dir, fmt.Sprintf(crashpointConfig, "{type: file, path: out/}", "local", txlogExtra))
			c := crashRun{t: t, dir: dir}
			if p.after != "" {
				c.mustCrash(p.after)
			}
			c.mustCrash(fmt.Sprintf("%s:%d", p.point, p.at))
			if c.run("") {
				t.Fatal("the recovery run was killed")
			}
			if got := committed(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
				t.Fatalf("after a crash at %s the committed counts differ from an uninterrupted run (%d vs %d keys)", p.point, len(got), len(want))
			}
			checkTxlogAfterCrashes(t, filepath.Join(dir, "state"))
		})
	}
}

// Random SIGKILLs with the transaction log on: the output is exact and the
// log agrees with the checkpoints, whatever moment the kills hit.
func TestRunCrash_Txlog(t *testing.T) {
	const size = 4 << 20
	kills := crashKills(t)
	cs := crashSetup{backend: "local", interval: 100, extra: "  txlog: {enabled: true, segment_bytes: 262144}\n"}
	ref := t.TempDir()
	writeCrashInput(t, filepath.Join(ref, "input.txt"), size)
	_, took := runCrashLoop(t, ref, crashSetup{backend: "local", interval: 100}, 0, 0)
	want := committed(t, filepath.Join(ref, "out"))
	crashUntilKilled(t, cs, kills, took, func(dir string) {
		writeCrashInput(t, filepath.Join(dir, "input.txt"), size)
	}, func(dir string, killed int) {
		if got := committed(t, filepath.Join(dir, "out")); !maps.Equal(got, want) {
			t.Fatalf("final counts after %d kills differ from an uninterrupted run (%d vs %d keys)", killed, len(got), len(want))
		}
		checkTxlogAfterCrashes(t, filepath.Join(dir, "state"))
		t.Logf("%d kills; output exact, the log agrees with the checkpoints", killed)
	})
}

// txlog ls --pending shows the output a crash left written but not
// visible, and nothing once the next run has committed it.
func TestTxlogPending(t *testing.T) {
	dir := t.TempDir()
	writePipeline(t, dir, fmt.Sprintf(crashpointConfig, "{type: file, path: out/}", "local", "  txlog: {enabled: true}\n"))
	c := crashRun{t: t, dir: dir}
	c.mustCrash(crashpoint.AfterManifest + ":3")
	storeDir := filepath.Join(dir, "state")
	pending := func() txlogPendingListView {
		t.Helper()
		stdout, stderr, code := cliUnchanged(t, storeDir, nil, "txlog", "ls", storeDir, "--pending", "-o", "json")
		var v txlogPendingListView
		if err := json.Unmarshal([]byte(stdout), &v); code != exitOK || err != nil {
			t.Fatalf("txlog ls --pending: exit %d, %v\n%s%s", code, err, stdout, stderr)
		}
		return v
	}
	v := pending()
	if len(v.Pending) == 0 {
		t.Fatal("no pending transaction after a crash between a manifest and its commit")
	}
	for _, p := range v.Pending {
		if p.Stream != "wordcount" || p.Epoch != 3 || p.AgeMS < 0 || p.PreparedAt == "" {
			t.Fatalf("pending %+v; want epoch 3's transactions", p)
		}
	}
	// checkpoint show gives the same transactions' prepare times.
	stdout, stderr, code := cliUnchanged(t, storeDir, nil, "checkpoint", "show", storeDir, "latest", "-o", "json")
	var show struct {
		Pending []struct {
			TxnID string `json:"txn_id"`
		} `json:"pending"`
		Prepared []struct {
			TxnID      string    `json:"txn_id"`
			PreparedAt time.Time `json:"prepared_at"`
		} `json:"pending_prepared"`
	}
	if err := json.Unmarshal([]byte(stdout), &show); code != exitOK || err != nil {
		t.Fatalf("checkpoint show: exit %d, %v\n%s", code, err, stderr)
	}
	if len(show.Prepared) != len(show.Pending) || len(show.Pending) != len(v.Pending) {
		t.Fatalf("checkpoint show lists %d pending transactions with %d prepare times; txlog ls --pending %d", len(show.Pending), len(show.Prepared), len(v.Pending))
	}
	for i, p := range show.Prepared {
		if p.TxnID != v.Pending[i].TxnID || p.PreparedAt.Format(time.RFC3339Nano) != v.Pending[i].PreparedAt {
			t.Fatalf("checkpoint show: %+v; txlog ls --pending: %+v", p, v.Pending[i])
		}
	}
	if c.run("") {
		t.Fatal("the recovery run was killed")
	}
	if v := pending(); len(v.Pending) != 0 {
		t.Fatalf("after recovery still pending: %+v", v.Pending)
	}
}

// A crash after an epoch's output was prepared and before its checkpoint
// was written: the restart's recovery aborts that output, and the log says
// so with a txn-abort for each transaction the crash left prepared.
func TestTxlogAbortAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	writePipeline(t, dir, fmt.Sprintf(crashpointConfig, "{type: file, path: out/}", "local", "  txlog: {enabled: true}\n"))
	c := crashRun{t: t, dir: dir}
	c.mustCrash(crashpoint.AfterLog + ":3")
	storeDir := filepath.Join(dir, "state")
	records := func() []txlogRecordView {
		t.Helper()
		stdout, stderr, code := cliUnchanged(t, storeDir, nil, "txlog", "replay", storeDir, "--stream", "wordcount", "-o", "json")
		if code != exitOK {
			t.Fatalf("txlog replay: exit %d\n%s", code, stderr)
		}
		return replayRecords(t, stdout)
	}
	prepared := map[string]bool{}
	for _, r := range records() {
		if r.Type == "txn-prepare" && r.Epoch == 3 {
			prepared[r.TxnID] = true
		}
	}
	if len(prepared) == 0 {
		t.Fatal("the crash after checkpoint 3's log records left no txn-prepare of epoch 3 in the log")
	}
	if c.run("") {
		t.Fatal("the recovery run was killed")
	}
	aborted := map[string]bool{}
	for _, r := range records() {
		if r.Type == "txn-abort" {
			if !prepared[r.TxnID] || r.Epoch != 3 {
				t.Fatalf("txn-abort %+v: not a transaction the crash left prepared", r)
			}
			aborted[r.TxnID] = true
		}
	}
	if !maps.Equal(aborted, prepared) {
		t.Fatalf("the log aborts %v; the crash left %v prepared", slices.Sorted(maps.Keys(aborted)), slices.Sorted(maps.Keys(prepared)))
	}
}
