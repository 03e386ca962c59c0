package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"text/tabwriter"

	"github.com/klauspost/compress/zstd"
)

// SegmentReader reads a segment through an io.ReaderAt. Opening it reads and
// validates only the footer and the index; blocks are read on demand by
// iterators. It is immutable after OpenSegment and safe for concurrent use by
// several iterators, provided the io.ReaderAt is (as *os.File is).
type SegmentReader struct {
	r    io.ReaderAt
	size int64
	name string

	version  uint16
	indexOff int64
	indexLen int
	indexCRC uint32
	fileCRC  uint32

	states     []string
	blocks     []segBlockHandle
	entries    uint64
	tombstones uint64
	rawSize    int64
	minKG      uint32
	maxKG      uint32
}

// OpenSegment validates the footer and index of the size-byte segment in r.
// name identifies the file in errors. Damage is reported as a *CorruptError
// (wrong magic wraps ErrBadMagic, an unknown version ErrUnsupportedVersion);
// a failing read is returned wrapped as it is.
func OpenSegment(r io.ReaderAt, size int64, name string) (*SegmentReader, error) {
	if size < SegmentFooterLen {
		return nil, corrupt(name, 0, "footer", ErrTruncated,
			"file is %d bytes, shorter than the %d-byte footer", size, SegmentFooterLen)
	}
	footerOff := size - SegmentFooterLen
	var f [SegmentFooterLen]byte
	if err := segReadAt(r, f[:], footerOff, name, "footer"); err != nil {
		return nil, err
	}
	if !bytes.Equal(f[segFooterMagicOff:], segmentMagic[:]) {
		return nil, corrupt(name, footerOff+segFooterMagicOff, "footer", ErrBadMagic,
			"got %x, want %x", f[segFooterMagicOff:], segmentMagic[:])
	}
	version := binary.LittleEndian.Uint16(f[segFooterVersionOff:])
	if version != SegmentVersion1 {
		return nil, corrupt(name, footerOff+segFooterVersionOff, "footer", ErrUnsupportedVersion,
			"segment version %d, this build reads version %d", version, SegmentVersion1)
	}
	if got, want := segCRC(f[segFooterFileCRCOff:]), binary.LittleEndian.Uint32(f[segFooterCRCOff:]); got != want {
		return nil, corrupt(name, footerOff, "footer", ErrChecksum,
			"computed crc32c %#08x, stored %#08x", got, want)
	}
	if flags := binary.LittleEndian.Uint16(f[segFooterFlagsOff:]); flags != 0 {
		return nil, corrupt(name, footerOff+segFooterFlagsOff, "footer", ErrMalformed,
			"reserved flags %#04x are not zero", flags)
	}
	indexOff := binary.LittleEndian.Uint64(f[segFooterIndexOffOff:])
	indexLen := binary.LittleEndian.Uint32(f[segFooterIndexLenOff:])
	if indexLen > MaxSegmentIndexLen {
		return nil, corrupt(name, footerOff+segFooterIndexLenOff, "footer", ErrTooLarge,
			"index length %d exceeds MaxSegmentIndexLen %d", indexLen, MaxSegmentIndexLen)
	}
	if indexOff > uint64(footerOff) || indexOff+uint64(indexLen) != uint64(footerOff) {
		return nil, corrupt(name, footerOff+segFooterIndexOffOff, "footer", ErrMalformed,
			"index at %d with length %d does not end where the footer starts (%d)", indexOff, indexLen, footerOff)
	}

	sr := &SegmentReader{
		r:        r,
		size:     size,
		name:     name,
		version:  version,
		indexOff: int64(indexOff),
		indexLen: int(indexLen),
		indexCRC: binary.LittleEndian.Uint32(f[segFooterIndexCRCOff:]),
		fileCRC:  binary.LittleEndian.Uint32(f[segFooterFileCRCOff:]),
	}
	index := make([]byte, indexLen)
	if err := segReadAt(r, index, sr.indexOff, name, "index"); err != nil {
		return nil, err
	}
	if got := segCRC(index); got != sr.indexCRC {
		return nil, corrupt(name, sr.indexOff, "index", ErrChecksum,
			"computed crc32c %#08x, stored %#08x", got, sr.indexCRC)
	}
	if err := sr.decodeIndex(index); err != nil {
		return nil, err
	}
	return sr, nil
}

