package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// SegmentWriterOptions tune a SegmentWriter. The zero value is ready to use.
type SegmentWriterOptions struct {
	// BlockSize is the uncompressed size at which a block is cut; 0 or less
	// means DefaultSegmentBlockSize and values above MaxBlockLen are clamped.
	// A block holds at least one entry, so a larger entry gets a block of its own.
	BlockSize int
	// Level is the zstd encoder level; 0 means DefaultSegmentLevel.
	Level zstd.EncoderLevel
	// Concurrency is how many full blocks may be compressed at once, each
	// on its own goroutine, while the caller fills the next; 0 or less
	// means min(GOMAXPROCS, 4). Memory grows by about two blocks per unit.
	// The output is the same bytes whatever the value.
	Concurrency int
}

// SegmentWriter streams sorted entries into a segment file. It holds a few
// block buffers (see SegmentWriterOptions.Concurrency) and the index in
// memory, never the segment. It is not safe for concurrent use.
type SegmentWriter struct {
	out         io.Writer
	blockSize   int
	level       zstd.EncoderLevel
	concurrency int

	// What has been written so far, hashed as it goes.
	sha     hash.Hash
	fileCRC uint32
	offset  int64

	// The block being filled.
	block        []byte
	free         []*segPendingBlock // written blocks, whose buffers and encoders are reused
	pending      []*segPendingBlock // blocks being compressed, oldest first
	blockEntries uint32
	blockFirst   uint32 // state index of the block's first entry
	blockFirstKG uint32

	// The last entry added, for the order check and the block's upper bound.
	started   bool
	lastState uint32
	lastKG    uint32
	lastKey   []byte

	states     []string
	statesLen  int    // encoded length of the state table
	handles    []byte // encoded block handles, in order
	nBlocks    int
	rawSize    int64
	entries    uint64
	tombstones uint64
	minKG      uint32
	maxKG      uint32

	err    error // sticky: the first write or encoder failure
	closed bool
}

// NewSegmentWriter returns a writer that streams a segment to w. Nothing is
// written until the first block is full or Close is called. An invalid
// option surfaces as an error from the first Add or from Close.
func NewSegmentWriter(w io.Writer, opts SegmentWriterOptions) *SegmentWriter {
	sw := &SegmentWriter{
		out:       w,
		blockSize: opts.BlockSize,
		level:     opts.Level,
		sha:       sha256.New(),
	}
	if sw.blockSize <= 0 {
		sw.blockSize = DefaultSegmentBlockSize
	}
	sw.blockSize = min(sw.blockSize, MaxBlockLen)
	if sw.level == 0 {
		sw.level = DefaultSegmentLevel
	}
	sw.concurrency = opts.Concurrency
	if sw.concurrency <= 0 {
		sw.concurrency = min(runtime.GOMAXPROCS(0), 4)
	}
	if sw.level < zstd.SpeedFastest || sw.level > zstd.SpeedBestCompression {
		sw.err = fmt.Errorf("format: segment writer: unknown zstd level %d", sw.level)
	}
	return sw
}

