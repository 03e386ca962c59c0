package format

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// segTestEntries returns n varied entries in segment order: several states,
// scattered key groups, tombstones, expiries (negative too), empty values,
// and, when bigValue > 0, one value of bigValue random bytes.
func segTestEntries(n int, seed uint64, bigValue int) []Entry {
	rng := rand.New(rand.NewPCG(seed, 0x5e9))
	states := []string{"", "count", "dedup", "sessions", "window/5m"}
	out := make([]Entry, 0, n)
	for len(out) < n {
		key := make([]byte, rng.IntN(24))
		for i := range key {
			key[i] = byte('a' + rng.IntN(6))
		}
		e := Entry{
			State:    states[rng.IntN(len(states))],
			KeyGroup: uint32(rng.IntN(128)),
			Key:      key,
		}
		switch r := rng.IntN(10); {
		case r == 0:
			e.Tombstone = true
		case r == 1:
			e.Value = []byte{}
		default:
			e.Value = []byte(strings.Repeat(fmt.Sprintf("v%d,", rng.IntN(1000)), 1+rng.IntN(12)))
		}
		switch rng.IntN(8) {
		case 0:
			e.ExpiresAt = rng.Int64()
		case 1:
			e.ExpiresAt = -rng.Int64N(1 << 40)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return CompareEntries(&a, &b) })
	out = slices.CompactFunc(out, func(a, b Entry) bool { return CompareEntries(&a, &b) == 0 })
	if bigValue > 0 {
		i := len(out) / 2
		out[i].Tombstone = false
		out[i].Value = make([]byte, bigValue)
		for j := range out[i].Value {
			out[i].Value[j] = byte(rng.Uint32())
		}
	}
	return out
}

// segWrite writes entries to a new segment and returns its bytes and info.
func segWrite(t testing.TB, entries []Entry, opts SegmentWriterOptions) ([]byte, SegmentInfo) {
	t.Helper()
	var buf bytes.Buffer
	w := NewSegmentWriter(&buf, opts)
	for i := range entries {
		if err := w.Add(&entries[i]); err != nil {
			t.Fatalf("Add(%d): %v", i, err)
		}
	}
	info, err := w.Close()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes(), info
}

// segEntriesEqual compares entries; nil and empty values are the same value.
func segEntriesEqual(a, b *Entry) bool {
	return a.State == b.State && a.KeyGroup == b.KeyGroup && bytes.Equal(a.Key, b.Key) &&
		bytes.Equal(a.Value, b.Value) && a.ExpiresAt == b.ExpiresAt && a.Tombstone == b.Tombstone
}

func segFormatEntry(e *Entry) string {
	v := fmt.Sprintf("%q", e.Value)
	if len(v) > 40 {
		v = fmt.Sprintf("<%d bytes>", len(e.Value))
	}
	return fmt.Sprintf("(%q, %d, %q) -> %s exp=%d tomb=%t", e.State, e.KeyGroup, e.Key, v, e.ExpiresAt, e.Tombstone)
}

func segWantErr(t *testing.T, err, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want %v", err, sentinel)
	}
}

