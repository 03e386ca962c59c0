package txlog

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// benchmarkAppend appends b.N records from 8 concurrent appenders under
// policy and reports records/s and fsyncs per record. Data-file fsyncs are
// what group commit saves, so the segment size is large enough that rolls
// do not count.
func benchmarkAppend(b *testing.B, policy SyncPolicy) {
	l, err := Open(b.TempDir(), "bench", Options{Sync: policy, SegmentSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := mutation(1)
	const appenders = 8
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range appenders {
		n := b.N / appenders
		if g < b.N%appenders {
			n++
		}
		wg.Go(func() {
			for range n {
				if _, err := l.Append(rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/record")
	b.SetBytes(int64(st.Bytes) / int64(max(b.N, 1)))
}

// BenchmarkAppendGroupCommit: one fsync per group of concurrent appends.
func BenchmarkAppendGroupCommit(b *testing.B) { benchmarkAppend(b, SyncGroup) }

// BenchmarkAppendFsyncEach is the baseline: one fsync per record.
func BenchmarkAppendFsyncEach(b *testing.B) { benchmarkAppend(b, SyncEach) }

// BenchmarkAppendPeriodic: fsync every Options.Interval (durability
// periodic), appends return once written.
func BenchmarkAppendPeriodic(b *testing.B) { benchmarkAppend(b, SyncInterval) }

// BenchmarkRawWriteFsync is what a user would write by hand: the same
// encoded record, one write and one fsync each, from one goroutine, on the
// same disk. The per-policy benchmarks are read as ratios against it.
func BenchmarkRawWriteFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := *mutation(1)
	rec.LSN, rec.Time = 1, 1
	buf, err := format.AppendRecord(nil, &rec)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// benchLog writes n mutation records of 16 keys to a log and returns its
// store.
func benchLog(b *testing.B, n int) store.Store {
	b.Helper()
	dir := b.TempDir()
	l, err := Open(dir, "bench", Options{Sync: SyncInterval, SegmentSize: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*format.Record, 0, 1024)
	for i := range n {
		recs = append(recs, &format.Record{Type: format.RecordMutation, Epoch: 2, Operator: "op", State: "count",
			KeyGroup: 0, Key: []byte(fmt.Sprintf("k%d", i%16)), Value: binary.LittleEndian.AppendUint64(nil, uint64(i))})
		if len(recs) == cap(recs) || i == n-1 {
			if _, err := l.Submit(recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	s, err := store.NewDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

const benchRecords = 200000

// BenchmarkDecodeOnly reads the log's records through the store and decodes
// them, applying nothing: the baseline of BenchmarkReplayApply.
func BenchmarkDecodeOnly(b *testing.B) {
	s := benchLog(b, benchRecords)
	b.ResetTimer()
	for range b.N {
		n := 0
		if err := Replay(context.Background(), s, "bench", 0, 0, time.Time{}, func(*format.Record) error { n++; return nil }); err != nil || n != benchRecords {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReplayApply replays what the log adds to a checkpoint
// (AfterCheckpoint, which reads the log twice) and applies each change to
// a state backend, as checkpoint restore --at does.
func BenchmarkReplayApply(b *testing.B) {
	s := benchLog(b, benchRecords)
	b.ResetTimer()
	for range b.N {
		be, err := state.NewBackend(state.Options{KeyGroups: 1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := state.NewValue(be, state.Descriptor[uint64]{Name: "count"}); err != nil {
			b.Fatal(err)
		}
		n := 0
		err = AfterCheckpoint(context.Background(), s, "bench", 1, 0, 0, time.Time{}, func(rec *format.Record) error {
			n++
			return be.Apply(&format.Entry{State: rec.State, KeyGroup: rec.KeyGroup, Key: rec.Key, Value: rec.Value})
		})
		if err != nil || n != benchRecords {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
}
