package txlog

import (
	"sync"
	"testing"
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
