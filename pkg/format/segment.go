package format

import (
	"encoding/binary"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A segment file holds entries sorted by (state, key group, key), grouped into
// zstd-compressed blocks, followed by a block index and a fixed-size footer.
// The footer sits at the end so a writer can stream the file in one pass and a
// reader can find the index with one read of the last SegmentFooterLen bytes.
//
//	+--------------------------------------------+ offset 0
//	| block 0: zstd frame of encoded entries     |
//	+--------------------------------------------+
//	| block 1                                    |
//	+--------------------------------------------+
//	| ...                                        |
//	+--------------------------------------------+
//	| block N-1                                  |
//	+--------------------------------------------+ index offset
//	| index: counts, state table, N handles      |
//	+--------------------------------------------+ size - SegmentFooterLen
//	| footer (36 bytes)                          |
//	+--------------------------------------------+ size
//
// Footer, all integers little-endian:
//
//	 0      4      8             16     20     24   26   28             36
//	+------+------+-------------+------+------+----+----+---------------+
//	| fcrc | file | index off   | ilen | icrc | rsv| ver| magic         |
//	+------+------+-------------+------+------+----+----+---------------+
//	fcrc  CRC32C of footer bytes [4, 36)
//	file  CRC32C of bytes [0, size-36): every block and the index
//	icrc  CRC32C of the index bytes
//	rsv   reserved flags, zero in version 1
//	ver   format version (SegmentVersion1)
//	magic "\x89ARKSEG\n"
//
// Index (uvarints unless noted; see docs/FORMAT.md for the validity rules):
//
//	tombstones | min key group | max key group
//	state count S | S x (name length | name bytes), strictly increasing
//	block count N | N x block handle
//	block handle: offset | stored length | raw length | entries |
//	              CRC32C of stored bytes (uint32 LE) |
//	              first state index | first key group | last state index | last key group
//
// Entry inside a decompressed block:
//
//	flags (1 byte: bit 0 tombstone, bit 1 expiry present; other bits zero)
//	state index | key group | key length | key bytes |
//	[expiry as zig-zag varint, only when bit 1 is set] | value length | value bytes
const (
	// SegmentVersion1 is the first segment layout: zstd blocks with a CRC32C
	// each, entries naming their state by index into the index's state table,
	// and a 36-byte footer ending in version and magic. Later versions keep
	// those last 10 bytes where they are, so any reader can tell a newer
	// segment (ErrUnsupportedVersion) from a foreign file (ErrBadMagic).
	SegmentVersion1 uint16 = 1

	// SegmentFooterLen is the size of the fixed footer at the end of a segment.
	SegmentFooterLen = 36

	// DefaultSegmentBlockSize is the uncompressed block size the writer aims for
	// when SegmentWriterOptions.BlockSize is zero.
	DefaultSegmentBlockSize = 64 << 10
)

// Limits of the segment format. The writer refuses entries beyond them and the
// reader refuses any length field beyond them before allocating for it.
const (
	// MaxStateNameLen bounds a state name in bytes.
	MaxStateNameLen = 1 << 10
	// MaxKeyLen bounds a key in bytes.
	MaxKeyLen = 1 << 20
	// MaxValueLen bounds a value in bytes.
	MaxValueLen = 32 << 20
	// MaxBlockLen bounds a block's uncompressed length. It exceeds the largest
	// possible single entry, so any valid entry fits a block of its own.
	MaxBlockLen = 64 << 20
	// MaxStoredBlockLen bounds a block's compressed length; zstd's worst-case
	// expansion on incompressible input is far below the margin.
	MaxStoredBlockLen = MaxBlockLen + MaxBlockLen/64
	// MaxSegmentIndexLen bounds the index, which a reader holds in memory.
	MaxSegmentIndexLen = 16 << 20
)

// segmentMagic ends every segment. The high first byte catches 7-bit
// transfers, the newline catches newline translation.
var segmentMagic = [8]byte{0x89, 'A', 'R', 'K', 'S', 'E', 'G', '\n'}

// Footer field offsets.
const (
	segFooterCRCOff      = 0
	segFooterFileCRCOff  = 4
	segFooterIndexOffOff = 8
	segFooterIndexLenOff = 16
	segFooterIndexCRCOff = 20
	segFooterFlagsOff    = 24
	segFooterVersionOff  = 26
	segFooterMagicOff    = 28
)

// Entry flag bits.
const (
	segEntryFlagTombstone = 1 << 0
	segEntryFlagExpiry    = 1 << 1
	segEntryFlagsKnown    = segEntryFlagTombstone | segEntryFlagExpiry
)

// segMinEntryLen is the smallest encoded entry: flags and four one-byte uvarints
// (state index, key group, key length, value length).
const segMinEntryLen = 5

// segMinHandleLen is the smallest encoded block handle: eight one-byte uvarints
// and the four-byte checksum.
const segMinHandleLen = 12

// segMaxEntryLen is the largest encoded entry the writer can produce.
const segMaxEntryLen = 1 + 4*binary.MaxVarintLen32 + binary.MaxVarintLen64 +
	MaxKeyLen + MaxValueLen + binary.MaxVarintLen32

// Fails to compile if a single maximal entry would not fit in a block.
const _ = uint(MaxBlockLen - segMaxEntryLen)

var segCRCTable = crc32.MakeTable(crc32.Castagnoli)

func segCRC(b []byte) uint32 { return crc32.Checksum(b, segCRCTable) }

// segBlockHandle is the reader's compact form of one index entry.
type segBlockHandle struct {
	offset     int64
	storedLen  uint32
	rawLen     uint32
	entries    uint32
	crc        uint32
	firstState uint32 // index into the state table
	firstKG    uint32
	lastState  uint32
	lastKG     uint32
}

// BlockHandle describes one block of a segment as the index records it.
type BlockHandle struct {
	Offset        int64  // file offset of the stored (compressed) bytes
	StoredLen     int    // compressed length in the file
	RawLen        int    // length of the encoded entries after decompression
	Entries       int    // number of entries in the block
	Checksum      uint32 // CRC32C of the stored bytes
	FirstState    string // state of the block's first entry
	FirstKeyGroup uint32 // key group of the block's first entry
	LastState     string // state of the block's last entry
	LastKeyGroup  uint32 // key group of the block's last entry
}

// mayHold reports whether a block can contain an entry whose key group lies in
// [minKG, maxKG]. Key groups restart for every state, so a block spanning
// several states can hold any key group of the states strictly inside it.
func (h *segBlockHandle) mayHold(minKG, maxKG uint32) bool {
	if h.firstState == h.lastState {
		return h.firstKG <= maxKG && h.lastKG >= minKG
	}
	if h.lastState-h.firstState >= 2 {
		return true
	}
	// Tail of the first state: key groups >= firstKG; head of the last: <= lastKG.
	return h.firstKG <= maxKG || h.lastKG >= minKG
}

// The zstd coders are expensive to build, so they are shared. Encoders run with
// concurrency 1 (deterministic output, no goroutines) and are pooled per level
// together with a block's buffers; the decoder's DecodeAll is safe for
// concurrent use.
var (
	segBlockPools [5]sync.Pool // of *segPendingBlock, indexed by zstd.EncoderLevel

	segDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxBlockLen),
			zstd.WithDecoderMaxWindow(MaxBlockLen),
			zstd.WithDecodeAllCapLimit(true),
		)
	})
)

