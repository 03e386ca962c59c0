package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// backendEntries returns every live entry of be, as a full snapshot writes
// them, rendered for comparison.
func backendEntries(t *testing.T, be *state.Backend) []string {
	t.Helper()
	snap := be.Snapshot(state.Full)
	defer snap.Release(true)
	var buf bytes.Buffer
	w := format.NewSegmentWriter(&buf, format.SegmentWriterOptions{})
	if err := snap.WriteTo(w); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seg, err := format.OpenSegment(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "snap")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	it := seg.Iter(0, be.KeyGroups()-1)
	for it.Next() {
		e := it.Entry()
		out = append(out, fmt.Sprintf("%s/%d/%q=%x@%d", e.State, e.KeyGroup, e.Key, e.Value, e.ExpiresAt))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// restoreOperator loads operator op of checkpoint m into a backend owning
// every key group.
func restoreOperator(t *testing.T, repo *checkpoint.Repo, m *format.Manifest, op string) *state.Backend {
	t.Helper()
	be, err := state.NewBackend(state.Options{KeyGroups: m.KeyGroups})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.RestoreBackend(context.Background(), m, op, be); err != nil {
		t.Fatal(err)
	}
	return be
}

// With the transaction log on, every retained checkpoint plus the log's
// state changes after its position (those of later epochs) rebuilds the
// state of the last checkpoint exactly: the log holds every change, in
// order, each with its epoch.
func TestRunner_Txlog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeWords(t, filepath.Join(dir, "input.txt"), 4000, 300, 3)
	repo := openRepo(t, dir)
	spec := wordCountSpec(t, dir, 2)
	spec.Input = &slowInput{Input: spec.Input, every: 20, pause: time.Millisecond}
	r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond, Retained: 4, MaxChain: 2,
		Txlog: &TxlogOptions{Dir: filepath.Join(dir, "state"), Log: txlog.Options{SegmentSize: 16 << 10}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ids, err := repo.IDs(ctx)
	t.Logf("checkpoints %v", ids)
	if err != nil || len(ids) < 3 {
		t.Fatalf("checkpoints %v, %v; want several", ids, err)
	}
	last, err := repo.Manifest(ctx, ids[len(ids)-1])
	if err != nil {
		t.Fatal(err)
	}
	op := last.Operators[0].ID
	want := backendEntries(t, restoreOperator(t, repo, last, op))
	s := repo.Store()
	withChanges := 0
	for _, id := range ids[:len(ids)-1] {
		m, err := repo.Manifest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Txlog == nil || m.Txlog.Stream != spec.ID {
			t.Fatalf("checkpoint %d has no transaction-log position: %+v", id, m.Txlog)
		}
		be := restoreOperator(t, repo, m, op)
		applied := 0
		err = txlog.AfterCheckpoint(ctx, s, m.Txlog.Stream, id, m.Txlog.LSN, 0, time.Time{}, func(rec *format.Record) error {
			if rec.Type != format.RecordMutation || rec.Epoch > last.CheckpointID || rec.Operator != op {
				return nil
			}
			applied++
			return be.Apply(&format.Entry{State: rec.State, KeyGroup: rec.KeyGroup, Key: rec.Key, Value: rec.Value, ExpiresAt: rec.ExpiresAt, Tombstone: rec.Delete})
		})
		if err != nil {
			t.Fatalf("replay from checkpoint %d: %v", id, err)
		}
		if got := backendEntries(t, be); !slices.Equal(got, want) {
			t.Fatalf("checkpoint %d plus %d logged changes: %d entries, the last checkpoint %d", id, applied, len(got), len(want))
		}
		t.Logf("checkpoint %d (log position %d): %d changes applied", id, m.Txlog.LSN, applied)
		if applied > 0 {
			withChanges++
		}
	}
	if withChanges < 2 {
		t.Fatalf("only %d checkpoints were followed by logged changes; the test shows too little", withChanges)
	}
	// The epochs' ends and the commits are logged too.
	ends, commits := 0, 0
	if err := txlog.Replay(ctx, s, spec.ID, 0, 0, time.Time{}, func(rec *format.Record) error {
		switch rec.Type {
		case format.RecordEpochEnd:
			ends++
		case format.RecordTxnCommit:
			commits++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ends == 0 || commits == 0 {
		t.Fatalf("the log holds %d epoch ends and %d commits", ends, commits)
	}
	// Retention pruned old checkpoints, and the log behind the oldest
	// retained one went with them.
	segs, err := txlog.Segments(ctx, s, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	first, err := repo.Manifest(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] == 1 || segs[0].FirstLSN == 1 || segs[0].FirstLSN > first.Txlog.LSN+1 {
		t.Fatalf("oldest checkpoint %d (log position %d), oldest segment from LSN %d: want both truncated, the log still covering the checkpoint",
			ids[0], first.Txlog.LSN, segs[0].FirstLSN)
	}
}

// BenchmarkRunner_WordCountTxlog runs the word count with checkpoints
// every second, without the transaction log and with it under each sync
// policy: the log's cost as a ratio against the same run without it.
func BenchmarkRunner_WordCountTxlog(b *testing.B) {
	for _, policy := range []string{"off", "group", "each", "interval"} {
		b.Run("txlog="+policy, func(b *testing.B) {
			dir := b.TempDir()
			writeWords(b, filepath.Join(dir, "input.txt"), 200000, 5000, 12)
			b.ResetTimer()
			for i := range b.N {
				run := filepath.Join(dir, fmt.Sprint(i))
				spec := wordCountSpec(b, dir, 2)
				spec.Output = &FileOutput{Dir: filepath.Join(run, "out"), ExactlyOnce: true}
				opts := Options{Repo: openRepo(b, run), Interval: time.Second, Retained: 5}
				if policy != "off" {
					sync, err := txlog.ParseSyncPolicy(policy)
					if err != nil {
						b.Fatal(err)
					}
					opts.Txlog = &TxlogOptions{Dir: filepath.Join(run, "state"), Log: txlog.Options{Sync: sync}}
				}
				r, err := NewRunner(spec, opts)
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
