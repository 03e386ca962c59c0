package txlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
)

func TestLog_Append(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		// 2 KiB segments hold a few dozen records: 500 records roll many times.
		l := openLog(t, dir, "main", Options{SegmentSize: 2 << 10})
		appendN(t, l, 0, 500, 1)
		st := l.Stats()
		if st.Segments < 10 || st.Rolls != uint64(st.Segments-1) || st.NextLSN != 501 || st.DurableLSN != 500 || st.Appends != 500 {
			t.Fatalf("stats %+v", st)
		}
		closeLog(t, l)

		for _, p := range segmentPaths(t, dir, "main") {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > 2<<10 {
				t.Errorf("%s is %d bytes, over the segment size", p, fi.Size())
			}
		}
		recs, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 500 {
			t.Fatalf("replayed %d records, want 500", len(recs))
		}
		for i, r := range recs {
			checkMutation(t, r, i, uint64(i+1))
		}
	})
	t.Run("OKContinuesAfterReopen", func(t *testing.T) {
		dir := t.TempDir()
		l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
		appendN(t, l, 0, 30, 1)
		closeLog(t, l)
		l = openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
		if l.TailCut() != nil {
			t.Fatalf("clean log reported a torn tail: %+v", l.TailCut())
		}
		if st := l.Stats(); st.NextLSN != 31 || st.DurableLSN != 30 {
			t.Fatalf("after reopen: %+v", st)
		}
		appendN(t, l, 30, 30, 31)
		closeLog(t, l)
		recs, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		if err != nil || len(recs) != 60 {
			t.Fatalf("replayed %d records, %v", len(recs), err)
		}
		for i, r := range recs {
			checkMutation(t, r, i, uint64(i+1))
		}
	})
	t.Run("OKStartLSN", func(t *testing.T) {
		dir := t.TempDir()
		l := openLog(t, dir, "main", Options{StartLSN: 1000})
		appendN(t, l, 0, 3, 1000)
		closeLog(t, l)
		if _, err := os.Stat(filepath.Join(dir, "txlog", "main", "00000000000000001000.log")); err != nil {
			t.Fatal(err)
		}
		// StartLSN only applies to a stream without segments.
		l = openLog(t, dir, "main", Options{StartLSN: 5})
		appendN(t, l, 3, 1, 1003)
		closeLog(t, l)
	})
	t.Run("OKTimes", func(t *testing.T) {
		dir := t.TempDir()
		now := time.Unix(100, 0)
		l := openLog(t, dir, "main", Options{Now: func() time.Time { return now }})
		appendN(t, l, 0, 1, 1)
		now = time.Unix(50, 0) // the clock steps back
		appendN(t, l, 1, 1, 2)
		explicit := mutation(2)
		explicit.Time = 7
		if _, err := l.Append(explicit); err != nil {
			t.Fatal(err)
		}
		if explicit.LSN != 0 {
			t.Fatal("Append modified the caller's record")
		}
		closeLog(t, l)
		recs, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := []int64{recs[0].Time, recs[1].Time, recs[2].Time}
		if want := []int64{100e9, 100e9, 7}; !slices.Equal(got, want) {
			t.Fatalf("times %v, want %v", got, want)
		}
	})
	t.Run("OKLargeRecord", func(t *testing.T) {
		dir := t.TempDir()
		l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
		appendN(t, l, 0, 1, 1)
		big := mutation(1)
		big.Value = bytes.Repeat([]byte{7}, 10<<10)
		if lsn, err := l.Append(big); err != nil || lsn != 2 {
			t.Fatalf("Append(big) = %d, %v", lsn, err)
		}
		appendN(t, l, 2, 1, 3)
		closeLog(t, l)
		if n := len(segmentPaths(t, dir, "main")); n != 3 {
			t.Fatalf("%d segments, want the big record alone in the second of 3", n)
		}
		recs, err := replayAll(t, dirStore(t, dir), "main", 2, 2)
		if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].Value, big.Value) {
			t.Fatalf("replay of the big record: %d records, %v", len(recs), err)
		}
	})
	t.Run("ErrMalformedRecord", func(t *testing.T) {
		l := openLog(t, t.TempDir(), "main", Options{})
		defer closeLog(t, l)
		bad := &format.Record{Type: format.RecordPosition, Source: "in", Key: []byte("k")}
		if _, err := l.Append(bad); !errors.Is(err, format.ErrMalformed) {
			t.Fatalf("Append(bad) = %v, want ErrMalformed", err)
		}
		// The refused record consumed no LSN.
		appendN(t, l, 0, 1, 1)
	})
	t.Run("ErrClosed", func(t *testing.T) {
		l := openLog(t, t.TempDir(), "main", Options{})
		closeLog(t, l)
		if _, err := l.Append(mutation(0)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close = %v", err)
		}
		if err := l.Sync(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Sync after Close = %v", err)
		}
		if _, err := l.Truncate(10); !errors.Is(err, ErrClosed) {
			t.Fatalf("Truncate after Close = %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
	})
	t.Run("ErrFailed", func(t *testing.T) {
		l := openLog(t, t.TempDir(), "main", Options{})
		appendN(t, l, 0, 1, 1)
		// Pull the file out from under the committer: the next write fails.
		l.fmu.Lock()
		l.f.Close()
		l.fmu.Unlock()
		if _, err := l.Append(mutation(1)); !errors.Is(err, ErrFailed) {
			t.Fatalf("Append on a failed file = %v, want ErrFailed", err)
		}
		if _, err := l.Append(mutation(2)); !errors.Is(err, ErrFailed) {
			t.Fatalf("Append after a failure = %v, want ErrFailed", err)
		}
		l.Close()
	})
}

func TestLog_AppendConcurrent(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncGroup, SyncEach, SyncInterval} {
		t.Run("OK"+policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, "main", Options{Sync: policy, SegmentSize: 16 << 10, Interval: time.Millisecond})
			const goroutines, each = 8, 100
			lsns := make([][]uint64, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for k := range each {
						lsn, err := l.Append(mutation(g*each + k))
						if err != nil {
							t.Error(err)
							return
						}
						// Acknowledged means durable, except under SyncInterval.
						if st := l.Stats(); policy != SyncInterval && st.DurableLSN < lsn {
							t.Errorf("LSN %d acknowledged, durable only up to %d", lsn, st.DurableLSN)
						}
						lsns[g] = append(lsns[g], lsn)
					}
				})
			}
			wg.Wait()
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			closeLog(t, l)

			const total = goroutines * each
			if st.Appends != total || st.DurableLSN != total || st.WrittenLSN != total {
				t.Fatalf("stats %+v", st)
			}
			// Each appender's LSNs increase; together they are 1..total.
			owner := map[uint64]int{}
			for g, ls := range lsns {
				if !slices.IsSorted(ls) {
					t.Fatalf("appender %d got LSNs out of order: %v", g, ls)
				}
				for k, lsn := range ls {
					owner[lsn] = g*each + k
				}
			}
			recs, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
			if err != nil || len(recs) != total || len(owner) != total {
				t.Fatalf("replayed %d records, %d distinct LSNs, %v", len(recs), len(owner), err)
			}
			for i, r := range recs {
				checkMutation(t, r, owner[uint64(i+1)], uint64(i+1))
			}
			dataSyncs := st.Fsyncs - 2*uint64(st.Segments) // header and directory per segment
			switch policy {
			case SyncGroup:
				if dataSyncs >= total || st.Batches >= total {
					t.Fatalf("group commit: %d data fsyncs and %d batches for %d records", dataSyncs, st.Batches, total)
				}
				t.Logf("group commit: %d records, %d batches, %d data fsyncs", total, st.Batches, dataSyncs)
			case SyncEach:
				if dataSyncs < total {
					t.Fatalf("fsync each: %d data fsyncs for %d records", dataSyncs, total)
				}
			}
		})
	}
}