// Add appends e, which must sort strictly after the previous entry by
// (state, key group, key); an out-of-order or duplicate entry is refused with
// an error wrapping ErrMalformed, and one over a length limit with an error
// wrapping ErrTooLarge. A refused entry leaves the writer usable. Add copies
// what it needs, so the caller may reuse e and its slices.
func (w *SegmentWriter) Add(e *Entry) error {
	if w.closed {
		return errors.New("format: segment writer: Add after Close")
	}
	if w.err != nil {
		return w.err
	}
	if err := w.check(e); err != nil {
		return err
	}
	newState := !w.started || e.State != w.states[w.lastState]
	stateIdx := w.lastState
	if newState {
		stateIdx = uint32(len(w.states))
		if w.indexBound(segUvarintLen(uint64(len(e.State)))+len(e.State), 0) > MaxSegmentIndexLen {
			return fmt.Errorf("format: segment writer: state %q would grow the index past %d bytes: %w",
				e.State, MaxSegmentIndexLen, ErrTooLarge)
		}
	}

	n := segEntryLen(stateIdx, e)
	if len(w.block) > 0 && len(w.block)+n > w.blockSize {
		if err := w.flushBlock(); err != nil {
			return err
		}
	}
	if newState {
		// Clone: the caller's string may alias a buffer it reuses.
		w.states = append(w.states, strings.Clone(e.State))
		w.statesLen += segUvarintLen(uint64(len(e.State))) + len(e.State)
	}
	if len(w.block) == 0 {
		if w.block == nil {
			w.block = make([]byte, 0, max(w.blockSize, n))
		}
		w.blockFirst, w.blockFirstKG = stateIdx, e.KeyGroup
	}
	w.block = segAppendEntry(w.block, stateIdx, e)

	w.blockEntries++
	w.entries++
	if e.Tombstone {
		w.tombstones++
	}
	if !w.started {
		w.minKG, w.maxKG = e.KeyGroup, e.KeyGroup
	}
	w.minKG = min(w.minKG, e.KeyGroup)
	w.maxKG = max(w.maxKG, e.KeyGroup)
	w.started = true
	w.lastState, w.lastKG = stateIdx, e.KeyGroup
	w.lastKey = append(w.lastKey[:0], e.Key...)
	return nil
}

// check validates e against the limits and the sort order.
func (w *SegmentWriter) check(e *Entry) error {
	switch {
	case len(e.State) > MaxStateNameLen:
		return fmt.Errorf("format: segment writer: state name of %d bytes exceeds MaxStateNameLen %d: %w",
			len(e.State), MaxStateNameLen, ErrTooLarge)
	case len(e.Key) > MaxKeyLen:
		return fmt.Errorf("format: segment writer: key of %d bytes exceeds MaxKeyLen %d: %w",
			len(e.Key), MaxKeyLen, ErrTooLarge)
	case len(e.Value) > MaxValueLen:
		return fmt.Errorf("format: segment writer: value of %d bytes exceeds MaxValueLen %d: %w",
			len(e.Value), MaxValueLen, ErrTooLarge)
	case e.Tombstone && len(e.Value) > 0:
		return fmt.Errorf("format: segment writer: tombstone for key %x carries a %d-byte value: %w",
			e.Key, len(e.Value), ErrMalformed)
	}
	if !w.started {
		return nil
	}
	c := strings.Compare(e.State, w.states[w.lastState])
	if c == 0 {
		switch {
		case e.KeyGroup < w.lastKG:
			c = -1
		case e.KeyGroup > w.lastKG:
			c = 1
		default:
			c = bytes.Compare(e.Key, w.lastKey)
		}
	}
	switch {
	case c == 0:
		return fmt.Errorf("format: segment writer: duplicate entry (%q, %d, %x): %w",
			e.State, e.KeyGroup, e.Key, ErrMalformed)
	case c < 0:
		return fmt.Errorf("format: segment writer: entry (%q, %d, %x) sorts before the previous (%q, %d, %x): %w",
			e.State, e.KeyGroup, e.Key, w.states[w.lastState], w.lastKG, w.lastKey, ErrMalformed)
	}
	return nil
}

// indexBound is an upper bound on the index length after adding extraStates
// bytes of state table and extraHandles bytes of handles.
func (w *SegmentWriter) indexBound(extraStates, extraHandles int) int {
	const header = 5 * binary.MaxVarintLen64
	return header + w.statesLen + extraStates + len(w.handles) + extraHandles
}

// segPendingBlock is a full block being compressed on its own goroutine
// while the writer fills the next ones: zstd is most of a segment's write
// time, so spreading it over the cores and overlapping it with entry encoding
// (and the caller's sorting) cuts the time to write a snapshot by more than
// half on two cores. Blocks are still written in order, so the bytes are the
// same as with no overlap at all.
type segPendingBlock struct {
	done    chan struct{}
	enc     *zstd.Encoder
	encErr  error
	raw     []byte
	stored  []byte
	entries uint32
	first   uint32 // state index and key group of the first entry
	firstKG uint32
	last    uint32 // ... and of the last
	lastKG  uint32
}