// segGetBlock returns a block slot for a writer at level: an encoder and
// buffers, reused from earlier writers when the pool has one.
func segGetBlock(level zstd.EncoderLevel) *segPendingBlock {
	if p, ok := segBlockPools[level].Get().(*segPendingBlock); ok {
		return p
	}
	p := &segPendingBlock{}
	p.enc, p.encErr = zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), // each block already carries a CRC32C
		// Single-segment frames always declare their content size, which the
		// reader checks against the index before decompressing.
		zstd.WithSingleSegment(true),
	)
	return p
}

// segPutBlock returns a slot no block is being compressed in any more.
func segPutBlock(level zstd.EncoderLevel, p *segPendingBlock) {
	if p.encErr != nil {
		return
	}
	p.done, p.raw, p.stored = nil, p.raw[:0], p.stored[:0]
	segBlockPools[level].Put(p)
}

// DefaultSegmentLevel is the zstd level used when SegmentWriterOptions.Level is
// zero. zstd is most of the CPU a snapshot costs, and SpeedFastest is what
// keeps a 1 MB snapshot inside the state engine's 5 ms budget; see
// BenchmarkSegmentWrite for the measured trade-off against the other levels.
const DefaultSegmentLevel = zstd.SpeedFastest

// SegmentInfo summarises a segment. The writer returns it from Close; a reader
// derives it from the footer and index.
type SegmentInfo struct {
	Size        int64    // file size in bytes
	RawSize     int64    // uncompressed bytes of all encoded entries
	Entries     uint64   // entries, tombstones included
	Tombstones  uint64   // entries that delete their key
	Blocks      int      // number of blocks
	MinKeyGroup uint32   // smallest key group of any entry; 0 when empty
	MaxKeyGroup uint32   // largest key group of any entry; 0 when empty
	States      []string // distinct state names, sorted
	// SHA256 is the hash of the whole file, computed while writing so the
	// checkpoint layer can content-address the segment without re-reading it.
	// Only the writer fills it; a reader leaves it zero.
	SHA256 [32]byte
}
