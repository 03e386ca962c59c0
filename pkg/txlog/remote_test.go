package txlog

import (
	"context"
	"testing"

	"github.com/arkstate/arkstate/pkg/store"
)

// Seal puts every record appended before it into a sealed segment, so
// that Upload copies all of them; a Seal with nothing new seals nothing.
// LastLSN reads the copy's end, and TruncateStore trims the copy as
// Truncate trims the local log.
func TestLog_SealUploadTruncateStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, "main", Options{})
	defer closeLog(t, l)
	dst := store.NewMem("remote")
	defer dst.Close()

	if _, ok, err := LastLSN(ctx, dst, "main"); ok || err != nil {
		t.Fatalf("LastLSN of an empty store: ok %v, %v", ok, err)
	}
	for round := range 3 {
		appendN(t, l, round*10, 10, uint64(round*10+1))
		if err := l.Seal(); err != nil {
			t.Fatal(err)
		}
		if _, err := Upload(ctx, dir, dst); err != nil {
			t.Fatal(err)
		}
		last, ok, err := LastLSN(ctx, dst, "main")
		if err != nil || !ok || last != uint64(round*10+10) {
			t.Fatalf("round %d: the store's copy ends at %d (ok %v, %v), want %d: Seal left records in the active segment", round, last, ok, err, round*10+10)
		}
	}
	segs := len(segmentPaths(t, dir, "main"))
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if got := len(segmentPaths(t, dir, "main")); got != segs || segs != 4 {
		t.Fatalf("%d segments, then %d after a Seal with nothing new; want 4 both times (3 sealed, 1 empty active)", segs, got)
	}

	deleted, err := TruncateStore(ctx, dst, "main", 21)
	if err != nil || len(deleted) != 2 || deleted[0] != SegmentName("main", 1) || deleted[1] != SegmentName("main", 11) {
		t.Fatalf("TruncateStore = %v, %v; want the segments of LSNs 1-10 and 11-20", deleted, err)
	}
	if deleted, err := TruncateStore(ctx, dst, "main", 1<<62); err != nil || len(deleted) != 0 {
		t.Fatalf("TruncateStore of the newest segment = %v, %v; it is never deleted", deleted, err)
	}
	recs, err := replayAll(t, dst, "main", 0, 0)
	if err != nil || len(recs) != 10 || recs[0].LSN != 21 {
		t.Fatalf("after TruncateStore the copy replays %d records, %v; want LSNs 21-30", len(recs), err)
	}
}
