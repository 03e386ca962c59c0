package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// segCollect drains it, copying each entry, and fails the test on error.
func segCollect(t testing.TB, it *SegmentIter) []Entry {
	t.Helper()
	var out []Entry
	for it.Next() {
		e := *it.Entry()
		e.Key = bytes.Clone(e.Key)
		e.Value = bytes.Clone(e.Value)
		out = append(out, e)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate: %v", err)
	}
	return out
}

func segCompare(t testing.TB, got, want []Entry) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if !segEntriesEqual(&got[i], &want[i]) {
			t.Fatalf("entry %d:\n got %s\nwant %s", i, segFormatEntry(&got[i]), segFormatEntry(&want[i]))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
}

func segFilter(entries []Entry, minKG, maxKG uint32) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.KeyGroup >= minKG && e.KeyGroup <= maxKG {
			out = append(out, e)
		}
	}
	return out
}

// segCountingReaderAt counts the reads that reach the underlying ReaderAt.
type segCountingReaderAt struct {
	r     io.ReaderAt
	reads atomic.Int64
	bytes atomic.Int64
}

func (c *segCountingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	c.bytes.Add(int64(len(p)))
	return c.r.ReadAt(p, off)
}

func segOpen(t testing.TB, data []byte) *SegmentReader {
	t.Helper()
	r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "test.seg")
	if err != nil {
		t.Fatalf("OpenSegment: %v", err)
	}
	return r
}

func segWantCorrupt(t *testing.T, err, sentinel error) *CorruptError {
	t.Helper()
	segWantErr(t, err, sentinel)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("%v (%T) is not a *CorruptError", err, err)
	}
	return ce
}