func TestSegmentWriter_Add(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		entries := segTestEntries(500, 1, 0)
		// Reusing one Entry and one key buffer must not corrupt what was added.
		var buf bytes.Buffer
		w := NewSegmentWriter(&buf, SegmentWriterOptions{BlockSize: 512})
		var e Entry
		key := make([]byte, 0, 64)
		for i := range entries {
			key = append(key[:0], entries[i].Key...)
			e = entries[i]
			e.Key = key
			if err := w.Add(&e); err != nil {
				t.Fatalf("Add(%d): %v", i, err)
			}
			clear(key)
		}
		info, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if info.Entries != uint64(len(entries)) {
			t.Fatalf("Entries = %d, want %d", info.Entries, len(entries))
		}
		r, err := OpenSegment(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "reuse")
		if err != nil {
			t.Fatal(err)
		}
		got := segCollect(t, r.Iter(0, ^uint32(0)))
		segCompare(t, got, entries)
	})

	order := []struct {
		name       string
		prev, next Entry
	}{
		{"State", Entry{State: "b", KeyGroup: 1, Key: []byte("k")}, Entry{State: "a", KeyGroup: 9, Key: []byte("z")}},
		{"KeyGroup", Entry{State: "a", KeyGroup: 5, Key: []byte("a")}, Entry{State: "a", KeyGroup: 4, Key: []byte("z")}},
		{"Key", Entry{State: "a", KeyGroup: 5, Key: []byte("b")}, Entry{State: "a", KeyGroup: 5, Key: []byte("a")}},
		{"KeyPrefix", Entry{State: "a", KeyGroup: 5, Key: []byte("ab")}, Entry{State: "a", KeyGroup: 5, Key: []byte("a")}},
		{"Duplicate", Entry{State: "a", KeyGroup: 5, Key: []byte("k")}, Entry{State: "a", KeyGroup: 5, Key: []byte("k"), Value: []byte("x")}},
		{"DuplicateEmptyKey", Entry{State: "a", KeyGroup: 5}, Entry{State: "a", KeyGroup: 5, Key: []byte{}}},
	}
	for _, tc := range order {
		t.Run("ErrOutOfOrder/"+tc.name, func(t *testing.T) {
			w := NewSegmentWriter(io.Discard, SegmentWriterOptions{})
			if err := w.Add(&tc.prev); err != nil {
				t.Fatal(err)
			}
			segWantErr(t, w.Add(&tc.next), ErrMalformed)
			// The refused entry changed nothing: a correct one still goes in.
			if err := w.Add(&Entry{State: "zz"}); err != nil {
				t.Fatalf("Add after a refused entry: %v", err)
			}
			info, err := w.Close()
			if err != nil {
				t.Fatal(err)
			}
			if info.Entries != 2 {
				t.Fatalf("Entries = %d, want 2", info.Entries)
			}
		})
	}

	tooLarge := []struct {
		name string
		e    Entry
	}{
		{"StateName", Entry{State: strings.Repeat("s", MaxStateNameLen+1)}},
		{"Key", Entry{State: "s", Key: make([]byte, MaxKeyLen+1)}},
		{"Value", Entry{State: "s", Value: make([]byte, MaxValueLen+1)}},
	}
	for _, tc := range tooLarge {
		t.Run("ErrTooLarge/"+tc.name, func(t *testing.T) {
			w := NewSegmentWriter(io.Discard, SegmentWriterOptions{})
			segWantErr(t, w.Add(&tc.e), ErrTooLarge)
		})
	}

	t.Run("OKAtLimits", func(t *testing.T) {
		e := Entry{
			State: strings.Repeat("s", MaxStateNameLen),
			Key:   bytes.Repeat([]byte{1}, MaxKeyLen),
			Value: bytes.Repeat([]byte{2}, MaxValueLen),
		}
		data, _ := segWrite(t, []Entry{e}, SegmentWriterOptions{})
		r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "limits")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
		segCompare(t, segCollect(t, r.Iter(0, 0)), []Entry{e})
	})

	t.Run("ErrTombstoneValue", func(t *testing.T) {
		w := NewSegmentWriter(io.Discard, SegmentWriterOptions{})
		segWantErr(t, w.Add(&Entry{State: "s", Tombstone: true, Value: []byte("x")}), ErrMalformed)
	})

	t.Run("ErrAfterClose", func(t *testing.T) {
		w := NewSegmentWriter(io.Discard, SegmentWriterOptions{})
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Add(&Entry{State: "s"}); err == nil {
			t.Fatal("Add after Close succeeded")
		}
	})

	t.Run("ErrLevel", func(t *testing.T) {
		w := NewSegmentWriter(io.Discard, SegmentWriterOptions{Level: zstd.EncoderLevel(99)})
		if err := w.Add(&Entry{State: "s"}); err == nil {
			t.Fatal("Add with an invalid level succeeded")
		}
		if _, err := w.Close(); err == nil {
			t.Fatal("Close with an invalid level succeeded")
		}
	})
}

