package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/store"
)

// opsLongHistory writes 10 checkpoints into a new directory: 1 full, 2..8
// incremental on it, 9 full (the chain reached its limit) and 10
// incremental on 9.
func opsLongHistory(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := store.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	j := checkpointtest.NewJob(t, s)
	for i := range 10 {
		j.Apply(t, i*40, i*40+200)
		j.Checkpoint(t)
	}
	return dir
}

func decodePrune(t *testing.T, stdout string) checkpoint.PruneReport {
	t.Helper()
	var rep checkpoint.PruneReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	return rep
}

func TestCheckpointPruneCmd(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := opsLongHistory(t)
		stdout, stderr, code := cliRun(t, "", "checkpoint", "prune", dir, "--keep-last", "1", "--grace", "0", "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		rep := decodePrune(t, stdout)
		if !slices.Equal(rep.Deleted, []uint64{1, 2, 3, 4, 5, 6, 7, 8}) || len(rep.Kept) != 2 ||
			rep.Kept[0].ID != 9 || !strings.Contains(rep.Kept[0].Reason, "ancestor of 10") || rep.GC == nil || rep.GC.Deleted == 0 {
			t.Fatalf("report %+v", rep)
		}
		opsVerify(t, dir)
		// Nothing is left for gc.
		stdout, _, code = cliUnchanged(t, dir, leaseFiles, "checkpoint", "gc", dir, "--grace", "0", "-o", "json")
		var gc checkpoint.GCReport
		if err := json.Unmarshal([]byte(stdout), &gc); err != nil || code != exitOK || len(gc.Orphans) != 0 {
			t.Fatalf("gc after prune: exit %d, %v, %+v", code, err, gc)
		}
	})

	t.Run("OKDryRun", func(t *testing.T) {
		dir := opsLongHistory(t)
		stdout, _, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "prune", dir, "--keep-last", "2", "--dry-run")
		if code != exitOK || !strings.Contains(stdout, "would delete 8") || !strings.Contains(stdout, "would delete") {
			t.Fatalf("exit %d:\n%s", code, stdout)
		}
	})

	t.Run("ErrUnreadableManifest", func(t *testing.T) {
		fx := opsFixture(t, "manifest-bad-checksum")
		stdout, stderr, code := cliUnchanged(t, fx, leaseFiles, "checkpoint", "prune", fx, "--keep-last", "1", "--grace", "0")
		if code != exitFindings || stderr != "" || !strings.Contains(stdout, "unreadable manifest of checkpoint 3") {
			t.Fatalf("exit %d, stderr %q:\n%s", code, stderr, stdout)
		}
	})

	t.Run("ErrUsage", func(t *testing.T) {
		dir, _ := checkpointtest.StandardDir(t)
		for _, args := range [][]string{
			{"checkpoint", "prune", dir},
			{"checkpoint", "prune", dir, "--keep-last", "0"},
			{"checkpoint", "prune", dir, "--keep-last", "1", "--grace", "-1s"},
			{"checkpoint", "prune", dir, "--keep-last", "x"},
		} {
			if _, stderr, code := cliUnchanged(t, dir, leaseFiles, args...); code != exitUsage {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	})
}