// flushBlock hands the current block to compression and starts a new one.
// When Concurrency blocks are already in flight it first waits for the
// oldest and writes it, which bounds memory.
func (w *SegmentWriter) flushBlock() error {
	if len(w.pending) >= w.concurrency {
		if err := w.finishOldest(); err != nil {
			return err
		}
	}
	var p *segPendingBlock
	if n := len(w.free); n > 0 {
		p, w.free = w.free[n-1], w.free[:n-1]
	} else {
		p = segGetBlock(w.level)
	}
	p.done = make(chan struct{})
	p.raw, w.block = w.block, p.raw[:0]
	p.entries, p.first, p.firstKG, p.last, p.lastKG = w.blockEntries, w.blockFirst, w.blockFirstKG, w.lastState, w.lastKG
	if p.encErr == nil {
		go func() {
			p.stored = p.enc.EncodeAll(p.raw, p.stored[:0])
			close(p.done)
		}()
	} else {
		close(p.done)
	}
	w.pending = append(w.pending, p)
	w.blockEntries = 0
	return nil
}

// finishOldest waits for the oldest block being compressed and writes it
// with its index handle.
func (w *SegmentWriter) finishOldest() error {
	p := w.pending[0]
	<-p.done
	w.pending = w.pending[1:]
	if p.encErr != nil {
		w.err = fmt.Errorf("format: segment writer: %w", p.encErr)
		return w.err
	}
	if len(p.stored) > MaxStoredBlockLen {
		w.err = fmt.Errorf("format: segment writer: block %d compressed to %d bytes, over MaxStoredBlockLen %d: %w",
			w.nBlocks, len(p.stored), MaxStoredBlockLen, ErrTooLarge)
		return w.err
	}
	var h [10*binary.MaxVarintLen64 + 4]byte
	hb := h[:0]
	hb = binary.AppendUvarint(hb, uint64(w.offset))
	hb = binary.AppendUvarint(hb, uint64(len(p.stored)))
	hb = binary.AppendUvarint(hb, uint64(len(p.raw)))
	hb = binary.AppendUvarint(hb, uint64(p.entries))
	hb = binary.LittleEndian.AppendUint32(hb, segCRC(p.stored))
	hb = binary.AppendUvarint(hb, uint64(p.first))
	hb = binary.AppendUvarint(hb, uint64(p.firstKG))
	hb = binary.AppendUvarint(hb, uint64(p.last))
	hb = binary.AppendUvarint(hb, uint64(p.lastKG))
	if w.indexBound(0, len(hb)) > MaxSegmentIndexLen {
		w.err = fmt.Errorf("format: segment writer: %d blocks would grow the index past %d bytes (raise BlockSize): %w",
			w.nBlocks+1, MaxSegmentIndexLen, ErrTooLarge)
		return w.err
	}
	if err := w.write(p.stored); err != nil {
		return err
	}
	w.handles = append(w.handles, hb...)
	w.nBlocks++
	w.rawSize += int64(len(p.raw))
	// Keep the buffers for the next blocks, unless an oversized entry
	// inflated them: memory stays near two blocks per block in flight.
	if cap(p.raw) > 2*w.blockSize {
		p.raw = nil
	}
	if cap(p.stored) > 2*w.blockSize {
		p.stored = nil
	}
	w.free = append(w.free, p)
	return nil
}

// finishPending writes every block still being compressed.
func (w *SegmentWriter) finishPending() error {
	for len(w.pending) > 0 {
		if err := w.finishOldest(); err != nil {
			return err
		}
	}
	return nil
}

// release waits for the blocks still being compressed (after an error they
// are not written) and returns every encoder to the pool.
func (w *SegmentWriter) release() {
	for _, p := range w.pending {
		<-p.done
		w.free = append(w.free, p)
	}
	w.pending = nil
	for _, p := range w.free {
		segPutBlock(w.level, p)
	}
	w.free = nil
}

// write sends p to the output, hashing exactly what was written.
func (w *SegmentWriter) write(p []byte) error {
	n, err := w.out.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("format: segment writer: write at offset %d: %w", w.offset, err)
		return w.err
	}
	w.sha.Write(p)
	w.fileCRC = crc32.Update(w.fileCRC, segCRCTable, p)
	w.offset += int64(n)
	return nil
}

