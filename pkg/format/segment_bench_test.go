package format

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// segBenchEntries returns about rawBytes of sorted ~100-byte entries (16-byte
// key, ~80-byte JSON-like value) over two states and 128 key groups, the
// shape of a word-count or session snapshot.
func segBenchEntries(rawBytes int) []Entry {
	rng := rand.New(rand.NewPCG(7, 7))
	n := rawBytes / 100
	out := make([]Entry, 0, n)
	states := []string{"count", "sessions"}
	perGroup := max(n/(len(states)*128), 1)
	for _, s := range states {
		for kg := uint32(0); kg < 128; kg++ {
			for k := 0; k < perGroup; k++ {
				value := fmt.Appendf(nil, `{"n":%d,"last":%d,"src":"topic-%d","ok":true,"pad":"%x"}`,
					rng.IntN(1e6), 1_700_000_000_000+rng.Int64N(1e9), rng.IntN(8), rng.Uint32())
				out = append(out, Entry{
					State:    s,
					KeyGroup: kg,
					Key:      fmt.Appendf(nil, "user-%011d", int(kg)*perGroup+k),
					Value:    value,
				})
			}
		}
	}
	return out
}

func segRawBytes(entries []Entry) int64 {
	var n int64
	for i := range entries {
		n += int64(len(entries[i].Key) + len(entries[i].Value))
	}
	return n
}

// BenchmarkSegmentWrite measures streaming a snapshot into a segment (SHA-256
// included) at each candidate default level; "sort" also sorts the entries
// first, as a full snapshot of an unordered map must.
func BenchmarkSegmentWrite(b *testing.B) {
	levels := []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault}
	for _, size := range []int{1 << 20, 64 << 20} {
		var entries []Entry // built on first use, so a -bench filter skips the cost
		for _, level := range levels {
			b.Run(fmt.Sprintf("%dMB/%s", size>>20, level), func(b *testing.B) {
				if entries == nil {
					entries = segBenchEntries(size)
				}
				raw := segRawBytes(entries)
				opts := SegmentWriterOptions{Level: level}
				b.SetBytes(raw)
				b.ReportAllocs()
				var info SegmentInfo
				for b.Loop() {
					w := NewSegmentWriter(io.Discard, opts)
					for i := range entries {
						if err := w.Add(&entries[i]); err != nil {
							b.Fatal(err)
						}
					}
					var err error
					if info, err = w.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(raw)/float64(info.Size), "ratio")
			})
		}
	}

	b.Run("1MB/sort", func(b *testing.B) {
		entries := segBenchEntries(1 << 20)
		b.SetBytes(segRawBytes(entries))
		shuffled := make([]*Entry, len(entries))
		for i := range entries {
			shuffled[i] = &entries[i]
		}
		rand.New(rand.NewPCG(1, 1)).Shuffle(len(shuffled), func(i, j int) {
			shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
		})
		work := make([]*Entry, len(shuffled))
		b.ReportAllocs()
		for b.Loop() {
			copy(work, shuffled)
			slices.SortFunc(work, CompareEntries)
			w := NewSegmentWriter(io.Discard, SegmentWriterOptions{})
			for _, e := range work {
				if err := w.Add(e); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSegmentScan measures iterating a 16 MB segment held in memory:
// all of it, and one sixteenth of its key groups.
func BenchmarkSegmentScan(b *testing.B) {
	entries := segBenchEntries(16 << 20)
	data, info := segWrite(b, entries, SegmentWriterOptions{})
	r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "bench")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		lo, hi uint32
		raw    int64
	}{
		{"full", 0, math.MaxUint32, info.RawSize},
		{"1of16", 32, 39, info.RawSize / 16},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(tc.raw)
			b.ReportAllocs()
			for b.Loop() {
				it := r.Iter(tc.lo, tc.hi)
				n := 0
				for it.Next() {
					n++
				}
				if it.Err() != nil || n == 0 {
					b.Fatalf("%d entries, err %v", n, it.Err())
				}
			}
		})
	}

	b.Run("verify", func(b *testing.B) {
		b.SetBytes(info.RawSize)
		for b.Loop() {
			if err := r.Verify(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