// decodeIndex parses and validates the index: every bound and every
// cross-field rule that can be checked without reading a block.
func (sr *SegmentReader) decodeIndex(b []byte) error {
	c := segCursor{b: b}
	fail := func() error {
		return &CorruptError{File: sr.name, Offset: sr.indexOff + int64(c.errOff), Record: "index", Err: c.err}
	}
	sr.tombstones = c.uvarint("tombstone count", math.MaxUint64, nil)
	sr.minKG = uint32(c.uvarint("min key group", math.MaxUint32, ErrMalformed))
	sr.maxKG = uint32(c.uvarint("max key group", math.MaxUint32, ErrMalformed))
	nStates := c.count("state count", 1)
	if c.err != nil {
		return fail()
	}
	sr.states = make([]string, nStates)
	for i := range sr.states {
		n := c.uvarint("state name length", MaxStateNameLen, ErrTooLarge)
		name := c.bytes("state name", n)
		if c.err != nil {
			return fail()
		}
		sr.states[i] = string(name)
		if i > 0 && sr.states[i-1] >= sr.states[i] {
			c.failAt(c.off, ErrMalformed, "state %d %q does not sort after state %d %q",
				i, sr.states[i], i-1, sr.states[i-1])
			return fail()
		}
	}
	nBlocks := c.count("block count", segMinHandleLen)
	if c.err != nil {
		return fail()
	}
	sr.blocks = make([]segBlockHandle, nBlocks)
	var next int64 // where the next block must start: blocks tile [0, indexOff)
	for i := range sr.blocks {
		at := c.off
		h := &sr.blocks[i]
		h.offset = int64(c.uvarint("block offset", math.MaxInt64, ErrMalformed))
		h.storedLen = uint32(c.uvarint("block stored length", MaxStoredBlockLen, ErrTooLarge))
		h.rawLen = uint32(c.uvarint("block raw length", MaxBlockLen, ErrTooLarge))
		h.entries = uint32(c.uvarint("block entry count", MaxBlockLen/segMinEntryLen, ErrMalformed))
		h.crc = c.uint32le("block checksum")
		h.firstState = uint32(c.uvarint("block first state", uint64(max(nStates, 1)-1), ErrMalformed))
		h.firstKG = uint32(c.uvarint("block first key group", math.MaxUint32, ErrMalformed))
		h.lastState = uint32(c.uvarint("block last state", uint64(max(nStates, 1)-1), ErrMalformed))
		h.lastKG = uint32(c.uvarint("block last key group", math.MaxUint32, ErrMalformed))
		if c.err != nil {
			return fail()
		}
		var prev *segBlockHandle
		if i > 0 {
			prev = &sr.blocks[i-1]
		}
		switch {
		case nStates == 0:
			c.failAt(at, ErrMalformed, "block %d exists but the state table is empty", i)
		case h.offset != next:
			c.failAt(at, ErrMalformed, "block %d starts at %d, want %d", i, h.offset, next)
		case h.storedLen == 0:
			c.failAt(at, ErrMalformed, "block %d has no stored bytes", i)
		case h.entries == 0 || uint64(h.entries)*segMinEntryLen > uint64(h.rawLen):
			c.failAt(at, ErrMalformed, "block %d claims %d entries in %d raw bytes", i, h.entries, h.rawLen)
		case segCompareStateKG(h.firstState, h.firstKG, h.lastState, h.lastKG) > 0:
			c.failAt(at, ErrMalformed, "block %d first (%d, %d) sorts after its last (%d, %d)",
				i, h.firstState, h.firstKG, h.lastState, h.lastKG)
		case prev == nil && h.firstState != 0:
			c.failAt(at, ErrMalformed, "block 0 starts at state %d, not the first state", h.firstState)
		case prev != nil && segCompareStateKG(prev.lastState, prev.lastKG, h.firstState, h.firstKG) > 0:
			c.failAt(at, ErrMalformed, "block %d starts at (%d, %d), before block %d ends (%d, %d)",
				i, h.firstState, h.firstKG, i-1, prev.lastState, prev.lastKG)
		case prev != nil && h.firstState > prev.lastState+1:
			c.failAt(at, ErrMalformed, "no block holds state %d", prev.lastState+1)
		case h.firstKG < sr.minKG || h.firstKG > sr.maxKG || h.lastKG < sr.minKG || h.lastKG > sr.maxKG:
			c.failAt(at, ErrMalformed, "block %d key groups %d..%d fall outside the segment's %d..%d",
				i, h.firstKG, h.lastKG, sr.minKG, sr.maxKG)
		}
		if c.err != nil {
			return fail()
		}
		next += int64(h.storedLen)
		sr.entries += uint64(h.entries)
		sr.rawSize += int64(h.rawLen)
	}
	switch {
	case c.off != len(b):
		c.failAt(c.off, ErrMalformed, "%d bytes follow the last block handle", len(b)-c.off)
	case next != sr.indexOff:
		c.failAt(c.off, ErrMalformed, "blocks end at %d but the index starts at %d", next, sr.indexOff)
	case nBlocks > 0 && int(sr.blocks[nBlocks-1].lastState) != nStates-1:
		c.failAt(c.off, ErrMalformed, "no block holds state %d", sr.blocks[nBlocks-1].lastState+1)
	case nBlocks == 0 && (nStates != 0 || sr.tombstones != 0 || sr.minKG != 0 || sr.maxKG != 0):
		c.failAt(0, ErrMalformed, "an empty segment lists %d states, %d tombstones, key groups %d..%d",
			nStates, sr.tombstones, sr.minKG, sr.maxKG)
	case sr.tombstones > sr.entries:
		c.failAt(0, ErrMalformed, "%d tombstones among %d entries", sr.tombstones, sr.entries)
	case sr.minKG > sr.maxKG:
		c.failAt(0, ErrMalformed, "min key group %d exceeds max %d", sr.minKG, sr.maxKG)
	}
	if c.err != nil {
		return fail()
	}
	return nil
}