// segFailWriter accepts limit bytes, then fails.
type segFailWriter struct {
	limit int
	n     int
}

var errSegDiskFull = errors.New("disk full")

func (f *segFailWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		return 0, errSegDiskFull
	}
	f.n += len(p)
	return len(p), nil
}

// segShortWriter claims to write one byte less than asked without an error.
type segShortWriter struct{}

func (segShortWriter) Write(p []byte) (int, error) { return max(len(p)-1, 0), nil }

func TestSegmentWriter_Close(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		entries := segTestEntries(2000, 2, 0)
		data, info := segWrite(t, entries, SegmentWriterOptions{BlockSize: 1024})
		if info.Size != int64(len(data)) {
			t.Errorf("Size = %d, wrote %d bytes", info.Size, len(data))
		}
		if want := sha256.Sum256(data); info.SHA256 != want {
			t.Errorf("SHA256 = %x, want %x", info.SHA256, want)
		}
		var tombs uint64
		var raw int64
		states := map[string]bool{}
		minKG, maxKG := entries[0].KeyGroup, entries[0].KeyGroup
		for i := range entries {
			e := &entries[i]
			if e.Tombstone {
				tombs++
			}
			raw += int64(segEntryLen(0, e)) // state indices below 128 take one byte
			states[e.State] = true
			minKG, maxKG = min(minKG, e.KeyGroup), max(maxKG, e.KeyGroup)
		}
		wantStates := slices.Sorted(func(yield func(string) bool) {
			for s := range states {
				if !yield(s) {
					return
				}
			}
		})
		if info.Entries != uint64(len(entries)) || info.Tombstones != tombs || info.RawSize != raw ||
			info.MinKeyGroup != minKG || info.MaxKeyGroup != maxKG || !slices.Equal(info.States, wantStates) {
			t.Errorf("info = %+v\nwant entries %d tombstones %d raw %d kg %d..%d states %q",
				info, len(entries), tombs, raw, minKG, maxKG, wantStates)
		}
		if info.Blocks < int(raw/1024) {
			t.Errorf("Blocks = %d for %d raw bytes in 1 KiB blocks", info.Blocks, raw)
		}
		r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "close")
		if err != nil {
			t.Fatal(err)
		}
		rinfo := r.Info()
		rinfo.SHA256 = info.SHA256
		if fmt.Sprint(rinfo) != fmt.Sprint(info) {
			t.Errorf("reader info %+v\nwriter info %+v", rinfo, info)
		}
	})

	t.Run("OKEmpty", func(t *testing.T) {
		data, info := segWrite(t, nil, SegmentWriterOptions{})
		if info.Blocks != 0 || info.Entries != 0 || len(info.States) != 0 {
			t.Fatalf("info = %+v", info)
		}
		r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "empty")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
		if it := r.Iter(0, ^uint32(0)); it.Next() || it.Err() != nil {
			t.Fatalf("empty segment iterated: next entry or err %v", it.Err())
		}
	})

	t.Run("ErrWrite", func(t *testing.T) {
		entries := segTestEntries(3000, 3, 0)
		full, _ := segWrite(t, entries, SegmentWriterOptions{BlockSize: 1024})
		// Fail inside the blocks, inside the index, and in the footer.
		for _, limit := range []int{0, 2000, len(full) - SegmentFooterLen - 5, len(full) - 1} {
			w := NewSegmentWriter(&segFailWriter{limit: limit}, SegmentWriterOptions{BlockSize: 1024})
			var err error
			for i := range entries {
				if err = w.Add(&entries[i]); err != nil {
					break
				}
			}
			if err == nil {
				_, err = w.Close()
			} else if _, cerr := w.Close(); !errors.Is(cerr, errSegDiskFull) {
				t.Errorf("limit %d: Close after a failed Add = %v", limit, cerr)
			}
			if !errors.Is(err, errSegDiskFull) {
				t.Errorf("limit %d: got %v, want %v", limit, err, errSegDiskFull)
			}
		}
	})

	t.Run("ErrShortWrite", func(t *testing.T) {
		w := NewSegmentWriter(segShortWriter{}, SegmentWriterOptions{})
		if err := w.Add(&Entry{State: "s"}); err != nil {
			t.Fatal(err)
		}
		_, err := w.Close()
		segWantErr(t, err, io.ErrShortWrite)
	})

	t.Run("ErrTwice", func(t *testing.T) {
		w := NewSegmentWriter(io.Discard, SegmentWriterOptions{})
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Close(); err == nil {
			t.Fatal("second Close succeeded")
		}
	})
}

