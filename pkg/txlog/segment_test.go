package txlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// exampleHeaderHex is the worked example of docs/FORMAT.md, "Transaction
// log segment": stream "main", first LSN 1, created 2023-11-14T22:13:20Z.
const exampleHeaderHex = "8941524b4c4f470a" + "0100" + "0000" + "39433324" +
	"0100000000000000" + "00002a36fe9c9717" + "00000000" + "8abe4347"

var exampleHeader = SegmentHeader{Version: SegmentVersion1, StreamTag: StreamTag("main"), FirstLSN: 1, Created: 1_700_000_000_000_000_000}

func assertCorrupt(t *testing.T, err, sentinel error, offset int64) *format.CorruptError {
	t.Helper()
	var ce *format.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want *format.CorruptError", err, err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want %v", err, sentinel)
	}
	if ce.Offset != offset {
		t.Fatalf("got offset %d (%v), want %d", ce.Offset, err, offset)
	}
	return ce
}

func TestAppendSegmentHeader(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		got := AppendSegmentHeader([]byte("x"), exampleHeader)
		if hex.EncodeToString(got[1:]) != exampleHeaderHex || got[0] != 'x' || len(got) != 1+SegmentHeaderSize {
			t.Fatalf("header\n%x\nwant\n%s", got[1:], exampleHeaderHex)
		}
		if StreamTag("main") != 0x24334339 {
			t.Fatalf("StreamTag(main) = %08x", StreamTag("main"))
		}
	})
}

func TestDecodeSegmentHeader(t *testing.T) {
	good, _ := hex.DecodeString(exampleHeaderHex)
	// resum recomputes the header CRC after a deliberate change, to reach
	// the checks behind it.
	resum := func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], crcTable))
		return b
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }

	t.Run("OK", func(t *testing.T) {
		h, err := DecodeSegmentHeader(append(bytes.Clone(good), 1, 2, 3), "seg")
		if err != nil || h != exampleHeader {
			t.Fatalf("got %+v, %v; want %+v", h, err, exampleHeader)
		}
	})
	cases := []struct {
		name     string
		in       []byte
		sentinel error
	}{
		{"ErrTruncated", good[:39], format.ErrTruncated},
		{"ErrTruncatedEmpty", nil, format.ErrTruncated},
		{"ErrBadMagic", edit(func(b []byte) []byte { b[1] = 'a'; return resum(b) }), format.ErrBadMagic},
		{"ErrUnsupportedVersion", edit(func(b []byte) []byte { b[8] = 2; return resum(b) }), format.ErrUnsupportedVersion},
		{"ErrChecksum", edit(func(b []byte) []byte { b[20] ^= 1; return b }), format.ErrChecksum},
		{"ErrChecksumStored", edit(func(b []byte) []byte { b[39] ^= 0x80; return b }), format.ErrChecksum},
		{"ErrMalformedFlags", edit(func(b []byte) []byte { b[10] = 1; return resum(b) }), format.ErrMalformed},
		{"ErrMalformedReserved", edit(func(b []byte) []byte { b[35] = 1; return resum(b) }), format.ErrMalformed},
		{"ErrMalformedFirstLSN", edit(func(b []byte) []byte { b[16] = 0; return resum(b) }), format.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeSegmentHeader(c.in, "txlog/main/00000000000000000001.log")
			ce := assertCorrupt(t, err, c.sentinel, 0)
			if ce.File != "txlog/main/00000000000000000001.log" || ce.Record != "segment header" {
				t.Fatalf("error names %q %q", ce.File, ce.Record)
			}
		})
	}
	t.Run("ErrChecksumEveryBit", func(t *testing.T) {
		// Every single-bit flip outside magic and version must be caught.
		for bit := 10 * 8; bit < SegmentHeaderSize*8; bit++ {
			b := bytes.Clone(good)
			b[bit/8] ^= 1 << (bit % 8)
			if _, err := DecodeSegmentHeader(b, "seg"); err == nil {
				t.Fatalf("bit %d flipped: accepted", bit)
			}
		}
	})
}

func TestSegmentName(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		name := SegmentName("main", 42)
		if name != "txlog/main/00000000000000000042.log" {
			t.Fatalf("SegmentName = %q", name)
		}
		stream, first, ok := ParseSegmentName(name)
		if !ok || stream != "main" || first != 42 {
			t.Fatalf("ParseSegmentName(%q) = %q, %d, %v", name, stream, first, ok)
		}
		max := SegmentName("s", 1<<64-1)
		if _, first, ok := ParseSegmentName(max); !ok || first != 1<<64-1 {
			t.Fatalf("ParseSegmentName(%q) = %d, %v", max, first, ok)
		}
	})
	t.Run("ErrNotSegment", func(t *testing.T) {
		for _, name := range []string{
			"txlog/main/00000000000000000000.log", // LSN 0
			"txlog/main/42.log",
			"txlog/main/0000000000000000004a.log",
			"txlog/main/00000000000000000042.seg",
			"txlog/main/99999999999999999999.log", // overflows uint64
			"txlog/main/sub/00000000000000000042.log",
			"txlog//00000000000000000042.log",
			"segments/main/00000000000000000042.log",
			"txlog/main",
		} {
			if _, _, ok := ParseSegmentName(name); ok {
				t.Errorf("ParseSegmentName(%q) accepted", name)
			}
		}
	})
}