// Close writes the last block, the index and the footer, and returns the
// segment's summary including its SHA-256. It does not close the underlying
// io.Writer. After Close the writer accepts nothing more.
func (w *SegmentWriter) Close() (SegmentInfo, error) {
	if w.closed {
		return SegmentInfo{}, errors.New("format: segment writer: Close called twice")
	}
	w.closed = true
	defer w.release()
	if w.err != nil {
		return SegmentInfo{}, w.err
	}
	if len(w.block) > 0 {
		if err := w.flushBlock(); err != nil {
			return SegmentInfo{}, err
		}
	}
	if err := w.finishPending(); err != nil {
		return SegmentInfo{}, err
	}

	index := make([]byte, 0, w.indexBound(0, 0))
	index = binary.AppendUvarint(index, w.tombstones)
	index = binary.AppendUvarint(index, uint64(w.minKG))
	index = binary.AppendUvarint(index, uint64(w.maxKG))
	index = binary.AppendUvarint(index, uint64(len(w.states)))
	for _, s := range w.states {
		index = binary.AppendUvarint(index, uint64(len(s)))
		index = append(index, s...)
	}
	index = binary.AppendUvarint(index, uint64(w.nBlocks))
	index = append(index, w.handles...)

	indexOff := w.offset
	if err := w.write(index); err != nil {
		return SegmentInfo{}, err
	}
	var f [SegmentFooterLen]byte
	binary.LittleEndian.PutUint32(f[segFooterFileCRCOff:], w.fileCRC)
	binary.LittleEndian.PutUint64(f[segFooterIndexOffOff:], uint64(indexOff))
	binary.LittleEndian.PutUint32(f[segFooterIndexLenOff:], uint32(len(index)))
	binary.LittleEndian.PutUint32(f[segFooterIndexCRCOff:], segCRC(index))
	binary.LittleEndian.PutUint16(f[segFooterFlagsOff:], 0)
	binary.LittleEndian.PutUint16(f[segFooterVersionOff:], SegmentVersion1)
	copy(f[segFooterMagicOff:], segmentMagic[:])
	binary.LittleEndian.PutUint32(f[segFooterCRCOff:], segCRC(f[segFooterFileCRCOff:]))
	if err := w.write(f[:]); err != nil {
		return SegmentInfo{}, err
	}

	info := SegmentInfo{
		Size:        w.offset,
		RawSize:     w.rawSize,
		Entries:     w.entries,
		Tombstones:  w.tombstones,
		Blocks:      w.nBlocks,
		MinKeyGroup: w.minKG,
		MaxKeyGroup: w.maxKG,
		States:      w.states,
	}
	copy(info.SHA256[:], w.sha.Sum(nil))
	w.block, w.handles = nil, nil
	return info, nil
}

func segEntryLen(stateIdx uint32, e *Entry) int {
	n := 1 + segUvarintLen(uint64(stateIdx)) + segUvarintLen(uint64(e.KeyGroup)) +
		segUvarintLen(uint64(len(e.Key))) + len(e.Key) +
		segUvarintLen(uint64(len(e.Value))) + len(e.Value)
	if e.ExpiresAt != 0 {
		n += segVarintLen(e.ExpiresAt)
	}
	return n
}

func segAppendEntry(b []byte, stateIdx uint32, e *Entry) []byte {
	var flags byte
	if e.Tombstone {
		flags |= segEntryFlagTombstone
	}
	if e.ExpiresAt != 0 {
		flags |= segEntryFlagExpiry
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(stateIdx))
	b = binary.AppendUvarint(b, uint64(e.KeyGroup))
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	if e.ExpiresAt != 0 {
		b = binary.AppendVarint(b, e.ExpiresAt)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Value)))
	return append(b, e.Value...)
}

// segUvarintLen is the length of the shortest uvarint encoding of v.
func segUvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// segVarintLen is the length of the zig-zag varint encoding of v.
func segVarintLen(v int64) int {
	return segUvarintLen(uint64(v<<1) ^ uint64(v>>63))
}