func TestSegmentWriter_BlockSize(t *testing.T) {
	for _, size := range []int{0, 1, 300, 4096} {
		t.Run(fmt.Sprintf("OK/%d", size), func(t *testing.T) {
			entries := segTestEntries(1500, 4, 3*max(size, 1))
			data, info := segWrite(t, entries, SegmentWriterOptions{BlockSize: size})
			r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "bs")
			if err != nil {
				t.Fatal(err)
			}
			want := size
			if size == 0 {
				want = DefaultSegmentBlockSize
			}
			blocks := r.Blocks()
			for i, b := range blocks {
				// Over the target only when one entry alone is bigger.
				if b.RawLen > want && b.Entries != 1 {
					t.Errorf("block %d: %d raw bytes in %d entries, target %d", i, b.RawLen, b.Entries, want)
				}
				// Under half the target only when the next entry did not fit.
				if i+1 < len(blocks) && b.RawLen < want/2 && blocks[i+1].Entries != 1 {
					t.Errorf("block %d cut early: %d raw bytes, target %d", i, b.RawLen, want)
				}
			}
			if size == 1 && info.Blocks != len(entries) {
				t.Errorf("BlockSize 1: %d blocks for %d entries", info.Blocks, len(entries))
			}
			if err := r.Verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// segCountingWriter discards what it is given and counts it.
type segCountingWriter struct{ n int64 }

func (c *segCountingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// TestSegmentWriter_Memory streams 64 MiB through a writer and checks that the
// live heap does not grow with the segment: a writer that kept blocks, keys or
// output would grow by tens of MiB.
func TestSegmentWriter_Memory(t *testing.T) {
	total := int64(64 << 20)
	if testing.Short() {
		total = 16 << 20
	}
	const warmup = 4 << 20
	cw := &segCountingWriter{}
	w := NewSegmentWriter(cw, SegmentWriterOptions{})
	e := Entry{State: "count", Key: make([]byte, 16), Value: make([]byte, 100)}
	x := uint64(0x9e3779b97f4a7c15)
	var raw int64
	var base runtime.MemStats
	warm := false
	for i := uint64(0); raw < total; i++ {
		e.KeyGroup = uint32(i >> 14)
		for j := 0; j < 16; j++ {
			e.Key[j] = byte(i >> (8 * (15 - j)))
		}
		// Half random, half repeated: compresses about 2x, like real values.
		for j := 0; j < 50; j += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for k := 0; k < 8 && j+k < 50; k++ {
				e.Value[j+k] = byte(x >> (8 * k))
			}
		}
		if err := w.Add(&e); err != nil {
			t.Fatal(err)
		}
		raw += int64(len(e.Key) + len(e.Value))
		if !warm && raw >= warmup {
			runtime.GC()
			runtime.ReadMemStats(&base)
			warm = true
		}
	}
	var end runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&end)
	runtime.KeepAlive(w)
	info, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != cw.n || info.Size < total/3 {
		t.Fatalf("segment is %d bytes (%d counted) for %d raw; the test needs poorly compressible data", info.Size, cw.n, raw)
	}
	growth := int64(end.HeapAlloc) - int64(base.HeapAlloc)
	t.Logf("wrote %d MiB raw into %d MiB, %d blocks; heap %d -> %d KiB", raw>>20, info.Size>>20, info.Blocks, base.HeapAlloc>>10, end.HeapAlloc>>10)
	if growth > 4<<20 {
		t.Fatalf("heap grew by %d KiB while writing %d MiB", growth>>10, (total-warmup)>>20)
	}
}

// Golden input: fixed by hand so it never depends on a random generator.
func segGoldenEntries() []Entry {
	var out []Entry
	for kg := uint32(0); kg < 4; kg++ {
		for k := 0; k < 6; k++ {
			out = append(out, Entry{
				State:    "count",
				KeyGroup: kg * 31,
				Key:      []byte(fmt.Sprintf("user-%02d", k)),
				Value:    []byte(fmt.Sprintf(`{"n":%d}`, int(kg)*10+k)),
			})
		}
	}
	out = append(out,
		Entry{State: "dedup", KeyGroup: 7, Key: []byte("msg-1"), Value: []byte{}, ExpiresAt: 1_700_000_000_000_000_000},
		Entry{State: "dedup", KeyGroup: 7, Key: []byte("msg-2"), Tombstone: true},
		Entry{State: "dedup", KeyGroup: 90, Key: []byte{}, Value: []byte("empty key"), ExpiresAt: -5},
		Entry{State: "sessions", KeyGroup: 1, Key: []byte("s\x00\xff"), Value: bytes.Repeat([]byte("click;"), 100)},
		Entry{State: "sessions", KeyGroup: 127, Key: []byte("z"), Tombstone: true, ExpiresAt: 42},
	)
	return out
}

var segGoldenOptions = SegmentWriterOptions{BlockSize: 256, Level: zstd.SpeedDefault}

var segGoldenPath = filepath.Join("..", "..", "testdata", "format", "segment-v1.golden")

// TestSegmentWriter_Golden pins format version 1: the writer must reproduce
// the checked-in bytes, and those bytes must decode to the input. If only the
// byte comparison fails after a klauspost/compress upgrade, the compressor
// changed, not the format: regenerate with
// go test ./pkg/format -run Golden -rewrite.
func TestSegmentWriter_Golden(t *testing.T) {
	got, _ := segWrite(t, segGoldenEntries(), segGoldenOptions)
	checkGoldenFile(t, segGoldenPath, got)

	data, err := os.ReadFile(segGoldenPath)
	if err != nil {
		t.Fatal(err)
	}
	r := segOpen(t, data)
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	want := segGoldenEntries()
	segCompare(t, segCollect(t, r.Iter(0, math.MaxUint32)), want)
	info := r.Info()
	if info.Entries != uint64(len(want)) || info.Tombstones != 2 || info.MinKeyGroup != 0 || info.MaxKeyGroup != 127 ||
		!slices.Equal(info.States, []string{"count", "dedup", "sessions"}) || info.Blocks < 3 || info.Size != int64(len(data)) {
		t.Fatalf("info = %+v", info)
	}
}

// TestSegmentWriter_Concurrency checks that compressing several blocks at
// once changes nothing in the bytes, and that a write failure with blocks in
// flight is reported and leaves no goroutine behind (TestMain checks).
func TestSegmentWriter_Concurrency(t *testing.T) {
	entries := segTestEntries(3000, 7, 0)
	want, _ := segWrite(t, entries, SegmentWriterOptions{BlockSize: 512, Concurrency: 1})
	for _, c := range []int{0, 2, 3, 8} {
		got, _ := segWrite(t, entries, SegmentWriterOptions{BlockSize: 512, Concurrency: c})
		if !bytes.Equal(got, want) {
			t.Fatalf("Concurrency %d: %d bytes differ from the %d written one block at a time", c, len(got), len(want))
		}
	}
	for _, limit := range []int{0, 700, len(want) / 2} {
		w := NewSegmentWriter(&segFailWriter{limit: limit}, SegmentWriterOptions{BlockSize: 512, Concurrency: 8})
		var err error
		for i := range entries {
			if err = w.Add(&entries[i]); err != nil {
				break
			}
		}
		_, cerr := w.Close()
		if !errors.Is(err, errSegDiskFull) && !errors.Is(cerr, errSegDiskFull) {
			t.Fatalf("limit %d: Add error %v, Close error %v; want %v", limit, err, cerr, errSegDiskFull)
		}
	}
}