// Info returns the segment's summary as recorded in its index. SHA256 is zero.
func (sr *SegmentReader) Info() SegmentInfo {
	return SegmentInfo{
		Size:        sr.size,
		RawSize:     sr.rawSize,
		Entries:     sr.entries,
		Tombstones:  sr.tombstones,
		Blocks:      len(sr.blocks),
		MinKeyGroup: sr.minKG,
		MaxKeyGroup: sr.maxKG,
		States:      append([]string(nil), sr.states...),
	}
}

// Blocks returns a description of every block, in file order.
func (sr *SegmentReader) Blocks() []BlockHandle {
	out := make([]BlockHandle, len(sr.blocks))
	for i, h := range sr.blocks {
		out[i] = BlockHandle{
			Offset:        h.offset,
			StoredLen:     int(h.storedLen),
			RawLen:        int(h.rawLen),
			Entries:       int(h.entries),
			Checksum:      h.crc,
			FirstState:    sr.states[h.firstState],
			FirstKeyGroup: h.firstKG,
			LastState:     sr.states[h.lastState],
			LastKeyGroup:  h.lastKG,
		}
	}
	return out
}

// Iter returns an iterator over the entries whose key group lies in
// [minKG, maxKG], in segment order. Blocks whose index bounds rule out that
// range are not read. Each iterator owns its buffers.
func (sr *SegmentReader) Iter(minKG, maxKG uint32) *SegmentIter {
	return &SegmentIter{sr: sr, minKG: minKG, maxKG: maxKG, cur: -1, done: minKG > maxKG}
}

