package checkpointtest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
)

// OperatorEntries restores operator op of checkpoint m into a backend that
// owns every key group and returns its live entries, rendered one per
// string in segment order, for comparing states.
func OperatorEntries(tb testing.TB, repo *checkpoint.Repo, m *format.Manifest, op string) []string {
	tb.Helper()
	return entriesOf(tb, restoreOperator(tb, repo, m, op))
}

func restoreOperator(tb testing.TB, repo *checkpoint.Repo, m *format.Manifest, op string) *state.Backend {
	tb.Helper()
	be, err := state.NewBackend(state.Options{KeyGroups: m.KeyGroups})
	if err != nil {
		tb.Fatal(err)
	}
	if err := repo.RestoreBackend(context.Background(), m, op, be); err != nil {
		tb.Fatal(err)
	}
	return be
}

func entriesOf(tb testing.TB, be *state.Backend) []string {
	tb.Helper()
	snap := be.Snapshot(state.Full)
	defer snap.Release(true)
	var buf bytes.Buffer
	w := format.NewSegmentWriter(&buf, format.SegmentWriterOptions{})
	if err := snap.WriteTo(w); err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	seg, err := format.OpenSegment(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "snapshot")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	it := seg.Iter(0, be.KeyGroups()-1)
	for it.Next() {
		e := it.Entry()
		out = append(out, fmt.Sprintf("%s/%d/%q=%x@%d", e.State, e.KeyGroup, e.Key, e.Value, e.ExpiresAt))
	}
	if err := it.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// CheckTxlogReplay checks the promise of a transaction log kept beside the
// checkpoints of repo: every retained checkpoint before the latest, with
// the log's changes after its position (txlog.AfterCheckpoint) up to the
// latest checkpoint's epoch, rebuilds the latest checkpoint's state of
// every operator. It returns how many checkpoints had changes to apply.
func CheckTxlogReplay(tb testing.TB, repo *checkpoint.Repo) (withChanges int) {
	tb.Helper()
	ctx := context.Background()
	ids, err := repo.IDs(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if len(ids) < 2 {
		tb.Fatalf("checkpoints %v: need two to compare", ids)
	}
	last := Manifest(tb, repo, ids[len(ids)-1])
	for _, id := range ids[:len(ids)-1] {
		m := Manifest(tb, repo, id)
		if m.Txlog == nil {
			tb.Fatalf("checkpoint %d records no transaction-log position", id)
		}
		backends, changes, err := repo.ReplayLog(ctx, m, 0, time.Time{}, func(rec *format.Record) bool { return rec.Epoch <= last.CheckpointID })
		if err != nil {
			tb.Fatalf("replay after checkpoint %d: %v", id, err)
		}
		for _, o := range last.Operators {
			want := OperatorEntries(tb, repo, last, o.ID)
			if got := entriesOf(tb, backends[o.ID]); !slices.Equal(got, want) {
				tb.Fatalf("operator %s: checkpoint %d plus the log's changes after it holds %d entries, checkpoint %d %d: the log and the checkpoints disagree",
					o.ID, id, len(got), last.CheckpointID, len(want))
			}
		}
		if changes > 0 {
			withChanges++
		}
	}
	return withChanges
}
