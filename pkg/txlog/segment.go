package txlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// A segment is a fixed header followed by records exactly as
// format.AppendRecord writes them. Records carry no version of their own, so
// the header's version says how to read them.
//
//	+----------------------------------+ 0
//	| header (40 bytes)                |
//	+----------------------------------+ 40
//	| record  lsn = first LSN          |
//	| record  lsn = first LSN + 1      |
//	| ...                              |
//	+----------------------------------+ size
//
//	 0       8     10    12         16          24          32     36     40
//	 +-------+-----+-----+----------+-----------+-----------+------+------+
//	 | magic | ver | flg | strm tag | first LSN | created   | rsv  | hcrc |
//	 +-------+-----+-----+----------+-----------+-----------+------+------+
//
// All integers are little-endian. The stream tag is the CRC32C of the stream
// name, so a segment copied into another stream's directory is recognised.
// The header CRC32C covers bytes 0 to 36. The full specification is in
// docs/FORMAT.md, section "Transaction log segment".

// SegmentHeaderSize is the length of a segment's header.
const SegmentHeaderSize = 40

// SegmentVersion1 is the first segment format: the 40-byte header and the
// version-1 records of pkg/format (types 1 to 7). A reader refuses any other
// version with format.ErrUnsupportedVersion.
const SegmentVersion1 = 1

// segmentMagic starts every segment. Like PNG's, its first byte is not
// ASCII and it ends in a newline, so text tools and transfers that mangle
// bytes are caught.
var segmentMagic = [8]byte{0x89, 'A', 'R', 'K', 'L', 'O', 'G', '\n'}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// SegmentHeader is the decoded header of a segment.
type SegmentHeader struct {
	Version   uint16 // SegmentVersion1
	StreamTag uint32 // StreamTag of the stream the segment belongs to
	FirstLSN  uint64 // LSN of the segment's first record; > 0, equals the file name
	Created   int64  // when the writer started the segment, Unix nanoseconds
}

// StreamTag returns the CRC32C of the stream name, as segment headers store it.
func StreamTag(stream string) uint32 {
	return crc32.Checksum([]byte(stream), crcTable)
}

// AppendSegmentHeader appends h's 40-byte encoding to dst.
func AppendSegmentHeader(dst []byte, h SegmentHeader) []byte {
	start := len(dst)
	dst = append(dst, segmentMagic[:]...)
	dst = binary.LittleEndian.AppendUint16(dst, h.Version)
	dst = binary.LittleEndian.AppendUint16(dst, 0) // flags
	dst = binary.LittleEndian.AppendUint32(dst, h.StreamTag)
	dst = binary.LittleEndian.AppendUint64(dst, h.FirstLSN)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.Created))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // reserved
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// DecodeSegmentHeader decodes the header at the front of b. Errors are
// *format.CorruptError at offset 0 of file, checked in this order:
// ErrTruncated (fewer than 40 bytes), ErrBadMagic, ErrUnsupportedVersion,
// ErrChecksum, and ErrMalformed for non-zero flags or reserved bytes or a
// first LSN of 0. Magic and version come before the checksum so that a
// later version, whose header may differ, is reported as such.
func DecodeSegmentHeader(b []byte, file string) (SegmentHeader, error) {
	bad := func(sentinel error, msg string, args ...any) error {
		return &format.CorruptError{File: file, Offset: 0, Record: "segment header",
			Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(msg, args...))}
	}
	if len(b) < SegmentHeaderSize {
		return SegmentHeader{}, bad(format.ErrTruncated, "%d of %d header bytes", len(b), SegmentHeaderSize)
	}
	b = b[:SegmentHeaderSize]
	if [8]byte(b[:8]) != segmentMagic {
		return SegmentHeader{}, bad(format.ErrBadMagic, "% x is not a transaction log segment", b[:8])
	}
	h := SegmentHeader{
		Version:   binary.LittleEndian.Uint16(b[8:]),
		StreamTag: binary.LittleEndian.Uint32(b[12:]),
		FirstLSN:  binary.LittleEndian.Uint64(b[16:]),
		Created:   int64(binary.LittleEndian.Uint64(b[24:])),
	}
	if h.Version != SegmentVersion1 {
		return SegmentHeader{}, bad(format.ErrUnsupportedVersion, "segment version %d, this build reads %d", h.Version, SegmentVersion1)
	}
	stored, computed := binary.LittleEndian.Uint32(b[36:]), crc32.Checksum(b[:36], crcTable)
	if stored != computed {
		return SegmentHeader{}, bad(format.ErrChecksum, "stored crc32c %08x, computed %08x", stored, computed)
	}
	if flags := binary.LittleEndian.Uint16(b[10:]); flags != 0 {
		return SegmentHeader{}, bad(format.ErrMalformed, "flags %#04x, want 0", flags)
	}
	if rsv := binary.LittleEndian.Uint32(b[32:]); rsv != 0 {
		return SegmentHeader{}, bad(format.ErrMalformed, "reserved %#08x, want 0", rsv)
	}
	if h.FirstLSN == 0 {
		return SegmentHeader{}, bad(format.ErrMalformed, "first LSN 0")
	}
	return h, nil
}