// Verify reads the whole segment and checks everything: each block's
// checksum, decompression and every entry, the order across blocks, the
// index's counts and bounds against the entries, and the whole-file checksum.
// It returns the first problem as a *CorruptError, or a read error.
func (sr *SegmentReader) Verify() error {
	it := sr.Iter(0, math.MaxUint32)
	it.trackCRC = true
	var (
		tombstones   uint64
		minKG, maxKG uint32
		states       int
		lastState    uint32
	)
	for it.Next() {
		e := it.Entry()
		if e.Tombstone {
			tombstones++
		}
		if states == 0 {
			minKG, maxKG = e.KeyGroup, e.KeyGroup
		}
		if states == 0 || it.stateIdx != lastState {
			states++
			lastState = it.stateIdx
		}
		minKG, maxKG = min(minKG, e.KeyGroup), max(maxKG, e.KeyGroup)
	}
	if err := it.Err(); err != nil {
		return err
	}
	switch {
	case tombstones != sr.tombstones:
		return corrupt(sr.name, sr.indexOff, "index", ErrMalformed,
			"index counts %d tombstones, blocks hold %d", sr.tombstones, tombstones)
	case minKG != sr.minKG || maxKG != sr.maxKG:
		return corrupt(sr.name, sr.indexOff, "index", ErrMalformed,
			"index gives key groups %d..%d, blocks hold %d..%d", sr.minKG, sr.maxKG, minKG, maxKG)
	case states != len(sr.states):
		return corrupt(sr.name, sr.indexOff, "index", ErrMalformed,
			"index lists %d states, blocks use %d", len(sr.states), states)
	}
	// Blocks tile [0, indexOff) and were read in order, so the iterator's
	// running checksum covers everything before the index.
	index := make([]byte, sr.indexLen)
	if err := segReadAt(sr.r, index, sr.indexOff, sr.name, "index"); err != nil {
		return err
	}
	if got := crc32.Update(it.fileCRC, segCRCTable, index); got != sr.fileCRC {
		return corrupt(sr.name, 0, "file", ErrChecksum,
			"computed crc32c %#08x over %d bytes, footer says %#08x", got, sr.indexOff+int64(sr.indexLen), sr.fileCRC)
	}
	return nil
}

// Describe writes a human-readable account of the segment's layout from its
// footer and index: the footer fields, the summary, and each block's extent
// and bounds. It reads no block.
func (sr *SegmentReader) Describe(w io.Writer) error {
	name := sr.name
	if name == "" {
		name = "<input>"
	}
	ratio := 0.0
	if sr.indexOff > 0 {
		ratio = float64(sr.rawSize) / float64(sr.indexOff)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "segment\t%s\n", name)
	fmt.Fprintf(tw, "version\t%d\n", sr.version)
	fmt.Fprintf(tw, "size\t%d bytes\n", sr.size)
	fmt.Fprintf(tw, "entries\t%d (%d tombstones)\n", sr.entries, sr.tombstones)
	fmt.Fprintf(tw, "raw size\t%d bytes (%.2fx compression)\n", sr.rawSize, ratio)
	fmt.Fprintf(tw, "key groups\t%d..%d\n", sr.minKG, sr.maxKG)
	fmt.Fprintf(tw, "states\t%d %q\n", len(sr.states), sr.states)
	fmt.Fprintf(tw, "index\toffset %d, length %d, crc32c %#08x\n", sr.indexOff, sr.indexLen, sr.indexCRC)
	fmt.Fprintf(tw, "footer\toffset %d, length %d, file crc32c %#08x\n", sr.size-SegmentFooterLen, SegmentFooterLen, sr.fileCRC)
	fmt.Fprintf(tw, "blocks\t%d\n", len(sr.blocks))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format: describe segment %s: %w", name, err)
	}
	if len(sr.blocks) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "block\toffset\tstored\traw\tentries\tcrc32c\tfirst\tlast\t\n")
	for i, h := range sr.blocks {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%08x\t%q/%d\t%q/%d\t\n", i, h.offset, h.storedLen, h.rawLen,
			h.entries, h.crc, sr.states[h.firstState], h.firstKG, sr.states[h.lastState], h.lastKG)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format: describe segment %s: %w", name, err)
	}
	return nil
}