func TestValidateStream(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, s := range []string{"main", "job-1.events", "ünïcode", strings.Repeat("s", 800)} {
			if err := ValidateStream(s); err != nil {
				t.Errorf("ValidateStream(%q): %v", s, err)
			}
		}
	})
	t.Run("ErrInvalidStream", func(t *testing.T) {
		for _, s := range []string{"", "a/b", `a\b`, ".", "..", "x:y", "tab\t", ".arkstate-x", "nul", "dot.", strings.Repeat("s", 900)} {
			err := ValidateStream(s)
			if !errors.Is(err, ErrInvalidStream) {
				t.Errorf("ValidateStream(%q) = %v, want ErrInvalidStream", s, err)
			}
		}
		if err := ValidateStream("a:b"); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("ValidateStream(a:b) = %v, want it to wrap store.ErrInvalidName", err)
		}
	})
}

// buildSegment returns a segment of stream "main" starting at first with
// the given records (LSNs as they are in recs).
func buildSegment(t testing.TB, first uint64, recs ...*format.Record) []byte {
	t.Helper()
	b := AppendSegmentHeader(nil, SegmentHeader{Version: SegmentVersion1, StreamTag: StreamTag("main"), FirstLSN: first, Created: 1})
	for _, r := range recs {
		var err error
		if b, err = format.AppendRecord(b, r); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func withLSN(r *format.Record, lsn uint64) *format.Record {
	r.LSN = lsn
	return r
}

func TestSegmentReader_Next(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		seg := buildSegment(t, 7, withLSN(mutation(0), 7), withLSN(mutation(1), 8), withLSN(mutation(2), 9))
		// One byte per Read: the reader must not depend on read sizes.
		sr, err := NewSegmentReader(iotest.OneByteReader(bytes.NewReader(seg)), "seg")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sr.Last(); ok || sr.Offset() != SegmentHeaderSize {
			t.Fatalf("fresh reader: offset %d", sr.Offset())
		}
		for i := range 3 {
			rec, err := sr.Next()
			if err != nil {
				t.Fatal(err)
			}
			checkMutation(t, rec, i, uint64(7+i))
		}
		if _, err := sr.Next(); err != io.EOF {
			t.Fatalf("end: %v, want io.EOF", err)
		}
		if last, ok := sr.Last(); !ok || last != 9 || sr.Offset() != int64(len(seg)) {
			t.Fatalf("end: last %d %v, offset %d of %d", last, ok, sr.Offset(), len(seg))
		}
	})
	t.Run("ErrGap", func(t *testing.T) {
		seg := buildSegment(t, 7, withLSN(mutation(0), 7), withLSN(mutation(1), 9))
		sr, err := NewSegmentReader(bytes.NewReader(seg), "seg")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sr.Next(); err != nil {
			t.Fatal(err)
		}
		_, err = sr.Next()
		assertCorrupt(t, err, ErrGap, sr.Offset())
		if !errors.Is(err, format.ErrMalformed) {
			t.Fatalf("gap %v does not wrap ErrMalformed", err)
		}
		if _, again := sr.Next(); again != err {
			t.Fatalf("error not sticky: %v", again)
		}
	})
	t.Run("ErrGapFirstRecord", func(t *testing.T) {
		seg := buildSegment(t, 7, withLSN(mutation(0), 8))
		sr, err := NewSegmentReader(bytes.NewReader(seg), "seg")
		if err != nil {
			t.Fatal(err)
		}
		_, err = sr.Next()
		assertCorrupt(t, err, ErrGap, SegmentHeaderSize)
	})
	t.Run("ErrGapAfterLargestLSN", func(t *testing.T) {
		seg := buildSegment(t, 1<<64-1, withLSN(mutation(0), 1<<64-1), withLSN(mutation(1), 0))
		sr, err := NewSegmentReader(bytes.NewReader(seg), "seg")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sr.Next(); err != nil {
			t.Fatal(err)
		}
		_, err = sr.Next()
		assertCorrupt(t, err, ErrGap, sr.Offset())
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		seg := buildSegment(t, 1, withLSN(mutation(0), 1), withLSN(mutation(1), 2))
		sr, err := NewSegmentReader(bytes.NewReader(seg[:len(seg)-3]), "seg")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sr.Next(); err != nil {
			t.Fatal(err)
		}
		good := sr.Offset()
		_, err = sr.Next()
		// The offset is the file's, header included.
		ce := assertCorrupt(t, err, format.ErrTruncated, good)
		if ce.File != "seg" || sr.Offset() != good {
			t.Fatalf("error %v, reader offset %d", err, sr.Offset())
		}
	})
	t.Run("ErrChecksum", func(t *testing.T) {
		seg := buildSegment(t, 1, withLSN(mutation(0), 1), withLSN(mutation(1), 2))
		seg[len(seg)-2] ^= 4
		sr, err := NewSegmentReader(bytes.NewReader(seg), "seg")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sr.Next(); err != nil {
			t.Fatal(err)
		}
		_, err = sr.Next()
		assertCorrupt(t, err, format.ErrChecksum, sr.Offset())
	})
	t.Run("ErrRead", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := NewSegmentReader(iotest.ErrReader(boom), "seg")
		var ce *format.CorruptError
		if !errors.Is(err, boom) || errors.As(err, &ce) {
			t.Fatalf("got %v, want the read error, not damage", err)
		}
	})
}

func TestZeroTail(t *testing.T) {
	data := make([]byte, 100<<10)
	t.Run("OK", func(t *testing.T) {
		ok, err := zeroTail(bytes.NewReader(data), 10, int64(len(data)))
		if !ok || err != nil {
			t.Fatalf("zero tail: %v %v", ok, err)
		}
	})
	t.Run("ErrNonZero", func(t *testing.T) {
		d := bytes.Clone(data)
		d[len(d)-1] = 1
		ok, err := zeroTail(bytes.NewReader(d), 10, int64(len(d)))
		if ok || err != nil {
			t.Fatalf("non-zero tail: %v %v", ok, err)
		}
	})
}