// checkSegmentHeader checks what a header must agree with outside the file:
// the LSN in the file name and the stream directory holding it.
func checkSegmentHeader(h SegmentHeader, file, stream string, first uint64) error {
	if h.FirstLSN != first {
		return &format.CorruptError{File: file, Offset: 16, Record: "segment header",
			Err: fmt.Errorf("%w: first LSN %d, the file name says %d", format.ErrMalformed, h.FirstLSN, first)}
	}
	if want := StreamTag(stream); h.StreamTag != want {
		return &format.CorruptError{File: file, Offset: 12, Record: "segment header",
			Err: fmt.Errorf("%w: stream tag %08x, stream %q has %08x: the segment belongs to another stream", format.ErrMalformed, h.StreamTag, stream, want)}
	}
	return nil
}

// logPrefix is the directory of all streams in the store layout.
const logPrefix = "txlog/"

// segmentExt ends every segment name.
const segmentExt = ".log"

// lsnDigits is the width of the zero-padded LSN in a segment name: any
// uint64 fits, and the padding makes lexical order numeric order.
const lsnDigits = 20

// SegmentName returns the object name of stream's segment starting at first:
// "txlog/<stream>/<20-digit first>.log".
func SegmentName(stream string, first uint64) string {
	return logPrefix + stream + "/" + segmentFile(first)
}

func segmentFile(first uint64) string {
	return fmt.Sprintf("%0*d%s", lsnDigits, first, segmentExt)
}

// ParseSegmentName is the inverse of SegmentName. It accepts only the
// canonical form (exactly 20 digits, first LSN > 0), so stray objects are
// never taken for segments.
func ParseSegmentName(name string) (stream string, first uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, logPrefix)
	if !ok {
		return "", 0, false
	}
	stream, file, ok := strings.Cut(rest, "/")
	if !ok || stream == "" {
		return "", 0, false
	}
	first, ok = parseSegmentFile(file)
	return stream, first, ok
}

// parseSegmentFile parses "<20 digits>.log".
func parseSegmentFile(file string) (uint64, bool) {
	digits, ok := strings.CutSuffix(file, segmentExt)
	if !ok {
		return 0, false
	}
	return format.ParseFixedDigits(digits, lsnDigits)
}

