package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
)

// opsFailedCheckpoint leaves what a crashed checkpoint 4 leaves: a segment
// no manifest names and a checkpoint directory without MANIFEST.
func opsFailedCheckpoint(t *testing.T, r *checkpoint.Repo) (seg, other string) {
	t.Helper()
	ctx := context.Background()
	sp, err := checkpoint.SpoolSegment(t.TempDir(), format.SegmentWriterOptions{}, func(w *format.SegmentWriter) error {
		return w.Add(&format.Entry{State: "count", KeyGroup: 1, Key: []byte("orphan"), Value: []byte("x")})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Remove()
	if _, err := r.PutSegment(ctx, sp); err != nil {
		t.Fatal(err)
	}
	other = "checkpoints/" + format.CheckpointDir(4) + "/ack-count"
	if err := r.Store().Put(ctx, other, strings.NewReader("ack"), 3); err != nil {
		t.Fatal(err)
	}
	return format.SegmentPath(sp.Hash()), other
}

func decodeGC(t *testing.T, stdout string) checkpoint.GCReport {
	t.Helper()
	var rep checkpoint.GCReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	return rep
}

func TestCheckpointGCCmd(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir, j := checkpointtest.StandardDir(t)
		seg, other := opsFailedCheckpoint(t, j.Repo)
		// Young orphans are kept by the default grace period.
		stdout, _, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "gc", dir, "-o", "json")
		rep := decodeGC(t, stdout)
		if code != exitOK || len(rep.Orphans) != 2 || rep.Deleted != 0 || rep.GraceMS != 3600000 {
			t.Fatalf("exit %d, report %+v", code, rep)
		}
		for _, o := range rep.Orphans {
			if o.Action != checkpoint.ActionGrace {
				t.Fatalf("orphan %+v", o)
			}
		}
		stdout, _, code = cliUnchanged(t, dir, leaseFiles, "checkpoint", "gc", dir, "--dry-run", "--grace", "0")
		if code != exitOK || !strings.Contains(stdout, "would delete 2") || !strings.Contains(stdout, "checkpoint directory without MANIFEST (unfinished or failed checkpoint)") ||
			!strings.Contains(stdout, "segment not referenced by any checkpoint") {
			t.Fatalf("dry run: exit %d:\n%s", code, stdout)
		}
		stdout, _, code = cliRun(t, "", "checkpoint", "gc", dir, "--grace", "0", "-o", "json")
		rep = decodeGC(t, stdout)
		if code != exitOK || rep.Deleted != 2 || rep.Orphans[0].Name != other || rep.Orphans[1].Name != seg {
			t.Fatalf("exit %d, report %+v", code, rep)
		}
		opsVerify(t, dir)
	})

	t.Run("ErrUnreadableManifest", func(t *testing.T) {
		fx := opsFixture(t, "manifest-bad-checksum")
		stdout, stderr, code := cliUnchanged(t, fx, leaseFiles, "checkpoint", "gc", fx, "--grace", "0", "-o", "json")
		rep := decodeGC(t, stdout)
		if code != exitFindings || stderr != "" || len(rep.Unreadable) != 1 || rep.Unreadable[0].Checkpoint != 3 || rep.Deleted != 0 {
			t.Fatalf("exit %d, stderr %q, report %+v", code, stderr, rep)
		}
	})

	t.Run("ErrUsage", func(t *testing.T) {
		dir, _ := checkpointtest.StandardDir(t)
		for _, args := range [][]string{
			{"checkpoint", "gc"},
			{"checkpoint", "gc", dir, "--grace", "-5m"},
			{"checkpoint", "gc", dir, "--grace", "soon"},
			{"checkpoint", "gc", t.TempDir()},
		} {
			if _, stderr, code := cliUnchanged(t, dir, leaseFiles, args...); code != exitUsage {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	})
}