// SegmentIter walks a segment's entries in order. It checks each block it
// reads as fully as Verify does, so damage surfaces from Err rather than as
// different entries.
type SegmentIter struct {
	sr           *SegmentReader
	minKG, maxKG uint32

	next int // next block to consider
	cur  int // block being decoded, -1 before the first
	done bool
	err  error

	stored []byte    // the current block as stored
	raw    []byte    // the current block decompressed
	c      segCursor // position in raw
	left   uint32    // entries of the current block not yet decoded
	ord    uint32    // ordinal of the entry being decoded within its block

	entry    Entry
	stateIdx uint32
	// The previous entry decoded (in any block), for the order check.
	havePrev     bool
	prevStateIdx uint32
	prevKG       uint32
	prevKey      []byte

	trackCRC bool   // Verify: keep a running checksum of the stored blocks
	fileCRC  uint32 // running CRC32C of every block read so far
}

// Next advances to the next matching entry and reports whether there is one.
// It returns false at the end or on an error; check Err afterwards.
func (it *SegmentIter) Next() bool {
	if it.done || it.err != nil {
		return false
	}
	blocks := it.sr.blocks
	for {
		if it.left == 0 {
			for it.next < len(blocks) && !blocks[it.next].mayHold(it.minKG, it.maxKG) {
				it.next++
			}
			if it.next >= len(blocks) {
				it.done = true
				return false
			}
			if err := it.load(it.next); err != nil {
				it.err = err
				return false
			}
			it.cur = it.next
			it.next++
		}
		if err := it.decodeEntry(); err != nil {
			it.err = err
			return false
		}
		if kg := it.entry.KeyGroup; kg >= it.minKG && kg <= it.maxKG {
			return true
		}
	}
}

// Entry returns the current entry. It and its slices stay valid only until
// the next call to Next.
func (it *SegmentIter) Entry() *Entry { return &it.entry }

// Err returns the first error met, a *CorruptError for damaged input.
func (it *SegmentIter) Err() error { return it.err }

// load reads, checks and decompresses block i.
func (it *SegmentIter) load(i int) error {
	sr := it.sr
	h := &sr.blocks[i]
	record := fmt.Sprintf("block %d", i)
	it.stored = segGrow(it.stored, int(h.storedLen))
	if err := segReadAt(sr.r, it.stored, h.offset, sr.name, record); err != nil {
		return err
	}
	if got := segCRC(it.stored); got != h.crc {
		return corrupt(sr.name, h.offset, record, ErrChecksum, "computed crc32c %#08x, index says %#08x", got, h.crc)
	}
	if it.trackCRC {
		it.fileCRC = crc32.Update(it.fileCRC, segCRCTable, it.stored)
	}
	var hdr zstd.Header
	if err := hdr.Decode(it.stored); err != nil {
		return corrupt(sr.name, h.offset, record, ErrMalformed, "zstd frame header: %v", err)
	}
	if !hdr.HasFCS || hdr.FrameContentSize != uint64(h.rawLen) {
		return corrupt(sr.name, h.offset, record, ErrMalformed,
			"zstd frame declares %d bytes (known: %t), index says %d", hdr.FrameContentSize, hdr.HasFCS, h.rawLen)
	}
	dec, err := segDecoder()
	if err != nil {
		return fmt.Errorf("format: segment %s: zstd decoder: %w", sr.name, err)
	}
	// The capacity bounds what DecodeAll may produce (WithDecodeAllCapLimit).
	raw, err := dec.DecodeAll(it.stored, segGrow(it.raw, int(h.rawLen))[:0])
	if err != nil {
		return corrupt(sr.name, h.offset, record, ErrMalformed, "zstd: %v", err)
	}
	if len(raw) != int(h.rawLen) {
		return corrupt(sr.name, h.offset, record, ErrMalformed,
			"decompressed to %d bytes, index says %d", len(raw), h.rawLen)
	}
	it.raw = raw
	it.c = segCursor{b: raw}
	it.left = h.entries
	it.ord = 0
	return nil
}