// ValidateStream reports whether stream can name a transaction-log stream:
// a single path element that is valid in object names on every store
// (store.ValidateName) and within the manifest's identifier rule. The
// error wraps ErrInvalidStream.
func ValidateStream(stream string) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: empty", ErrInvalidStream)
	case len(stream) > format.MaxIDLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidStream, len(stream), format.MaxIDLen)
	case strings.ContainsAny(stream, `/\`):
		return fmt.Errorf("%w: %q is not a single path element", ErrInvalidStream, stream)
	}
	if err := store.ValidateName(SegmentName(stream, 1)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidStream, err)
	}
	return nil
}

// SegmentReader reads one segment file: its header, then its records in
// order, checking that their LSNs run from the header's first LSN without
// gaps. Memory is bounded by the largest record actually present (at most
// format.MaxRecordSize), whatever the length fields say.
type SegmentReader struct {
	name string
	hdr  SegmentHeader
	rr   *format.RecordReader
	last uint64 // LSN of the last record returned
	any  bool   // a record was returned
	good int64  // file offset just past the last record returned
	err  error
}

// NewSegmentReader reads and checks the header from r and returns a reader
// of the records after it. name is used in errors only. A damaged header is
// a *format.CorruptError as described on DecodeSegmentHeader; a failing r
// is returned wrapped.
func NewSegmentReader(r io.Reader, name string) (*SegmentReader, error) {
	var b [SegmentHeaderSize]byte
	n, err := io.ReadFull(r, b[:])
	if err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("txlog: read %s header: %w", name, err)
	}
	h, err := DecodeSegmentHeader(b[:n], name)
	if err != nil {
		return nil, err
	}
	return &SegmentReader{
		name: name,
		hdr:  h,
		rr:   format.NewRecordReader(r, name),
		good: SegmentHeaderSize,
	}, nil
}

// Header returns the segment's header.
func (s *SegmentReader) Header() SegmentHeader { return s.hdr }

// Offset returns the file offset just past the last record Next returned
// (the header's end before the first). After an error it is where the
// intact part of the segment ends.
func (s *SegmentReader) Offset() int64 { return s.good }

// Last returns the LSN of the last record Next returned, and false if it
// returned none.
func (s *SegmentReader) Last() (uint64, bool) { return s.last, s.any }

// Next returns the next record, valid until the following call (use
// Record.Clone to keep it). At the clean end of the segment it returns
// io.EOF. Damage is a *format.CorruptError naming the file and the record's
// offset in it: the record errors of format.RecordReader (ErrTruncated for a
// torn tail, ErrTooLarge, ErrChecksum, ErrMalformed), and ErrMalformed
// wrapping ErrGap for a record whose LSN is not the next one. Errors are
// sticky.
func (s *SegmentReader) Next() (*format.Record, error) {
	if s.err != nil {
		return nil, s.err
	}
	rec, err := s.rr.Next()
	if err != nil {
		var ce *format.CorruptError
		if errors.As(err, &ce) {
			// The record reader counts from the end of the header.
			located := *ce
			located.Offset += SegmentHeaderSize
			err = &located
		}
		s.err = err
		return nil, err
	}
	want, ok := s.hdr.FirstLSN, true
	if s.any {
		want, ok = s.last+1, s.last != math.MaxUint64
	}
	if !ok || rec.LSN != want {
		expected := fmt.Sprint(want)
		if !ok {
			expected = "none after the largest LSN"
		}
		s.err = &format.CorruptError{File: s.name, Offset: s.good, Record: "record",
			Err: fmt.Errorf("%w: %w: LSN %d, expected %s", format.ErrMalformed, ErrGap, rec.LSN, expected)}
		return nil, s.err
	}
	s.last, s.any = rec.LSN, true
	s.good = SegmentHeaderSize + s.rr.Offset()
	return rec, nil
}

// zeroTail reports whether every byte of r from off to size is zero: what a
// crash leaves when a file's size reached the disk but its data did not.
// It reads in fixed chunks, whatever the size.
func zeroTail(r io.ReaderAt, off, size int64) (bool, error) {
	var buf [32 << 10]byte
	for off < size {
		n := int(min(int64(len(buf)), size-off))
		m, err := r.ReadAt(buf[:n], off)
		for _, c := range buf[:m] {
			if c != 0 {
				return false, nil
			}
		}
		if m < n {
			if err == nil || err == io.EOF {
				// The object is shorter than it said: nothing more to see.
				return true, nil
			}
			return false, err
		}
		off += int64(m)
	}
	return true, nil
}

// isTornTail reports whether err, ending the scan of a stream's last
// segment at offset good, is a torn tail rather than damage: the input ends
// inside a record (format.ErrTruncated), or everything after the last intact
// record is zero bytes. Any other failure, which leaves non-zero bytes after
// it, is damage.
func isTornTail(err error, r io.ReaderAt, good, size int64) (bool, error) {
	if errors.Is(err, format.ErrTruncated) {
		return true, nil
	}
	var ce *format.CorruptError
	if !errors.As(err, &ce) || errors.Is(err, ErrGap) {
		return false, nil
	}
	return zeroTail(r, good, size)
}