func TestLog_Sync(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// An interval long enough that only Sync can make the records durable.
		l := openLog(t, t.TempDir(), "main", Options{Sync: SyncInterval, Interval: time.Hour})
		defer closeLog(t, l)
		appendN(t, l, 0, 5, 1)
		if st := l.Stats(); st.WrittenLSN != 5 || st.DurableLSN != 0 {
			t.Fatalf("before Sync: %+v", st)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.DurableLSN != 5 {
			t.Fatalf("after Sync: %+v", st)
		}
	})
	t.Run("OKInterval", func(t *testing.T) {
		l := openLog(t, t.TempDir(), "main", Options{Sync: SyncInterval, Interval: 5 * time.Millisecond})
		defer closeLog(t, l)
		appendN(t, l, 0, 5, 1)
		deadline := time.Now().Add(5 * time.Second)
		for l.Stats().DurableLSN != 5 {
			if time.Now().After(deadline) {
				t.Fatalf("the timer never synced: %+v", l.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		l := openLog(t, t.TempDir(), "main", Options{})
		defer closeLog(t, l)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	})
}

// writeLog writes n mutations to stream "main" in dir with small segments
// and returns the segment paths.
func writeLog(t *testing.T, dir string, n int) []string {
	t.Helper()
	l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
	appendN(t, l, 0, n, 1)
	closeLog(t, l)
	return segmentPaths(t, dir, "main")
}

func TestOpen(t *testing.T) {
	t.Run("OKTornTail", func(t *testing.T) {
		dir := t.TempDir()
		segs := writeLog(t, dir, 40)
		last := segs[len(segs)-1]
		offs := recordOffsets(t, last)
		fi, _ := os.Stat(last)
		// Cut the last record in half, as a crash mid-write does.
		cutAt := offs[len(offs)-1] + 5
		if err := os.Truncate(last, cutAt); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
		tc := l.TailCut()
		if tc == nil || tc.Offset != offs[len(offs)-1] || tc.Bytes != 5 || !errors.Is(tc.Reason, format.ErrTruncated) ||
			tc.Segment != SegmentName("main", firstLSNOf(t, last)) {
			t.Fatalf("TailCut = %+v (file was %d bytes, cut at %d)", tc, fi.Size(), cutAt)
		}
		// The torn record's LSN is reused: it was never acknowledged.
		appendN(t, l, 39, 1, 40)
		closeLog(t, l)
		recs, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		if err != nil || len(recs) != 40 {
			t.Fatalf("replayed %d, %v", len(recs), err)
		}
	})
	t.Run("OKZeroTail", func(t *testing.T) {
		dir := t.TempDir()
		segs := writeLog(t, dir, 40)
		last := segs[len(segs)-1]
		fi, _ := os.Stat(last)
		// The size reached the disk, the data did not.
		if err := os.Truncate(last, fi.Size()+300); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, dir, "main", Options{})
		defer closeLog(t, l)
		if tc := l.TailCut(); tc == nil || tc.Offset != fi.Size() || tc.Bytes != 300 {
			t.Fatalf("TailCut = %+v", tc)
		}
		if l.Stats().NextLSN != 41 {
			t.Fatalf("next LSN %d", l.Stats().NextLSN)
		}
	})
	t.Run("OKTempFileRemoved", func(t *testing.T) {
		dir := t.TempDir()
		writeLog(t, dir, 3)
		tmp := filepath.Join(dir, "txlog", "main", tempPrefix+"123")
		if err := os.WriteFile(tmp, []byte("half a header"), 0o644); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, dir, "main", Options{})
		defer closeLog(t, l)
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Fatalf("leftover temporary file: %v", err)
		}
	})
	t.Run("ErrCorruptMiddle", func(t *testing.T) {
		dir := t.TempDir()
		segs := writeLog(t, dir, 40)
		last := segs[len(segs)-1]
		offs := recordOffsets(t, last)
		if len(offs) < 3 {
			t.Fatalf("last segment has %d records", len(offs))
		}
		data, _ := os.ReadFile(last)
		data[offs[1]+12] ^= 0x10 // inside the second record's body
		os.WriteFile(last, data, 0o644)
		_, err := Open(dir, "main", Options{})
		ce := assertCorrupt(t, err, format.ErrChecksum, offs[1])
		if ce.File != SegmentName("main", firstLSNOf(t, last)) {
			t.Fatalf("error names %q", ce.File)
		}
		// Nothing was cut.
		if after, _ := os.ReadFile(last); !bytes.Equal(after, data) {
			t.Fatal("Open changed a damaged segment")
		}
		// The failed Open released the lock.
		if _, err := Open(dir, "main", Options{}); err == nil {
			t.Fatal("second Open succeeded on a damaged log")
		} else if errors.Is(err, ErrLocked) {
			t.Fatalf("failed Open kept the lock: %v", err)
		}
	})
	t.Run("ErrCorruptHeader", func(t *testing.T) {
		dir := t.TempDir()
		segs := writeLog(t, dir, 40)
		last := segs[len(segs)-1]
		data, _ := os.ReadFile(last)
		data[20] ^= 1
		os.WriteFile(last, data, 0o644)
		_, err := Open(dir, "main", Options{})
		assertCorrupt(t, err, format.ErrChecksum, 0)
	})
	t.Run("ErrWrongStream", func(t *testing.T) {
		dir := t.TempDir()
		writeLog(t, dir, 3)
		os.MkdirAll(filepath.Join(dir, "txlog", "other"), 0o755)
		os.Rename(filepath.Join(dir, "txlog", "main", segmentFile(1)), filepath.Join(dir, "txlog", "other", segmentFile(1)))
		_, err := Open(dir, "other", Options{})
		assertCorrupt(t, err, format.ErrMalformed, 12)
	})
	t.Run("ErrLocked", func(t *testing.T) {
		dir := t.TempDir()
		l := openLog(t, dir, "main", Options{})
		defer closeLog(t, l)
		if _, err := Open(dir, "main", Options{}); !errors.Is(err, ErrLocked) {
			t.Fatalf("second writer: %v, want ErrLocked", err)
		}
		// Another stream is another lock.
		closeLog(t, openLog(t, dir, "other", Options{}))
	})
	t.Run("ErrInvalidStream", func(t *testing.T) {
		if _, err := Open(t.TempDir(), "../x", Options{}); !errors.Is(err, ErrInvalidStream) {
			t.Fatalf("Open(../x) = %v", err)
		}
	})
	t.Run("ErrOptions", func(t *testing.T) {
		for _, o := range []Options{{Sync: 9}, {SegmentSize: -1}, {Interval: -1}} {
			if _, err := Open(t.TempDir(), "main", o); err == nil {
				t.Errorf("Open with %+v succeeded", o)
			}
		}
	})
}

