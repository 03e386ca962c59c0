package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"testing"
)

// FuzzSegmentReader feeds arbitrary bytes to OpenSegment, Describe, Verify and
// the iterator. With reseal set, the footer, index and block checksums are
// recomputed first, so mutations reach the decoding rules behind them.
//
// Invariants: no panic; every failure is a *CorruptError; and when Verify
// accepts the input, iteration succeeds and yields strictly ordered entries
// that agree with the index's counts and bounds, ranged iteration is a filter
// of the full one, and the entries survive a rewrite.
func FuzzSegmentReader(f *testing.F) {
	for _, seed := range segFuzzSeeds(f) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, reseal bool) {
		if reseal {
			data = segReseal(data)
		}
		segCheckDecode(t, data)
	})
}

// FuzzSegmentBlock fuzzes the entry decoding of one block: raw is the
// decompressed block, and the other arguments fill its index handle. When the
// block decodes, re-encoding its entries must give back raw exactly (each
// entry has one encoding).
func FuzzSegmentBlock(f *testing.F) {
	base := segBaseLayout()
	for _, b := range base.blocks {
		f.Add(b.raw, uint16(b.entries), uint8(b.first[1]), uint8(b.last[0]), uint8(b.last[1]))
	}
	f.Add(segRaw(byte(3), 0, 7, 0, uint64(1), 0), uint16(1), uint8(7), uint8(0), uint8(7))
	f.Fuzz(func(t *testing.T, raw []byte, entries uint16, firstKG, lastState, lastKG uint8) {
		if len(raw) == 0 {
			return
		}
		lastState %= 3
		l := segTestLayout{
			states: []string{"a", "b", "c"}[:lastState+1],
			minKG:  0, maxKG: math.MaxUint8,
			blocks: []segTestBlock{{
				raw: raw, entries: uint32(entries),
				first: [2]uint32{0, uint32(firstKG)}, last: [2]uint32{uint32(lastState), uint32(lastKG)},
			}},
		}
		data := l.encode(t)
		r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "block")
		if err != nil {
			segMustCorrupt(t, err)
			return
		}
		it := r.Iter(0, math.MaxUint32)
		var again []byte
		n := 0
		for ; it.Next(); n++ {
			e := it.Entry()
			again = segAppendEntry(again, uint32(slices.Index(l.states, e.State)), e)
		}
		if err := it.Err(); err != nil {
			segMustCorrupt(t, err)
			return
		}
		if n != int(entries) || !bytes.Equal(again, raw) {
			t.Fatalf("block decoded to %d entries (handle says %d) re-encoding to %x, raw %x", n, entries, again, raw)
		}
	})
}

func segMustCorrupt(t *testing.T, err error) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("%v (%T) is not a *CorruptError", err, err)
	}
}

func segFuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	add := func(entries []Entry, opts SegmentWriterOptions) []byte {
		data, _ := segWrite(tb, entries, opts)
		seeds = append(seeds, data)
		return data
	}
	add(nil, SegmentWriterOptions{})
	add(segGoldenEntries(), segGoldenOptions)
	small := add(segTestEntries(20, 20, 0), SegmentWriterOptions{BlockSize: 256})
	add(segTestEntries(60, 21, 700), SegmentWriterOptions{BlockSize: 128})
	// Entries of random bytes: zstd stores such blocks raw, so byte mutations
	// of a resealed seed reach the entry decoder.
	rnd := segTestEntries(12, 22, 0)
	for i := range rnd {
		rnd[i].Tombstone = false
		rnd[i].Value = segPseudoRandom(uint64(i), 30)
	}
	add(rnd, SegmentWriterOptions{BlockSize: 200})

	for _, tc := range segLieCases() {
		l := segBaseLayout()
		tc.mutate(&l)
		seeds = append(seeds, l.encode(tb))
	}
	for _, i := range []int{0, len(small) / 3, len(small) - SegmentFooterLen - 3, len(small) - 5} {
		bad := bytes.Clone(small)
		bad[i] ^= 0x10
		seeds = append(seeds, bad, small[:i])
	}
	return seeds
}

func segPseudoRandom(seed uint64, n int) []byte {
	x := seed*0x9e3779b97f4a7c15 + 1
	out := make([]byte, n)
	for i := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[i] = byte(x)
	}
	return out
}

// segReseal returns a copy of data with every checksum recomputed where the
// footer and index let it be located.
func segReseal(data []byte) []byte {
	data = bytes.Clone(data)
	if !segResealFooter(data) {
		return data
	}
	r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "reseal")
	if err != nil {
		return data
	}
	for i := range r.blocks {
		h := &r.blocks[i]
		h.crc = segCRC(data[h.offset : h.offset+int64(h.storedLen)])
	}
	index := segEncodeIndex(r)
	if len(index) != r.indexLen {
		return data // cannot happen: varints are canonical
	}
	copy(data[r.indexOff:], index)
	segResealFooter(data)
	return data
}

// segResealFooter fixes the index, file and footer checksums in place and
// reports whether the footer locates an index.
func segResealFooter(data []byte) bool {
	if len(data) < SegmentFooterLen {
		return false
	}
	footerOff := len(data) - SegmentFooterLen
	f := data[footerOff:]
	indexOff := binary.LittleEndian.Uint64(f[segFooterIndexOffOff:])
	indexLen := uint64(binary.LittleEndian.Uint32(f[segFooterIndexLenOff:]))
	ok := indexOff <= uint64(footerOff) && indexOff+indexLen == uint64(footerOff)
	if ok {
		binary.LittleEndian.PutUint32(f[segFooterIndexCRCOff:], segCRC(data[indexOff:footerOff]))
	}
	binary.LittleEndian.PutUint32(f[segFooterFileCRCOff:], segCRC(data[:footerOff]))
	binary.LittleEndian.PutUint32(f[segFooterCRCOff:], segCRC(f[segFooterFileCRCOff:]))
	return ok
}

