package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// recordStarts returns the offsets at which the records of a segment file
// start.
func recordStarts(t *testing.T, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sr, err := txlog.NewSegmentReader(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for {
		off := sr.Offset()
		if _, err := sr.Next(); err != nil {
			return offs
		}
		offs = append(offs, off)
	}
}

func restorableRange(t *testing.T, dir string) (time.Time, time.Time) {
	t.Helper()
	earliest, latest, err := checkpoint.RestorableRange(context.Background(), openDirRepo(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return earliest, latest
}

// The transaction log's damage matrix, each on a copy of one real log: a
// flipped bit in a sealed segment, a missing middle segment, a segment
// whose LSNs overlap its neighbour's, and a torn tail. txlog verify
// reports each as what it is, with its exit status, and checkpoint restore
// --at refuses a moment past the damage with the reason (a torn tail only
// ends the log early).
func TestTxlogDamageMatrix(t *testing.T) {
	src := t.TempDir()
	cfg := txlogPipeline(t, src, 50, 16384)
	if _, stderr, code := cliRun(t, "", "run", "-c", cfg, "-q"); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	segs, err := filepath.Glob(filepath.Join(src, "state", "txlog", "wordcount", "*.log"))
	if err != nil || len(segs) < 6 {
		t.Fatalf("segments %d, %v; want at least 6", len(segs), err)
	}
	// The middle segment S: sealed, with segments on both sides. A moment
	// at its last record needs it: that record follows the position of
	// every checkpoint completed before it.
	mid := len(segs) / 2
	var ls txlogLsView
	stdout, _, code := cliRun(t, "", "txlog", "ls", filepath.Join(src, "state"), "-o", "json")
	if err := json.Unmarshal([]byte(stdout), &ls); code != exitOK || err != nil {
		t.Fatalf("txlog ls: %d %v", code, err)
	}
	at := ls.Streams[0].Segments[mid].LastTime

	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T, segs []string)
		verify     int    // txlog verify's exit status
		kind       string // the problem verify reports
		restore    int    // restore --at S's last record
		restoreSay string
	}{
		{"flipped-bit", func(t *testing.T, segs []string) {
			offs := recordStarts(t, segs[mid])
			data, err := os.ReadFile(segs[mid])
			if err != nil {
				t.Fatal(err)
			}
			data[offs[len(offs)-1]+10] ^= 0x04
			if err := os.WriteFile(segs[mid], data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, exitFindings, "damage", exitFindings, "checksum"},
		{"missing-middle-segment", func(t *testing.T, segs []string) {
			if err := os.Remove(segs[mid]); err != nil {
				t.Fatal(err)
			}
		}, exitFindings, "damage", exitFindings, "gap"},
		{"overlapping-lsns", func(t *testing.T, segs []string) {
			// The next segment's bytes again under a name inside S's range.
			data, err := os.ReadFile(segs[mid+1])
			if err != nil {
				t.Fatal(err)
			}
			first := strings.TrimSuffix(filepath.Base(segs[mid]), ".log")
			var n uint64
			fmt.Sscan(strings.TrimLeft(first, "0"), &n)
			if err := os.WriteFile(filepath.Join(filepath.Dir(segs[mid]), fmt.Sprintf("%020d.log", n+1)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, exitFindings, "damage", exitFindings, "segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if out, err := exec.Command("cp", "-a", filepath.Join(src, "state"), dir).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			storeDir := filepath.Join(dir, "state")
			copied, _ := filepath.Glob(filepath.Join(storeDir, "txlog", "wordcount", "*.log"))
			tc.damage(t, copied)
			stdout, _, code := cliUnchanged(t, storeDir, nil, "txlog", "verify", storeDir, "-o", "json")
			if code != tc.verify || !strings.Contains(stdout, `"kind": "`+tc.kind+`"`) {
				t.Fatalf("txlog verify: exit %d, want %d with a %s problem\n%s", code, tc.verify, tc.kind, stdout)
			}
			_, stderr, code := cliUnchanged(t, storeDir, leaseFiles, "checkpoint", "restore", storeDir, "--at", at, "--to", filepath.Join(t.TempDir(), "r"))
			if code != tc.restore || !strings.Contains(strings.ToLower(stderr), tc.restoreSay) {
				t.Fatalf("restore --at %s: exit %d, want %d saying %q\n%s", at, code, tc.restore, tc.restoreSay, stderr)
			}
		})
	}

	t.Run("torn-tail", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("cp", "-a", filepath.Join(src, "state"), dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		storeDir := filepath.Join(dir, "state")
		_, before := restorableRange(t, storeDir)
		copied, _ := filepath.Glob(filepath.Join(storeDir, "txlog", "wordcount", "*.log"))
		last := copied[len(copied)-1]
		// Three bytes of the log's last record (a commit logged after the
		// last checkpoint) are what a crash mid-write leaves.
		offs := recordStarts(t, last)
		if err := os.Truncate(last, offs[len(offs)-1]+3); err != nil {
			t.Fatal(err)
		}
		stdout, _, code := cliUnchanged(t, storeDir, nil, "txlog", "verify", storeDir, "-o", "json")
		if code != exitOK || !strings.Contains(stdout, `"kind": "torn-tail"`) {
			t.Fatalf("txlog verify of a torn tail: exit %d, want 0 with a torn-tail notice\n%s", code, stdout)
		}
		_, after := restorableRange(t, storeDir)
		_, stderr, code := cliUnchanged(t, storeDir, leaseFiles, "checkpoint", "restore", storeDir, "--at", before.Format(time.RFC3339Nano), "--to", filepath.Join(t.TempDir(), "r"))
		switch {
		case after.Before(before) && (code != exitUsage || !strings.Contains(stderr, "can restore from")):
			t.Fatalf("restore --at the old end of the log (%s, now %s): exit %d, want %d naming the range\n%s", before, after, code, exitUsage, stderr)
		case !after.Before(before) && code != exitOK:
			t.Fatalf("restore --at the end of the log, which the cut records shared with the one kept: exit %d\n%s", code, stderr)
		}
		if _, stderr, code := cliUnchanged(t, storeDir, leaseFiles, "checkpoint", "restore", storeDir, "--at", at, "--to", filepath.Join(t.TempDir(), "r2")); code != exitOK {
			t.Fatalf("restore --at a moment before the torn tail: exit %d\n%s", code, stderr)
		}
	})
}