// decodeEntry decodes the next entry of the current block into it.entry and
// checks it against the order and the block's index bounds.
func (it *SegmentIter) decodeEntry() error {
	sr := it.sr
	h := &sr.blocks[it.cur]
	c := &it.c
	start := c.off
	flags := c.byte("entry flags")
	if c.err == nil && flags&^segEntryFlagsKnown != 0 {
		c.failAt(start, ErrMalformed, "unknown entry flags %#02x", flags)
	}
	si := uint32(c.uvarint("state index", uint64(len(sr.states)-1), ErrMalformed))
	kg := uint32(c.uvarint("key group", math.MaxUint32, ErrMalformed))
	key := c.bytes("key", c.uvarint("key length", MaxKeyLen, ErrTooLarge))
	var expires int64
	if flags&segEntryFlagExpiry != 0 {
		expires = c.varint("expiry")
		if c.err == nil && expires == 0 {
			c.failAt(c.off, ErrMalformed, "expiry flag set with a zero expiry")
		}
	}
	vlen := c.uvarint("value length", MaxValueLen, ErrTooLarge)
	tombstone := flags&segEntryFlagTombstone != 0
	if c.err == nil && tombstone && vlen != 0 {
		c.failAt(c.off, ErrMalformed, "tombstone carries a %d-byte value", vlen)
	}
	value := c.bytes("value", vlen)
	if c.err == nil {
		it.checkEntry(h, si, kg, key)
	}
	if c.err != nil {
		return &CorruptError{File: sr.name, Offset: h.offset, Record: fmt.Sprintf("block %d", it.cur),
			Err: fmt.Errorf("entry %d at byte %d of %d decompressed: %w", it.ord, c.errOff, len(it.raw), c.err)}
	}

	it.stateIdx = si
	it.entry = Entry{
		State:     sr.states[si],
		KeyGroup:  kg,
		Key:       key,
		ExpiresAt: expires,
		Tombstone: tombstone,
	}
	if !tombstone {
		it.entry.Value = value
	}
	it.havePrev = true
	it.prevStateIdx, it.prevKG = si, kg
	it.prevKey = append(it.prevKey[:0], key...)
	it.left--
	it.ord++
	return nil
}

// checkEntry records in it.c any way the entry breaks the sort order or the
// block's bounds.
func (it *SegmentIter) checkEntry(h *segBlockHandle, si, kg uint32, key []byte) {
	c := &it.c
	if it.havePrev {
		order := segCompareStateKG(it.prevStateIdx, it.prevKG, si, kg)
		if order == 0 {
			order = bytes.Compare(it.prevKey, key)
		}
		if order >= 0 {
			c.failAt(c.off, ErrMalformed, "entry (%d, %d, %x) does not sort after the previous (%d, %d, %x)",
				si, kg, key, it.prevStateIdx, it.prevKG, it.prevKey)
			return
		}
	}
	if it.ord == 0 && (si != h.firstState || kg != h.firstKG) {
		c.failAt(c.off, ErrMalformed, "first entry is (%d, %d), index says (%d, %d)", si, kg, h.firstState, h.firstKG)
		return
	}
	if it.left == 1 {
		switch {
		case si != h.lastState || kg != h.lastKG:
			c.failAt(c.off, ErrMalformed, "last entry is (%d, %d), index says (%d, %d)", si, kg, h.lastState, h.lastKG)
		case c.off != len(c.b):
			c.failAt(c.off, ErrMalformed, "%d bytes follow the block's %d entries", len(c.b)-c.off, h.entries)
		}
	}
}