// segEncodeIndex encodes a reader's index the way the writer does.
func segEncodeIndex(r *SegmentReader) []byte {
	var b []byte
	b = binary.AppendUvarint(b, r.tombstones)
	b = binary.AppendUvarint(b, uint64(r.minKG))
	b = binary.AppendUvarint(b, uint64(r.maxKG))
	b = binary.AppendUvarint(b, uint64(len(r.states)))
	for _, s := range r.states {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(r.blocks)))
	for _, h := range r.blocks {
		b = binary.AppendUvarint(b, uint64(h.offset))
		b = binary.AppendUvarint(b, uint64(h.storedLen))
		b = binary.AppendUvarint(b, uint64(h.rawLen))
		b = binary.AppendUvarint(b, uint64(h.entries))
		b = binary.LittleEndian.AppendUint32(b, h.crc)
		b = binary.AppendUvarint(b, uint64(h.firstState))
		b = binary.AppendUvarint(b, uint64(h.firstKG))
		b = binary.AppendUvarint(b, uint64(h.lastState))
		b = binary.AppendUvarint(b, uint64(h.lastKG))
	}
	return b
}

// segCheckDecode runs every reader entry point on data and checks the
// invariants stated on FuzzSegmentReader.
func segCheckDecode(t *testing.T, data []byte) {
	r, err := OpenSegment(bytes.NewReader(data), int64(len(data)), "fuzz")
	if err != nil {
		segMustCorrupt(t, err)
		return
	}
	if err := r.Describe(io.Discard); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	info := r.Info()
	blocks := r.Blocks()
	var indexed uint64
	for _, b := range blocks {
		indexed += uint64(b.Entries)
	}
	if len(blocks) != info.Blocks || indexed != info.Entries {
		t.Fatalf("%d handles holding %d entries, info says %d blocks, %d entries", len(blocks), indexed, info.Blocks, info.Entries)
	}

	var all []Entry
	it := r.Iter(0, math.MaxUint32)
	for it.Next() {
		e := *it.Entry()
		e.Key, e.Value = bytes.Clone(e.Key), bytes.Clone(e.Value)
		all = append(all, e)
	}
	iterErr := it.Err()
	verr := r.Verify()
	if verr != nil {
		segMustCorrupt(t, verr)
		if iterErr != nil {
			segMustCorrupt(t, iterErr)
		}
		return
	}
	if iterErr != nil {
		t.Fatalf("Verify passed but iteration failed: %v", iterErr)
	}

	if uint64(len(all)) != info.Entries {
		t.Fatalf("iterated %d entries, index says %d", len(all), info.Entries)
	}
	var tombstones uint64
	for i := range all {
		e := &all[i]
		if i > 0 && CompareEntries(&all[i-1], e) >= 0 {
			t.Fatalf("entry %d %s does not sort after %s", i, segFormatEntry(e), segFormatEntry(&all[i-1]))
		}
		if e.Tombstone {
			tombstones++
			if e.Value != nil {
				t.Fatalf("tombstone %d has a value", i)
			}
		}
		if e.KeyGroup < info.MinKeyGroup || e.KeyGroup > info.MaxKeyGroup {
			t.Fatalf("entry %d key group %d outside %d..%d", i, e.KeyGroup, info.MinKeyGroup, info.MaxKeyGroup)
		}
		if _, ok := slices.BinarySearch(info.States, e.State); !ok {
			t.Fatalf("entry %d state %q not in %q", i, e.State, info.States)
		}
	}
	if tombstones != info.Tombstones {
		t.Fatalf("%d tombstones, index says %d", tombstones, info.Tombstones)
	}

	lo := info.MinKeyGroup + (info.MaxKeyGroup-info.MinKeyGroup)/3
	hi := lo + (info.MaxKeyGroup-info.MinKeyGroup)/3
	segCompare(t, segCollect(t, r.Iter(lo, hi)), segFilter(all, lo, hi))

	again, winfo := segWrite(t, all, SegmentWriterOptions{BlockSize: 4096})
	if winfo.Entries != info.Entries || winfo.Tombstones != info.Tombstones || !slices.Equal(winfo.States, info.States) {
		t.Fatalf("rewrite info %+v, original %+v", winfo, info)
	}
	segCompare(t, segCollect(t, segOpen(t, again).Iter(0, math.MaxUint32)), all)
}

// TestSegmentReader_Reseal checks the fuzz helper itself: resealing a damaged
// segment must make its checksums pass again, or the fuzzer would never get
// past them.
func TestSegmentReader_Reseal(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		_, data := segSmall(t)
		r := segOpen(t, data)
		blk := r.Blocks()[1]
		bad := bytes.Clone(data)
		bad[blk.Offset+int64(blk.StoredLen)-1] ^= 0x01
		if err := segOpen(t, bad).Verify(); !errors.Is(err, ErrChecksum) {
			t.Fatalf("damaged block: Verify = %v, want ErrChecksum", err)
		}
		err := segOpen(t, segReseal(bad)).Verify()
		if errors.Is(err, ErrChecksum) {
			t.Fatalf("resealed: Verify = %v, still a checksum error", err)
		}
		if err := segOpen(t, segReseal(data)).Verify(); err != nil {
			t.Fatalf("resealing an intact segment broke it: %v", err)
		}
	})
}