func TestSegmentReader_Iter(t *testing.T) {
	const blockSize = 2048
	entries := segTestEntries(6000, 10, 3*blockSize)
	data, info := segWrite(t, entries, SegmentWriterOptions{BlockSize: blockSize})
	if info.Blocks < 50 {
		t.Fatalf("only %d blocks; the test needs many", info.Blocks)
	}

	t.Run("OK", func(t *testing.T) {
		r := segOpen(t, data)
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
		segCompare(t, segCollect(t, r.Iter(0, math.MaxUint32)), entries)
	})

	ranges := [][2]uint32{
		{0, 0}, {5, 5}, {0, 127}, {10, 20}, {100, 127}, {127, 127}, {126, 300},
		{128, math.MaxUint32}, {0, math.MaxUint32}, {64, 63}, {math.MaxUint32, math.MaxUint32},
	}
	for _, kr := range ranges {
		t.Run(fmt.Sprintf("OK/KeyGroups%d-%d", kr[0], kr[1]), func(t *testing.T) {
			cr := &segCountingReaderAt{r: bytes.NewReader(data)}
			r, err := OpenSegment(cr, int64(len(data)), "range")
			if err != nil {
				t.Fatal(err)
			}
			opened := cr.reads.Load()
			got := segCollect(t, r.Iter(kr[0], kr[1]))
			segCompare(t, got, segFilter(entries, kr[0], kr[1]))
			blockReads := cr.reads.Load() - opened
			full := kr[0] == 0 && kr[1] >= 127
			switch {
			case full && blockReads != int64(info.Blocks):
				t.Errorf("full range read %d blocks of %d", blockReads, info.Blocks)
			case !full && kr[1]-kr[0] <= 10 && blockReads*3 > int64(info.Blocks):
				t.Errorf("range %v read %d of %d blocks", kr, blockReads, info.Blocks)
			}
		})
	}

	t.Run("OKConcurrent", func(t *testing.T) {
		r := segOpen(t, data)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lo := uint32(g * 16)
				want := segFilter(entries, lo, lo+20)
				for range 3 {
					it := r.Iter(lo, lo+20)
					i := 0
					for ; it.Next(); i++ {
						if i >= len(want) || !segEntriesEqual(it.Entry(), &want[i]) {
							errs <- fmt.Errorf("goroutine %d: entry %d differs", g, i)
							return
						}
					}
					if it.Err() != nil || i != len(want) {
						errs <- fmt.Errorf("goroutine %d: %d entries of %d, err %v", g, i, len(want), it.Err())
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("ErrRead", func(t *testing.T) {
		errDisk := errors.New("disk on fire")
		fr := &segFailingReaderAt{r: bytes.NewReader(data), okReads: 2, err: errDisk}
		r, err := OpenSegment(fr, int64(len(data)), "fail")
		if err != nil {
			t.Fatal(err)
		}
		it := r.Iter(0, math.MaxUint32)
		for it.Next() {
		}
		err = it.Err()
		if !errors.Is(err, errDisk) {
			t.Fatalf("got %v, want %v", err, errDisk)
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			t.Fatalf("an I/O error was reported as damage: %v", err)
		}
	})
}

// segFailingReaderAt serves okReads reads, then fails every read with err.
type segFailingReaderAt struct {
	r       io.ReaderAt
	okReads int
	err     error
}

func (f *segFailingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if f.okReads == 0 {
		return 0, f.err
	}
	f.okReads--
	return f.r.ReadAt(p, off)
}

func segSmall(t testing.TB) ([]Entry, []byte) {
	entries := segTestEntries(20, 20, 0)
	data, info := segWrite(t, entries, SegmentWriterOptions{BlockSize: 256})
	if info.Blocks < 3 {
		t.Fatalf("small segment has %d blocks, want >= 3", info.Blocks)
	}
	return entries, data
}

func TestOpenSegment(t *testing.T) {
	entries, data := segSmall(t)

	t.Run("OK", func(t *testing.T) {
		cr := &segCountingReaderAt{r: bytes.NewReader(data)}
		r, err := OpenSegment(cr, int64(len(data)), "ok")
		if err != nil {
			t.Fatal(err)
		}
		if n := cr.reads.Load(); n != 2 {
			t.Errorf("OpenSegment made %d reads, want 2 (footer, index)", n)
		}
		if got := r.Info().Entries; got != uint64(len(entries)) {
			t.Errorf("Entries = %d, want %d", got, len(entries))
		}
	})

	t.Run("ErrBadMagic", func(t *testing.T) {
		bad := bytes.Clone(data)
		bad[len(bad)-1] ^= 0xff
		_, err := OpenSegment(bytes.NewReader(bad), int64(len(bad)), "magic")
		ce := segWantCorrupt(t, err, ErrBadMagic)
		if ce.File != "magic" || ce.Record != "footer" || ce.Offset != int64(len(bad)-8) {
			t.Errorf("error names %q %q offset %d", ce.File, ce.Record, ce.Offset)
		}
		// Not a segment at all.
		text := []byte(strings.Repeat("this is not a segment\n", 10))
		_, err = OpenSegment(bytes.NewReader(text), int64(len(text)), "text")
		segWantCorrupt(t, err, ErrBadMagic)
	})

	t.Run("ErrUnsupportedVersion", func(t *testing.T) {
		bad := bytes.Clone(data)
		binary.LittleEndian.PutUint16(bad[len(bad)-SegmentFooterLen+segFooterVersionOff:], 2)
		_, err := OpenSegment(bytes.NewReader(bad), int64(len(bad)), "v2")
		segWantCorrupt(t, err, ErrUnsupportedVersion)
	})

	t.Run("ErrTruncated", func(t *testing.T) {
		for n := range len(data) {
			_, err := OpenSegment(bytes.NewReader(data[:n]), int64(n), "cut")
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("truncated to %d bytes: got %v, want a *CorruptError", n, err)
			}
			// The size claims the whole file but the bytes are not there.
			_, err = OpenSegment(bytes.NewReader(data[:n]), int64(len(data)), "short")
			segWantCorrupt(t, err, ErrTruncated)
		}
		_, err := OpenSegment(bytes.NewReader(nil), 0, "empty")
		segWantCorrupt(t, err, ErrTruncated)
	})
}

// TestSegmentReader_Verify_ErrBitFlip flips every bit of a small multi-block
// segment. Every byte is under a checksum that Open or the block read checks,
// so each flip must surface as a *CorruptError from OpenSegment, from Verify,
// and from a full iteration, which must never yield a different entry.
func TestSegmentReader_Verify(t *testing.T) {
	entries, data := segSmall(t)

	t.Run("OK", func(t *testing.T) {
		if err := segOpen(t, data).Verify(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrBitFlip", func(t *testing.T) {
		isCorrupt := func(err error) bool {
			var ce *CorruptError
			return errors.As(err, &ce)
		}
		bad := make([]byte, len(data))
		for i := range data {
			for bit := range 8 {
				copy(bad, data)
				bad[i] ^= 1 << bit
				r, err := OpenSegment(bytes.NewReader(bad), int64(len(bad)), "flip")
				if err != nil {
					if !isCorrupt(err) {
						t.Fatalf("byte %d bit %d: OpenSegment: %v is not a *CorruptError", i, bit, err)
					}
					continue
				}
				if err := r.Verify(); !isCorrupt(err) {
					t.Fatalf("byte %d bit %d: Verify returned %v, want a *CorruptError", i, bit, err)
				}
				it := r.Iter(0, math.MaxUint32)
				n := 0
				for ; it.Next(); n++ {
					if n >= len(entries) || !segEntriesEqual(it.Entry(), &entries[n]) {
						t.Fatalf("byte %d bit %d: entry %d silently differs", i, bit, n)
					}
				}
				if !isCorrupt(it.Err()) {
					t.Fatalf("byte %d bit %d: iteration ended with %v after %d entries, want a *CorruptError", i, bit, it.Err(), n)
				}
			}
		}
	})

	// Damage that keeps every checksum valid: the decoder's own rules must
	// catch it. Each case names where it must surface first.
	for _, tc := range segLieCases() {
		t.Run("Err"+tc.name, func(t *testing.T) {
			l := segBaseLayout()
			tc.mutate(&l)
			data := l.encode(t)
			r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "lie")
			if tc.stage == "open" {
				segWantCorrupt(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatalf("OpenSegment: %v", err)
			}
			segWantCorrupt(t, r.Verify(), tc.want)
			it := r.Iter(0, math.MaxUint32)
			for it.Next() {
			}
			if tc.stage == "iter" {
				segWantCorrupt(t, it.Err(), tc.want)
			} else if it.Err() != nil {
				t.Fatalf("iteration failed on damage only Verify can see: %v", it.Err())
			}
		})
	}

	t.Run("OKBaseLayout", func(t *testing.T) {
		l := segBaseLayout()
		r := segOpen(t, l.encode(t))
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
	})
}

// segRaw encodes hand-written entry bytes: a byte is itself, an int or uint64
// a uvarint, a string or []byte its bytes.
func segRaw(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b = append(b, v)
		case int:
			b = binary.AppendUvarint(b, uint64(v))
		case uint64:
			b = binary.AppendUvarint(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("segRaw: %T", p))
		}
	}
	return b
}

// segTestBlock is one block of a hand-built segment.
type segTestBlock struct {
	raw         []byte
	entries     uint32
	first, last [2]uint32 // state index, key group
	stored      []byte    // written instead of compressing raw, when set
	rawLen      int       // recorded instead of len(raw), when non-zero
	offsetDelta int64     // added to the recorded offset
	crcXor      uint32    // applied to the recorded checksum
}

// segTestLayout builds a segment from explicit parts with valid checksums, so
// tests can state lies the checksums do not catch.
type segTestLayout struct {
	tombstones   uint64
	minKG, maxKG uint32
	states       []string
	blocks       []segTestBlock
	patchIndex   func([]byte) []byte
	patchFooter  func([]byte)
	fileCRCXor   uint32
}

func (l *segTestLayout) encode(t testing.TB) []byte {
	t.Helper()
	slot := segGetBlock(zstd.SpeedFastest)
	if slot.encErr != nil {
		t.Fatal(slot.encErr)
	}
	defer segPutBlock(zstd.SpeedFastest, slot)
	enc := slot.enc
	var file, index []byte
	index = binary.AppendUvarint(index, l.tombstones)
	index = binary.AppendUvarint(index, uint64(l.minKG))
	index = binary.AppendUvarint(index, uint64(l.maxKG))
	index = binary.AppendUvarint(index, uint64(len(l.states)))
	for _, s := range l.states {
		index = binary.AppendUvarint(index, uint64(len(s)))
		index = append(index, s...)
	}
	index = binary.AppendUvarint(index, uint64(len(l.blocks)))
	for _, b := range l.blocks {
		stored := b.stored
		if stored == nil {
			stored = enc.EncodeAll(b.raw, nil)
		}
		rawLen := b.rawLen
		if rawLen == 0 {
			rawLen = len(b.raw)
		}
		index = binary.AppendUvarint(index, uint64(int64(len(file))+b.offsetDelta))
		index = binary.AppendUvarint(index, uint64(len(stored)))
		index = binary.AppendUvarint(index, uint64(rawLen))
		index = binary.AppendUvarint(index, uint64(b.entries))
		index = binary.LittleEndian.AppendUint32(index, segCRC(stored)^b.crcXor)
		index = binary.AppendUvarint(index, uint64(b.first[0]))
		index = binary.AppendUvarint(index, uint64(b.first[1]))
		index = binary.AppendUvarint(index, uint64(b.last[0]))
		index = binary.AppendUvarint(index, uint64(b.last[1]))
		file = append(file, stored...)
	}
	if l.patchIndex != nil {
		index = l.patchIndex(index)
	}
	indexOff := len(file)
	file = append(file, index...)
	f := make([]byte, SegmentFooterLen)
	binary.LittleEndian.PutUint32(f[segFooterFileCRCOff:], segCRC(file)^l.fileCRCXor)
	binary.LittleEndian.PutUint64(f[segFooterIndexOffOff:], uint64(indexOff))
	binary.LittleEndian.PutUint32(f[segFooterIndexLenOff:], uint32(len(index)))
	binary.LittleEndian.PutUint32(f[segFooterIndexCRCOff:], segCRC(index))
	binary.LittleEndian.PutUint16(f[segFooterVersionOff:], SegmentVersion1)
	copy(f[segFooterMagicOff:], segmentMagic[:])
	if l.patchFooter != nil {
		l.patchFooter(f)
	}
	binary.LittleEndian.PutUint32(f[segFooterCRCOff:], segCRC(f[segFooterFileCRCOff:]))
	return append(file, f...)
}

// segBaseLayout is a valid two-state, two-block segment:
// block 0 holds a/1/k1, a/1/k2, a/3/k; block 1 holds b/0/x (tombstone), b/2/y.
func segBaseLayout() segTestLayout {
	return segTestLayout{
		tombstones: 1, minKG: 0, maxKG: 3,
		states: []string{"a", "b"},
		blocks: []segTestBlock{
			{
				raw: segRaw(
					byte(0), 0, 1, 2, "k1", 2, "v1",
					byte(0), 0, 1, 2, "k2", 0,
					byte(segEntryFlagExpiry), 0, 3, 1, "k", uint64(200), 3, "v3v"),
				entries: 3, first: [2]uint32{0, 1}, last: [2]uint32{0, 3},
			},
			{
				raw: segRaw(
					byte(segEntryFlagTombstone), 1, 0, 1, "x", 0,
					byte(0), 1, 2, 1, "y", 1, "!"),
				entries: 2, first: [2]uint32{1, 0}, last: [2]uint32{1, 2},
			},
		},
	}
}

type segLieCase struct {
	name   string
	mutate func(*segTestLayout)
	stage  string // "open", "iter" (iteration and Verify), or "verify" (Verify only)
	want   error
}

func segLieCases() []segLieCase {
	setFooter16 := func(off int, v uint16) func(l *segTestLayout) {
		return func(l *segTestLayout) {
			l.patchFooter = func(f []byte) { binary.LittleEndian.PutUint16(f[off:], v) }
		}
	}
	block0 := func(f func(b *segTestBlock)) func(l *segTestLayout) {
		return func(l *segTestLayout) { f(&l.blocks[0]) }
	}
	return []segLieCase{
		{"FooterFlags", setFooter16(segFooterFlagsOff, 1), "open", ErrMalformed},
		{"FooterVersion", setFooter16(segFooterVersionOff, 0), "open", ErrUnsupportedVersion},
		{"FooterIndexTooLarge", func(l *segTestLayout) {
			l.patchFooter = func(f []byte) { binary.LittleEndian.PutUint32(f[segFooterIndexLenOff:], MaxSegmentIndexLen+1) }
		}, "open", ErrTooLarge},
		{"FooterIndexMisplaced", func(l *segTestLayout) {
			l.patchFooter = func(f []byte) { binary.LittleEndian.PutUint64(f[segFooterIndexOffOff:], math.MaxUint64) }
		}, "open", ErrMalformed},
		{"IndexTrailingBytes", func(l *segTestLayout) {
			l.patchIndex = func(b []byte) []byte { return append(b, 0) }
		}, "open", ErrMalformed},
		{"IndexNonShortestVarint", func(l *segTestLayout) {
			l.patchIndex = func(b []byte) []byte { return append([]byte{0x81, 0x00}, b[1:]...) }
		}, "open", ErrMalformed},
		{"IndexVarintOverflow", func(l *segTestLayout) {
			l.patchIndex = func(b []byte) []byte {
				return append(bytes.Repeat([]byte{0xff}, 10), append([]byte{0x01}, b[1:]...)...)
			}
		}, "open", ErrMalformed},
		{"IndexStateCountHuge", func(l *segTestLayout) {
			l.patchIndex = func(b []byte) []byte { return append(b[:3:3], segRaw(uint64(1<<40))...) }
		}, "open", ErrTruncated},
		{"IndexBlockCountHuge", func(l *segTestLayout) {
			l.blocks = nil
			l.states, l.tombstones, l.maxKG = nil, 0, 0
			l.patchIndex = func(b []byte) []byte { return append(b[:len(b)-1:len(b)-1], segRaw(uint64(1e9))...) }
		}, "open", ErrTruncated},
		{"IndexStateNameTooLong", func(l *segTestLayout) {
			l.states = []string{"a", strings.Repeat("b", MaxStateNameLen+1)}
		}, "open", ErrTooLarge},
		{"IndexStatesUnsorted", func(l *segTestLayout) { l.states = []string{"b", "a"} }, "open", ErrMalformed},
		{"IndexStatesDuplicate", func(l *segTestLayout) { l.states = []string{"a", "a"} }, "open", ErrMalformed},
		{"IndexBlockGap", func(l *segTestLayout) { l.blocks[1].offsetDelta = 1 }, "open", ErrMalformed},
		{"IndexRawTooLarge", block0(func(b *segTestBlock) { b.rawLen = MaxBlockLen + 1 }), "open", ErrTooLarge},
		{"IndexEntriesOverRaw", block0(func(b *segTestBlock) { b.entries = 100 }), "open", ErrMalformed},
		{"IndexNoEntries", block0(func(b *segTestBlock) { b.entries = 0 }), "open", ErrMalformed},
		{"IndexFirstAfterLast", block0(func(b *segTestBlock) { b.first = [2]uint32{0, 5} }), "open", ErrMalformed},
		{"IndexStateOutOfRange", block0(func(b *segTestBlock) { b.last = [2]uint32{2, 0} }), "open", ErrMalformed},
		{"IndexBlocksOverlap", func(l *segTestLayout) { l.blocks[1].first = [2]uint32{0, 2} }, "open", ErrMalformed},
		{"IndexFirstStateNotZero", func(l *segTestLayout) {
			l.states = []string{"0", "a", "b"}
			for i := range l.blocks {
				l.blocks[i].first[0]++
				l.blocks[i].last[0]++
			}
		}, "open", ErrMalformed},
		{"IndexLastStateUnused", func(l *segTestLayout) { l.states = append(l.states, "c") }, "open", ErrMalformed},
		{"IndexKeyGroupsOutsideRange", func(l *segTestLayout) { l.maxKG = 2 }, "open", ErrMalformed},
		{"IndexMinAboveMax", func(l *segTestLayout) { l.minKG, l.maxKG = 4, 3 }, "open", ErrMalformed},
		{"IndexTombstonesOverEntries", func(l *segTestLayout) { l.tombstones = 6 }, "open", ErrMalformed},
		{"IndexEmptyWithState", func(l *segTestLayout) {
			l.blocks, l.tombstones, l.maxKG = nil, 0, 0
		}, "open", ErrMalformed},

		{"BlockChecksum", block0(func(b *segTestBlock) { b.crcXor = 1 }), "iter", ErrChecksum},
		{"BlockNotZstd", block0(func(b *segTestBlock) { b.stored = []byte("plain text, not zstd") }), "iter", ErrMalformed},
		{"BlockRawLenMismatch", block0(func(b *segTestBlock) { b.rawLen = len(b.raw) + 1 }), "iter", ErrMalformed},
		{"BlockTwoFrames", block0(func(b *segTestBlock) {
			enc, _ := zstd.NewWriter(nil)
			b.stored = enc.EncodeAll(b.raw[:5], nil)
			b.stored = enc.EncodeAll(b.raw[5:], b.stored)
		}), "iter", ErrMalformed},
		{"BlockSkippableFrame", block0(func(b *segTestBlock) {
			enc, _ := zstd.NewWriter(nil)
			b.stored = append(segRaw(byte(0x50), byte(0x2a), byte(0x4d), byte(0x18), byte(0), byte(0), byte(0), byte(0)),
				enc.EncodeAll(b.raw, nil)...)
		}), "iter", ErrMalformed},
		{"EntryUnknownFlag", block0(func(b *segTestBlock) { b.raw[0] |= 0x80 }), "iter", ErrMalformed},
		{"EntryOutOfOrder", block0(func(b *segTestBlock) {
			b.raw = segRaw(byte(0), 0, 1, 2, "k2", 0, byte(0), 0, 1, 2, "k1", 0, byte(0), 0, 3, 1, "k", 0)
		}), "iter", ErrMalformed},
		{"EntryDuplicateAcrossBlocks", func(l *segTestLayout) {
			b := &l.blocks[1]
			b.raw = append(segRaw(byte(0), 0, 3, 1, "k", 0), b.raw...)
			b.entries++
			b.first = [2]uint32{0, 3}
		}, "iter", ErrMalformed},
		{"EntryTrailingBytes", block0(func(b *segTestBlock) { b.raw = append(b.raw, 0) }), "iter", ErrMalformed},
		{"EntryCountShort", block0(func(b *segTestBlock) { b.entries = 2 }), "iter", ErrMalformed},
		{"EntryCountLong", block0(func(b *segTestBlock) { b.entries = 4 }), "iter", ErrTruncated},
		{"EntryFirstMismatch", block0(func(b *segTestBlock) { b.first = [2]uint32{0, 0} }), "iter", ErrMalformed},
		{"EntryLastMismatch", block0(func(b *segTestBlock) { b.last = [2]uint32{0, 2} }), "iter", ErrMalformed},
		{"EntryStateOutOfRange", block0(func(b *segTestBlock) {
			b.raw = segRaw(byte(0), 0, 1, 2, "k1", 0, byte(0), 0, 1, 2, "k2", 0, byte(0), 7, 3, 1, "k", 0)
		}), "iter", ErrMalformed},
		{"EntryKeyGroupOverflow", block0(func(b *segTestBlock) {
			b.raw = segRaw(byte(0), 0, 1, 2, "k1", 0, byte(0), 0, 1, 2, "k2", 0, byte(0), 0, uint64(1<<32|3), 1, "k", 0)
		}), "iter", ErrMalformed},
		{"EntryKeyTooLong", block0(func(b *segTestBlock) {
			b.raw = segRaw(byte(0), 0, 1, uint64(MaxKeyLen+1), "k1", 0, b.raw[7:])
		}), "iter", ErrTooLarge},
		{"EntryValueTooLong", block0(func(b *segTestBlock) {
			b.raw = segRaw(byte(0), 0, 1, 2, "k1", uint64(MaxValueLen+1), "v1", b.raw[8:])
		}), "iter", ErrTooLarge},
		{"EntryKeyPastEnd", block0(func(b *segTestBlock) {
			b.raw = segRaw(byte(0), 0, 1, 2, "k1", 0, byte(0), 0, 1, 2, "k2", 0, byte(0), 0, 3, 50, "k")
		}), "iter", ErrTruncated},
		{"EntryTombstoneValue", block0(func(b *segTestBlock) { b.raw[0] = segEntryFlagTombstone }), "iter", ErrMalformed},
		// The second entry's value length (0) is read as its expiry.
		{"EntryZeroExpiry", block0(func(b *segTestBlock) { b.raw[9] = segEntryFlagExpiry }), "iter", ErrMalformed},
		{"EntryNonShortestVarint", block0(func(b *segTestBlock) {
			b.raw = segRaw(byte(0), 0, byte(0x81), byte(0x00), 2, "k1", 0, b.raw[9:])
		}), "iter", ErrMalformed},

		{"VerifyTombstoneCount", func(l *segTestLayout) { l.tombstones = 0 }, "verify", ErrMalformed},
		{"VerifyKeyGroupRange", func(l *segTestLayout) { l.maxKG = 9 }, "verify", ErrMalformed},
		{"VerifyStateUnused", func(l *segTestLayout) {
			// One block spans states a..c but holds no entry of b.
			l.states = []string{"a", "b", "c"}
			l.blocks = []segTestBlock{{
				raw:     segRaw(byte(0), 0, 1, 1, "k", 0, byte(segEntryFlagTombstone), 2, 0, 1, "x", 0),
				entries: 2, first: [2]uint32{0, 1}, last: [2]uint32{2, 0},
			}}
			l.maxKG = 1
		}, "verify", ErrMalformed},
		{"VerifyFileChecksum", func(l *segTestLayout) { l.fileCRCXor = 1 }, "verify", ErrChecksum},
	}
}

func TestSegmentReader_Describe(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		data, _ := segWrite(t, segGoldenEntries(), segGoldenOptions)
		r := segOpen(t, data)
		var buf bytes.Buffer
		if err := r.Describe(&buf); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		t.Logf("\n%s", out)
		info := r.Info()
		for _, want := range []string{
			"segment     test.seg\n",
			"version     1\n",
			fmt.Sprintf("size        %d bytes\n", len(data)),
			"entries     29 (2 tombstones)\n",
			"key groups  0..127\n",
			`states      3 ["count" "dedup" "sessions"]` + "\n",
			fmt.Sprintf("blocks      %d\n", info.Blocks),
			`"count"/0`,
			`"sessions"/127`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("Describe output lacks %q", want)
			}
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if want := 10 + 1 + info.Blocks; len(lines) != want {
			t.Errorf("Describe printed %d lines, want %d", len(lines), want)
		}
		for i, b := range r.Blocks() {
			row := lines[11+i]
			if !strings.Contains(row, fmt.Sprintf(" %d ", b.Offset)) || !strings.Contains(row, fmt.Sprintf("%08x", b.Checksum)) {
				t.Errorf("block %d row %q lacks offset %d or checksum %08x", i, row, b.Offset, b.Checksum)
			}
		}
	})

	t.Run("OKEmpty", func(t *testing.T) {
		data, _ := segWrite(t, nil, SegmentWriterOptions{})
		var buf bytes.Buffer
		if err := segOpen(t, data).Describe(&buf); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "blocks      0\n") {
			t.Errorf("Describe of an empty segment:\n%s", buf.String())
		}
	})
}