// segReadAt fills buf from r at off. A short read is damage (the file is
// shorter than its structures say); any other failure is an I/O error.
func segReadAt(r io.ReaderAt, buf []byte, off int64, name, record string) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt(name, off, record, ErrTruncated, "read %d of %d bytes", n, len(buf))
	}
	return fmt.Errorf("format: segment %s: read %s at offset %d: %w", name, record, off, err)
}

// segGrow returns b with length n, reusing its storage when it is large enough.
func segGrow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func segCompareStateKG(s1, kg1, s2, kg2 uint32) int {
	switch {
	case s1 < s2:
		return -1
	case s1 > s2:
		return 1
	case kg1 < kg2:
		return -1
	case kg1 > kg2:
		return 1
	}
	return 0
}

// segCursor decodes fields from a byte slice. The first failure sticks: later
// calls return zero values, so a decoder can read a whole structure and check
// err once. errOff is where the failing field starts.
type segCursor struct {
	b      []byte
	off    int
	err    error
	errOff int
}

func (c *segCursor) failAt(off int, sentinel error, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
		c.errOff = off
	}
}

func (c *segCursor) byte(field string) byte {
	if c.err != nil {
		return 0
	}
	if c.off >= len(c.b) {
		c.failAt(c.off, ErrTruncated, "%s: input ends", field)
		return 0
	}
	c.off++
	return c.b[c.off-1]
}

// uvarint reads a shortest-form uvarint no larger than limit; a larger value
// fails with overLimit (ErrTooLarge for lengths, ErrMalformed for ranges).
func (c *segCursor) uvarint(field string, limit uint64, overLimit error) uint64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Uvarint(c.b[c.off:])
	switch {
	case n == 0:
		c.failAt(c.off, ErrTruncated, "%s: varint runs past the end", field)
	case n < 0:
		c.failAt(c.off, ErrMalformed, "%s: varint overflows 64 bits", field)
	case n != segUvarintLen(v):
		c.failAt(c.off, ErrMalformed, "%s: varint is not in its shortest form", field)
	case v > limit:
		c.failAt(c.off, overLimit, "%s: %d exceeds %d", field, v, limit)
	}
	if c.err != nil {
		return 0
	}
	c.off += n
	return v
}

// varint reads a shortest-form zig-zag varint.
func (c *segCursor) varint(field string) int64 {
	u := c.uvarint(field, math.MaxUint64, nil)
	return int64(u>>1) ^ -int64(u&1)
}

// count reads an element count, refusing one that the rest of the input
// cannot hold at minLen bytes per element, before anything is allocated.
func (c *segCursor) count(field string, minLen int) int {
	start := c.off
	n := c.uvarint(field, math.MaxUint64, nil)
	if c.err == nil && n > uint64((len(c.b)-c.off)/minLen) {
		c.failAt(start, ErrTruncated, "%s: %d elements cannot fit in the %d bytes left", field, n, len(c.b)-c.off)
		return 0
	}
	return int(n)
}

// bytes returns the next n bytes, capacity-limited so a caller's append
// cannot overwrite what follows.
func (c *segCursor) bytes(field string, n uint64) []byte {
	if c.err != nil {
		return nil
	}
	if n > uint64(len(c.b)-c.off) {
		c.failAt(c.off, ErrTruncated, "%s: %d bytes needed, %d left", field, n, len(c.b)-c.off)
		return nil
	}
	s := c.b[c.off : c.off+int(n) : c.off+int(n)]
	c.off += int(n)
	return s
}

func (c *segCursor) uint32le(field string) uint32 {
	if c.err != nil {
		return 0
	}
	if len(c.b)-c.off < 4 {
		c.failAt(c.off, ErrTruncated, "%s: 4 bytes needed, %d left", field, len(c.b)-c.off)
		return 0
	}
	c.off += 4
	return binary.LittleEndian.Uint32(c.b[c.off-4:])
}
