package state

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/klauspost/compress/zstd"
)

// The Get/Put benchmarks run against a plain map[string][]byte doing the same
// work (the same keys, the same 8-byte encoding, buffer reuse on overwrite),
// so `go test -bench 'Get$|Put$'` shows them side by side.
const benchKeys = 100_000

var benchKeyList = func() []string {
	ks := make([]string, benchKeys)
	for i := range ks {
		ks[i] = fmt.Sprintf("user-%010d", i)
	}
	return ks
}()

func benchValue(b *testing.B) *Value[uint64] {
	be := newTestBackend(b, Options{})
	v := must[*Value[uint64]](b)(NewValue(be, Descriptor[uint64]{Name: "count"}))
	for i, k := range benchKeyList {
		noErr(b, v.Put(k, uint64(i)))
	}
	// Steady state: the data sits in the base, the active layer is empty.
	writeSegment(b, be.Snapshot(Full))
	for be.Maintain(1 << 30) {
	}
	return v
}

func BenchmarkValueGet(b *testing.B) {
	v := benchValue(b)
	var sum uint64
	i := 0
	for b.Loop() {
		x, _, _ := v.Get(benchKeyList[i%benchKeys])
		sum += x
		i++
	}
	_ = sum
}

func BenchmarkGoMapGet(b *testing.B) {
	m := make(map[string][]byte)
	for i, k := range benchKeyList {
		m[k] = binary.LittleEndian.AppendUint64(nil, uint64(i))
	}
	var sum uint64
	i := 0
	for b.Loop() {
		if raw, ok := m[benchKeyList[i%benchKeys]]; ok && len(raw) == 8 {
			sum += binary.LittleEndian.Uint64(raw)
		}
		i++
	}
	_ = sum
}

func BenchmarkValuePut(b *testing.B) {
	v := benchValue(b)
	i := 0
	for b.Loop() {
		_ = v.Put(benchKeyList[i%benchKeys], uint64(i))
		i++
	}
}

func BenchmarkGoMapPut(b *testing.B) {
	m := make(map[string][]byte)
	for i, k := range benchKeyList {
		m[k] = binary.LittleEndian.AppendUint64(nil, uint64(i))
	}
	i := 0
	for b.Loop() {
		k := benchKeyList[i%benchKeys]
		m[k] = binary.LittleEndian.AppendUint64(m[k][:0], uint64(i))
		i++
	}
}

// sizedState is a backend holding about size bytes of entries: 16-byte keys
// and JSON-like 84-byte values, ~100 bytes an entry.
type sizedState struct {
	b    *Backend
	v    *Value[[]byte]
	keys []string
}

const entryBytes = 100

func newSizedState(tb testing.TB, size int) *sizedState {
	be := newTestBackend(tb, Options{})
	v := must[*Value[[]byte]](tb)(NewValue(be, Descriptor[[]byte]{Name: "sessions"}))
	s := &sizedState{b: be, v: v, keys: make([]string, size/entryBytes)}
	for i := range s.keys {
		s.keys[i] = fmt.Sprintf("sess-%011d", i)
		noErr(tb, v.Put(s.keys[i], s.value(i, 0)))
	}
	return s
}

func (s *sizedState) value(i, gen int) []byte {
	v := fmt.Appendf(nil, `{"user":%d,"gen":%d,"clicks":%d,"last":"2026-11-27T07:%02d:00Z","p":"`, i, gen, i%977, i%60)
	for len(v) < entryBytes-16-2 {
		v = append(v, byte('a'+(i+len(v))%26))
	}
	return append(v, `"}`...)
}

// countingWriter counts bytes and discards them: the benchmarks measure the
// engine and the segment encoder, not the disk.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func snapshotBytes(tb testing.TB, be *Backend, kind SnapshotKind) int64 {
	s := be.Snapshot(kind)
	var cw countingWriter
	w := format.NewSegmentWriter(&cw, format.SegmentWriterOptions{})
	noErr(tb, s.WriteTo(w))
	if _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	s.Release(true)
	return cw.n
}

var (
	big     *sizedState
	bigOnce sync.Once
)

// bigState is the 256 MB state, built once per test binary.
func bigState(b *testing.B) *sizedState {
	bigOnce.Do(func() { big = newSizedState(b, 256<<20) })
	return big
}