func TestSegmentReader_Blocks(t *testing.T) {
	entries := segTestEntries(3000, 30, 0)
	data, info := segWrite(t, entries, SegmentWriterOptions{BlockSize: 1024})
	blocks := segOpen(t, data).Blocks()
	if len(blocks) != info.Blocks {
		t.Fatalf("%d handles, info says %d blocks", len(blocks), info.Blocks)
	}
	// Replay the entries against the handles: each block's count, bounds and
	// extent must match what was written into it.
	var off int64
	i := 0
	for bi, b := range blocks {
		if b.Offset != off || b.StoredLen <= 0 || segCRC(data[b.Offset:b.Offset+int64(b.StoredLen)]) != b.Checksum {
			t.Fatalf("block %d: %+v, expected offset %d", bi, b, off)
		}
		first, last := &entries[i], &entries[i+b.Entries-1]
		if b.FirstState != first.State || b.FirstKeyGroup != first.KeyGroup ||
			b.LastState != last.State || b.LastKeyGroup != last.KeyGroup {
			t.Fatalf("block %d bounds %+v, entries %s .. %s", bi, b, segFormatEntry(first), segFormatEntry(last))
		}
		off += int64(b.StoredLen)
		i += b.Entries
	}
	if i != len(entries) {
		t.Fatalf("handles count %d entries, wrote %d", i, len(entries))
	}
}