// firstLSNOf parses a segment path's first LSN.
func firstLSNOf(t *testing.T, path string) uint64 {
	t.Helper()
	first, ok := parseSegmentFile(filepath.Base(path))
	if !ok {
		t.Fatalf("%s is not a segment", path)
	}
	return first
}

func TestLog_Truncate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
		defer closeLog(t, l)
		appendN(t, l, 0, 100, 1)
		before := segmentPaths(t, dir, "main")
		firsts := make([]uint64, len(before))
		for i, p := range before {
			firsts[i] = firstLSNOf(t, p)
		}
		// Up to one LSN short of the third segment: only the first can go.
		deleted, err := l.Truncate(firsts[2] - 1)
		if err != nil || len(deleted) != 1 || deleted[0] != SegmentName("main", firsts[0]) {
			t.Fatalf("Truncate = %v, %v", deleted, err)
		}
		// At the third segment's first LSN the second goes too.
		deleted, err = l.Truncate(firsts[2])
		if err != nil || len(deleted) != 1 || deleted[0] != SegmentName("main", firsts[1]) {
			t.Fatalf("Truncate = %v, %v", deleted, err)
		}
		// Far beyond the end: everything but the active segment.
		deleted, err = l.Truncate(1 << 62)
		if err != nil || len(deleted) != len(before)-3 {
			t.Fatalf("Truncate = %d deleted, %v", len(deleted), err)
		}
		if got := segmentPaths(t, dir, "main"); len(got) != 1 || got[0] != before[len(before)-1] || l.Stats().Segments != 1 {
			t.Fatalf("left %v", got)
		}
		// The log goes on, and replays from the surviving segment.
		appendN(t, l, 100, 1, 101)
		recs, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		if err != nil || recs[len(recs)-1].LSN != 101 || recs[0].LSN != firsts[len(firsts)-1] {
			t.Fatalf("replay after truncate: %d records, %v", len(recs), err)
		}
		if _, err := replayAll(t, dirStore(t, dir), "main", 1, 0); !errors.Is(err, ErrLSNNotFound) {
			t.Fatalf("replay of a truncated LSN: %v", err)
		}
	})
	t.Run("OKNothing", func(t *testing.T) {
		l := openLog(t, t.TempDir(), "main", Options{})
		defer closeLog(t, l)
		appendN(t, l, 0, 3, 1)
		if deleted, err := l.Truncate(100); err != nil || len(deleted) != 0 {
			t.Fatalf("Truncate of the only segment = %v, %v", deleted, err)
		}
	})
}

