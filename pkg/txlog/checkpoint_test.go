package txlog

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
)

// What a log adds to a checkpoint: later epochs only, and nothing a
// crashed writer logged before its successor began the epoch again.
func TestAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, "main", Options{})
	begin := func(e uint64) *format.Record { return &format.Record{Type: format.RecordEpochBegin, Epoch: e} }
	mut := func(e uint64, key string) *format.Record {
		return &format.Record{Type: format.RecordMutation, Epoch: e, Operator: "op", State: "s", Key: []byte(key), Value: []byte("v")}
	}
	for _, rec := range []*format.Record{
		begin(1), mut(1, "a"), // LSN 1, 2: checkpoint 1 records position 2
		begin(2), mut(2, "b"), mut(1, "late"), {Type: format.RecordEpochEnd, Epoch: 1, Checkpoint: 1},
		begin(3), mut(3, "c"), // LSN 7, 8: the writer dies here
		begin(2), mut(2, "d"), begin(3), mut(3, "e"), // LSN 9..12: restarted from checkpoint 1
	} {
		if _, err := l.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	closeLog(t, l)
	s := dirStore(t, dir)
	collect := func(id, from, to uint64) []uint64 {
		t.Helper()
		var lsns []uint64
		if err := AfterCheckpoint(context.Background(), s, "main", id, from, to, time.Time{}, func(rec *format.Record) error {
			lsns = append(lsns, rec.LSN)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return lsns
	}
	if got, want := collect(1, 2, 0), []uint64{9, 10, 11, 12}; !slices.Equal(got, want) {
		t.Fatalf("after checkpoint 1: LSNs %v, want %v", got, want)
	}
	if got, want := collect(1, 2, 8), []uint64{3, 4, 7, 8}; !slices.Equal(got, want) {
		t.Fatalf("after checkpoint 1 up to LSN 8 (before the restart): %v, want %v", got, want)
	}
}

func TestCheckCoverage(t *testing.T) {
	rep := &Report{Stream: "main", Segments: []SegmentSummary{{}}, FirstLSN: 10, LastLSN: 50}
	CheckCoverage(rep, []CheckpointPosition{
		{Checkpoint: 1, LSN: 5},  // needs LSN 6 on: gone
		{Checkpoint: 2, LSN: 9},  // needs LSN 10 on: covered
		{Checkpoint: 3, LSN: 50}, // covered up to its position
		{Checkpoint: 4, LSN: 60}, // past the end of the log
	})
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.What)
	}
	if len(got) != 2 || !strings.Contains(got[0], "checkpoint 1 ") || !strings.Contains(got[1], "checkpoint 4 ") || !rep.Damaged() {
		t.Fatalf("problems %q, damaged %v", got, rep.Damaged())
	}
}

// A transaction is pending from its prepare to its commit or abort; a
// restart voids what the dead writer prepared for the epochs it redoes.
func TestPending(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, "main", Options{})
	txn := func(typ format.RecordType, epoch uint64, id string) *format.Record {
		return &format.Record{Type: typ, Epoch: epoch, Output: "out", TxnID: id}
	}
	for _, rec := range []*format.Record{
		{Type: format.RecordEpochBegin, Epoch: 1},
		{Type: format.RecordEpochBegin, Epoch: 2},
		txn(format.RecordTxnPrepare, 1, "a"), txn(format.RecordTxnCommit, 1, "a"),
		txn(format.RecordTxnPrepare, 1, "b"), // listed by checkpoint 1, its commit not logged yet
		{Type: format.RecordEpochBegin, Epoch: 3},
		txn(format.RecordTxnPrepare, 2, "c"),      // checkpoint 2 never completed: the writer died
		{Type: format.RecordEpochBegin, Epoch: 2}, // restarted from checkpoint 1
		txn(format.RecordTxnPrepare, 2, "d"),
		txn(format.RecordTxnAbort, 2, "d"),
		txn(format.RecordTxnPrepare, 2, "e"),
	} {
		if _, err := l.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	closeLog(t, l)
	got, err := Pending(context.Background(), dirStore(t, dir), "main")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range got {
		ids = append(ids, p.TxnID)
		if p.PreparedAt.IsZero() || p.Output != "out" {
			t.Fatalf("pending %+v", p)
		}
	}
	if want := []string{"b", "e"}; !slices.Equal(ids, want) {
		t.Fatalf("pending %q, want %q", ids, want)
	}
}
