package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/txlog"
)

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
	if n := checkpointtest.CheckTxlogReplay(t, repo); n < 2 {
		t.Fatalf("only %d checkpoints were followed by logged changes; the test shows too little", n)
	}
	s := repo.Store()
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