func TestParseSyncPolicy(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, p := range []SyncPolicy{SyncGroup, SyncEach, SyncInterval} {
			if got, err := ParseSyncPolicy(p.String()); err != nil || got != p {
				t.Errorf("ParseSyncPolicy(%q) = %v, %v", p, got, err)
			}
		}
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		if _, err := ParseSyncPolicy("sometimes"); err == nil {
			t.Fatal("accepted")
		}
	})
}

// Submit appends without waiting; Sync makes what it queued durable, and a
// batch with a record the format refuses appends none of its records.
func TestLog_Submit(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncGroup, SyncEach, SyncInterval} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, "main", Options{Sync: policy, SegmentSize: 1 << 10})
			var recs []*format.Record
			for i := range 50 {
				recs = append(recs, mutation(i))
			}
			last, err := l.Submit(recs[:30])
			if err != nil || last != 30 {
				t.Fatalf("Submit = %d, %v; want LSN 30", last, err)
			}
			bad := &format.Record{Type: format.RecordPosition, Source: "s", Position: []byte("p"), Checkpoint: 7}
			if _, err := l.Submit([]*format.Record{recs[30], bad}); err == nil {
				t.Fatal("Submit with a record the format refuses succeeded")
			}
			if last, err = l.Submit(recs[30:]); err != nil || last != 50 {
				t.Fatalf("Submit = %d, %v; want LSN 50 (the refused batch used no LSN)", last, err)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.DurableLSN != 50 {
				t.Fatalf("after Sync the durable LSN is %d, want 50", st.DurableLSN)
			}
			closeLog(t, l)
			got, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
			if err != nil || len(got) != 50 {
				t.Fatalf("replay: %d records, %v; want 50", len(got), err)
			}
			for i, rec := range got {
				checkMutation(t, rec, i, uint64(i+1))
			}
		})
	}
}

// Records nobody waits for (Submit) may wait a moment for company before
// they are written, but they are written without a Sync; an Append behind
// them does not wait out the delay's purpose: it returns once its record,
// and theirs, are durable.
func TestLog_SubmitIsWrittenUnasked(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, "main", Options{})
	defer closeLog(t, l)
	if _, err := l.Submit([]*format.Record{mutation(1)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().WrittenLSN < 1 {
		if time.Now().After(deadline) {
			t.Fatal("a submitted record was not written in 10 s without a Sync")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := l.Submit([]*format.Record{mutation(2)}); err != nil {
		t.Fatal(err)
	}
	lsn, err := l.Append(mutation(3))
	if err != nil || lsn != 3 {
		t.Fatalf("Append = %d, %v", lsn, err)
	}
	if st := l.Stats(); st.DurableLSN < 3 {
		t.Fatalf("after Append returned, durable up to %d, want 3 (and the submitted record before it)", st.DurableLSN)
	}
}