func benchSnapshotFull(b *testing.B, s *sizedState, size int) {
	b.SetBytes(int64(size))
	var out int64
	for b.Loop() {
		out = snapshotBytes(b, s.b, Full)
	}
	b.ReportMetric(float64(out), "segment-bytes")
}

func BenchmarkSnapshotFull1MB(b *testing.B) {
	benchSnapshotFull(b, newSizedState(b, 1<<20), 1<<20)
}

// BenchmarkCompress1MB is the full 1 MB snapshot's baseline: compressing the
// same keys and values, in the same order and 64 KiB blocks, with the zstd
// level the segment writer uses, on one goroutine. A snapshot also sorts,
// encodes and checksums, but spreads compression over the cores, so the ratio
// of the two shows what the engine adds on top of zstd on this machine.
func BenchmarkCompress1MB(b *testing.B) {
	s := newSizedState(b, 1<<20)
	type kv struct {
		kg  uint32
		key string
		val []byte
	}
	entries := make([]kv, len(s.keys))
	for i, k := range s.keys {
		entries[i] = kv{KeyGroupFor(k, DefaultKeyGroups), k, s.value(i, 0)}
	}
	slices.SortFunc(entries, func(a, b kv) int { return cmp.Or(cmp.Compare(a.kg, b.kg), strings.Compare(a.key, b.key)) })
	var raw []byte
	for _, e := range entries {
		raw = append(append(raw, e.key...), e.val...)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(format.DefaultSegmentLevel),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true))
	noErr(b, err)
	b.SetBytes(1 << 20)
	var out []byte
	for b.Loop() {
		for off := 0; off < len(raw); off += format.DefaultSegmentBlockSize {
			out = enc.EncodeAll(raw[off:min(len(raw), off+format.DefaultSegmentBlockSize)], out[:0])
		}
	}
}

func BenchmarkSnapshotFull256MB(b *testing.B) {
	benchSnapshotFull(b, bigState(b), 256<<20)
}

// BenchmarkSnapshotIncremental1Percent changes 1% of a 256 MB state between
// snapshots and reports the delta's size as a fraction of a full snapshot's.
func BenchmarkSnapshotIncremental1Percent(b *testing.B) {
	s := bigState(b)
	full := snapshotBytes(b, s.b, Full)
	n := len(s.keys) / 100
	var out int64
	gen := 0
	for b.Loop() {
		b.StopTimer()
		gen++
		for j := range n {
			i := (j*100 + gen) % len(s.keys)
			noErr(b, s.v.Put(s.keys[i], s.value(i, gen)))
		}
		b.StartTimer()
		out = snapshotBytes(b, s.b, Incremental)
	}
	b.ReportMetric(float64(out), "delta-bytes")
	b.ReportMetric(100*float64(out)/float64(full), "%-of-full")
}

// BenchmarkSnapshotPause measures what processing waits for at a barrier:
// the Backend.Snapshot call. Writing happens on another goroutine. The
// sub-benchmarks show it does not grow with state size. Every iteration also
// writes 1000 keys and the snapshot untimed, so run it with a fixed count:
// -benchtime=200x (bench/state.sh does).
func BenchmarkSnapshotPause(b *testing.B) {
	for _, c := range []struct {
		name  string
		state func(*testing.B) *sizedState
	}{
		{"1MB", func(b *testing.B) *sizedState { return newSizedState(b, 1<<20) }},
		{"256MB", bigState},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := c.state(b)
			var pauses []time.Duration
			gen := 0
			for b.Loop() {
				b.StopTimer()
				gen++
				for j := range 1000 {
					i := (j*997 + gen) % len(s.keys)
					noErr(b, s.v.Put(s.keys[i], s.value(i, gen)))
				}
				start := time.Now()
				b.StartTimer()
				snap := s.b.Snapshot(Incremental)
				b.StopTimer()
				pauses = append(pauses, time.Since(start))
				var cw countingWriter
				w := format.NewSegmentWriter(&cw, format.SegmentWriterOptions{})
				noErr(b, snap.WriteTo(w))
				_, err := w.Close()
				noErr(b, err)
				snap.Release(true)
				b.StartTimer()
			}
			slices.Sort(pauses)
			b.ReportMetric(float64(pauses[len(pauses)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(pauses[len(pauses)-1].Nanoseconds()), "max-ns")
		})
	}
}
