package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"pgregory.net/rapid"
)

var txlogGoldenPath = filepath.Join("..", "..", "testdata", "format", "txlog-v1.golden")

// recordFixtures is one epoch of a pipeline: every record type, puts with
// and without expiry, a delete, an empty key, negative and large numbers.
func recordFixtures() []Record {
	const t0 = 1_741_964_966_535_897_932
	return []Record{
		{Type: RecordEpochBegin, LSN: 1, Time: t0, Epoch: 42},
		{Type: RecordMutation, LSN: 2, Time: t0 + 1000, Epoch: 42, Operator: "count", State: "counts", KeyGroup: 17,
			Key: []byte("hello"), Value: []byte{0, 0, 0, 0, 0, 0, 0, 3}},
		{Type: RecordMutation, LSN: 3, Time: t0 + 2000, Epoch: 42, Operator: "count", State: "seen", KeyGroup: 127,
			Key: []byte("user\x00é"), Value: []byte(`{"n":1}`), ExpiresAt: t0 + 3_600_000_000_000},
		{Type: RecordMutation, LSN: 4, Time: t0 + 3000, Epoch: 42, Operator: "count", State: "counts", KeyGroup: 0,
			Key: []byte("bye"), Delete: true},
		{Type: RecordMutation, LSN: 5, Time: t0 + 3500, Epoch: 42, Operator: "window", State: "open", KeyGroup: 1<<32 - 1},
		{Type: RecordPosition, LSN: 6, Time: t0 + 4000, Epoch: 42, Source: "kafka-in", Position: []byte(`{"0":1042}`)},
		{Type: RecordTxnPrepare, LSN: 7, Time: t0 + 5000, Epoch: 42, Output: "s3-out", TxnID: "upload-7f3a",
			Data: []byte("out/part-42.json")},
		{Type: RecordTxnCommit, LSN: 8, Time: t0 + 6000, Epoch: 41, Output: "s3-out", TxnID: "upload-7f39"},
		{Type: RecordTxnAbort, LSN: 9, Time: -1, Epoch: 40, Output: "file-out", TxnID: "40", Data: []byte{0xff}},
		{Type: RecordInput, LSN: 10, Time: t0 + 6500, Epoch: 42, Source: "input", Position: []byte(`{"offset":4096}`), Data: []byte("one line\ntwo li")},
		{Type: RecordMutations, LSN: 11, Time: t0 + 6600, Epoch: 42, Operator: "count", State: "counts",
			Batch: AppendMutationEntry(AppendMutationEntry(nil, 17, []byte("hello"), []byte{0, 0, 0, 0, 0, 0, 0, 4}, 0, false), 3, []byte("bye"), nil, 0, true)},
		{Type: RecordEpochEnd, LSN: 1<<64 - 1, Time: t0 + 7000, Epoch: 42, Checkpoint: 42},
	}
}

func mustAppendRecords(t testing.TB, recs []Record) []byte {
	t.Helper()
	var b []byte
	for i := range recs {
		var err error
		if b, err = AppendRecord(b, &recs[i]); err != nil {
			t.Fatalf("AppendRecord(%+v): %v", recs[i], err)
		}
	}
	return b
}

// frameRecordBody frames a hand-built body with a correct CRC, to reach the
// body checks that sit behind the checksum.
func frameRecordBody(body []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(body, recordCRCTable))
	return append(b, body...)
}

func assertRecordErr(t *testing.T, err, want error) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want *CorruptError", err, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	return ce
}

func TestAppendRecord(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		prefix := []byte("keep")
		for _, r := range recordFixtures() {
			b, err := AppendRecord(append([]byte(nil), prefix...), &r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatal("AppendRecord overwrote dst")
			}
			got, n, err := DecodeRecord(b[len(prefix):])
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b)-len(prefix) {
				t.Fatalf("consumed %d of %d bytes", n, len(b)-len(prefix))
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
			}
		}
	})
	t.Run("OKEmptyBytesDecodeNil", func(t *testing.T) {
		r := Record{Type: RecordPosition, Source: "s", Position: []byte{}}
		b, err := AppendRecord(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := DecodeRecord(b)
		if err != nil || got.Position != nil {
			t.Fatalf("got %+v, %v; want nil Position", got, err)
		}
	})

	mut := Record{Type: RecordMutation, Operator: "op", State: "st"}
	cases := []struct {
		name string
		rec  Record
		want error
		text string
	}{
		{"TypeZero", Record{}, ErrMalformed, "unknown record type 0"},
		{"TypeUnknown", Record{Type: 10}, ErrMalformed, "unknown record type 10"},
		{"EpochBeginWithKey", Record{Type: RecordEpochBegin, Key: []byte("k")}, ErrMalformed, "Key is not used by epoch-begin"},
		{"MutationWithSource", func() Record { r := mut; r.Source = "s"; return r }(), ErrMalformed, "Source is not used by mutation"},
		{"PositionWithCheckpoint", Record{Type: RecordPosition, Source: "s", Checkpoint: 1}, ErrMalformed, "Checkpoint"},
		{"TxnWithDelete", Record{Type: RecordTxnCommit, Output: "o", TxnID: "t", Delete: true}, ErrMalformed, "Delete"},
		{"EpochEndWithData", Record{Type: RecordEpochEnd, Checkpoint: 1, Data: []byte("d")}, ErrMalformed, "Data"},
		{"EpochEndWithoutCheckpoint", Record{Type: RecordEpochEnd}, ErrMalformed, "checkpoint"},
		{"MutationNoOperator", Record{Type: RecordMutation, State: "st"}, ErrMalformed, "operator: empty"},
		{"MutationNoState", Record{Type: RecordMutation, Operator: "op"}, ErrMalformed, "state: empty"},
		{"MutationControlState", func() Record { r := mut; r.State = "a\tb"; return r }(), ErrMalformed, "control character"},
		{"MutationInvalidUTF8", func() Record { r := mut; r.Operator = "\xc3"; return r }(), ErrMalformed, "UTF-8"},
		{"DeleteWithValue", func() Record { r := mut; r.Delete = true; r.Value = []byte("v"); return r }(), ErrMalformed, "delete"},
		{"DeleteWithExpiry", func() Record { r := mut; r.Delete = true; r.ExpiresAt = 5; return r }(), ErrMalformed, "delete"},
		{"PositionNoSource", Record{Type: RecordPosition}, ErrMalformed, "source: empty"},
		{"TxnNoOutput", Record{Type: RecordTxnPrepare, TxnID: "t"}, ErrMalformed, "output: empty"},
		{"TxnNoID", Record{Type: RecordTxnAbort, Output: "o"}, ErrMalformed, "txn id: empty"},
		{"LongName", func() Record { r := mut; r.State = strings.Repeat("s", MaxIDLen+1); return r }(), ErrTooLarge, "state"},
		{"Payload", func() Record { r := mut; r.Value = make([]byte, MaxRecordSize+1); return r }(), ErrTooLarge, "payload"},
		// The payload alone fits; with the header fields the body does not.
		{"Body", func() Record { r := mut; r.Value = make([]byte, MaxRecordSize-2); return r }(), ErrTooLarge, "body"},
	}
	for _, tc := range cases {
		t.Run("Err"+tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, err := AppendRecord(dst, &tc.rec)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
			if string(got) != "prefix" {
				t.Fatalf("dst changed to %d bytes on error", len(got))
			}
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		recs := recordFixtures()
		b := mustAppendRecords(t, recs)
		for i := 0; len(b) > 0; i++ {
			r, n, err := DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, recs[i]) {
				t.Fatalf("record %d:\n got %+v\nwant %+v", i, r, recs[i])
			}
			// Byte fields alias the input rather than copying it.
			if len(r.Key) > 0 && &r.Key[0] != &b[bytes.Index(b[:n], r.Key)] {
				t.Fatalf("record %d: Key does not alias the input", i)
			}
			b = b[n:]
		}
	})
	t.Run("ErrBitFlip", func(t *testing.T) {
		for _, r := range recordFixtures() {
			enc := mustAppendRecords(t, []Record{r})
			damaged := make([]byte, len(enc))
			for bit := range len(enc) * 8 {
				copy(damaged, enc)
				damaged[bit/8] ^= 1 << (bit % 8)
				got, _, err := DecodeRecord(damaged)
				if err == nil {
					t.Fatalf("%s: flip of bit %d accepted as %+v", r.Type, bit, got)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: flip of bit %d: %T %v", r.Type, bit, err, err)
				}
			}
		}
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		for _, r := range recordFixtures() {
			enc := mustAppendRecords(t, []Record{r})
			for n := range len(enc) {
				_, used, err := DecodeRecord(enc[:n])
				ce := assertRecordErr(t, err, ErrTruncated)
				if used != 0 || ce.Offset != 0 {
					t.Fatalf("%s cut at %d: consumed %d, offset %d", r.Type, n, used, ce.Offset)
				}
			}
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		for _, length := range []uint32{MaxRecordSize + 1, 1<<32 - 1} {
			hdr := binary.LittleEndian.AppendUint32(nil, length)
			hdr = append(hdr, 0, 0, 0, 0, 1, 2, 3)
			allocated := bytesAllocated(func() {
				_, _, err := DecodeRecord(hdr)
				assertRecordErr(t, err, ErrTooLarge)
			})
			if allocated > 64<<10 {
				t.Fatalf("length %d: allocated %d bytes", length, allocated)
			}
		}
	})
	t.Run("ErrChecksum", func(t *testing.T) {
		enc := mustAppendRecords(t, recordFixtures()[1:2])
		enc[4] ^= 0x80
		_, _, err := DecodeRecord(enc)
		assertRecordErr(t, err, ErrChecksum)
	})

	header := func(typ RecordType) []byte { return []byte{byte(typ), 1, 2, 3} } // lsn 1, time 1, epoch 3
	str := func(s string) []byte { return appendRecordBytes(nil, s) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	mutation := func(kg []byte, flag byte) []byte {
		return cat(header(RecordMutation), str("op"), str("st"), kg, str("k"), []byte{flag}, str("v"), []byte{0})
	}
	bodies := []struct {
		name string
		body []byte
		text string
	}{
		{"TypeZero", []byte{0, 1, 2, 3}, "unknown record type 0"},
		{"TypeTen", []byte{10, 1, 2, 3}, "unknown record type 10"},
		{"InputEmptySource", cat(header(RecordInput), str(""), str(""), str("")), "source: empty"},
		{"Type255", []byte{255}, "unknown record type 255"},
		{"ShortHeader", []byte{byte(RecordEpochBegin), 1}, "time"},
		{"OverlongVarint", []byte{byte(RecordEpochBegin), 0x81, 0x00, 2, 3}, "lsn at body offset 1: non-minimal varint"},
		{"VarintOverflow", cat([]byte{byte(RecordEpochBegin)}, bytes.Repeat([]byte{0xff}, 10), []byte{2, 2, 3}), "overflows"},
		{"Trailing", cat(header(RecordEpochBegin), []byte{0}), "1 trailing bytes"},
		{"KeyGroupOver32Bits", mutation(binary.AppendUvarint(nil, 1<<32), 0), "key group"},
		{"DeleteFlagTwo", mutation([]byte{5}, 2), "delete flag"},
		{"DeleteWithValue", mutation([]byte{5}, 1), "delete mutation carries a value"},
		{"StringPastEnd", cat(header(RecordPosition), []byte{5}, []byte("abc")), "source at body offset 4: length 5 exceeds the 3 bytes left"},
		{"HugeLength", cat(header(RecordPosition), str("s"), binary.AppendUvarint(nil, 1<<62)), "position"},
		{"NameTooLong", cat(header(RecordPosition), str(strings.Repeat("s", MaxIDLen+1)), str("")), "source at body offset 4: 1025 bytes"},
		{"NameInvalidUTF8", cat(header(RecordTxnAbort), str("o"), str("\xff"), str("")), "txn id"},
		{"EmptyName", cat(header(RecordTxnAbort), str("o"), str(""), str("")), "txn id: empty"},
		{"EpochEndZero", cat(header(RecordEpochEnd), []byte{0}), "checkpoint"},
	}
	for _, tc := range bodies {
		t.Run("ErrMalformed"+tc.name, func(t *testing.T) {
			_, _, err := DecodeRecord(frameRecordBody(tc.body))
			assertRecordErr(t, err, ErrMalformed)
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%q does not mention %q", err, tc.text)
			}
		})
	}
	t.Run("ErrMalformedEmptyBody", func(t *testing.T) {
		_, _, err := DecodeRecord(make([]byte, 16))
		assertRecordErr(t, err, ErrMalformed)
	})
}

// bytesAllocated reports the heap bytes fn allocates.
func bytesAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func readAllRecords(t *testing.T, rr *RecordReader) ([]Record, error) {
	t.Helper()
	var out []Record
	for {
		r, err := rr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, *r.Clone())
	}
}

func TestRecordReader_Next(t *testing.T) {
	recs := recordFixtures()
	data := mustAppendRecords(t, recs)
	// ends[i] is the offset just past record i.
	var ends []int64
	for off := 0; off < len(data); {
		_, n, err := DecodeRecord(data[off:])
		if err != nil {
			t.Fatal(err)
		}
		off += n
		ends = append(ends, int64(off))
	}

	t.Run("OK", func(t *testing.T) {
		for name, r := range map[string]io.Reader{
			"whole":   bytes.NewReader(data),
			"onebyte": iotest.OneByteReader(bytes.NewReader(data)),
			"half":    iotest.HalfReader(bytes.NewReader(data)),
		} {
			rr := NewRecordReader(r, "log")
			got, err := readAllRecords(t, rr)
			if err != io.EOF {
				t.Fatalf("%s: ended with %v, want io.EOF", name, err)
			}
			if !reflect.DeepEqual(got, recs) {
				t.Fatalf("%s: records differ", name)
			}
			if rr.Offset() != int64(len(data)) {
				t.Fatalf("%s: Offset %d, want %d", name, rr.Offset(), len(data))
			}
			if _, err := rr.Next(); err != io.EOF {
				t.Fatalf("%s: Next after EOF = %v", name, err)
			}
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		if _, err := NewRecordReader(bytes.NewReader(nil), "log").Next(); err != io.EOF {
			t.Fatalf("got %v, want io.EOF", err)
		}
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		// A cut anywhere inside record i yields records 0..i-1, then
		// ErrTruncated at the start of record i, which Offset also reports.
		for cut := 1; cut < len(data); cut++ {
			i := 0
			for ends[i] <= int64(cut) {
				i++
			}
			if i > 0 && ends[i-1] == int64(cut) {
				continue // a cut between records is a clean end
			}
			rr := NewRecordReader(bytes.NewReader(data[:cut]), "log")
			got, err := readAllRecords(t, rr)
			ce := assertRecordErr(t, err, ErrTruncated)
			start := int64(0)
			if i > 0 {
				start = ends[i-1]
			}
			if len(got) != i || ce.Offset != start || rr.Offset() != start || ce.File != "log" {
				t.Fatalf("cut %d: %d records, error offset %d, Offset %d, want %d records at %d (%v)",
					cut, len(got), ce.Offset, rr.Offset(), i, start, err)
			}
			if _, again := rr.Next(); again != err {
				t.Fatalf("error is not sticky: %v then %v", err, again)
			}
		}
	})
	t.Run("ErrChecksum", func(t *testing.T) {
		damaged := bytes.Clone(data)
		damaged[ends[4]+RecordHeaderSize+2] ^= 0x10 // inside record 5's body
		rr := NewRecordReader(bytes.NewReader(damaged), "txlog/main/00000000000000000001.log")
		got, err := readAllRecords(t, rr)
		ce := assertRecordErr(t, err, ErrChecksum)
		if len(got) != 5 || ce.Offset != ends[4] || ce.File != "txlog/main/00000000000000000001.log" {
			t.Fatalf("%d records, %v; want 5 records then damage at offset %d", len(got), err, ends[4])
		}
	})
	t.Run("ErrMalformedUnknownType", func(t *testing.T) {
		bad := append(bytes.Clone(data[:ends[1]]), frameRecordBody([]byte{10, 1, 1, 1})...)
		_, err := readAllRecords(t, NewRecordReader(bytes.NewReader(bad), "log"))
		ce := assertRecordErr(t, err, ErrMalformed)
		if ce.Offset != ends[1] || !strings.Contains(err.Error(), "unknown record type 10") ||
			!strings.Contains(err.Error(), "offset "+strconv.FormatInt(ends[1], 10)) {
			t.Fatalf("got %v, want unknown type at offset %d", err, ends[1])
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		bad := append(bytes.Clone(data[:ends[0]]), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0)
		var err error
		allocated := bytesAllocated(func() {
			_, err = readAllRecords(t, NewRecordReader(bytes.NewReader(bad), "log"))
		})
		ce := assertRecordErr(t, err, ErrTooLarge)
		if ce.Offset != ends[0] || allocated > 1<<20 {
			t.Fatalf("offset %d, allocated %d bytes", ce.Offset, allocated)
		}
	})
	t.Run("ErrTruncatedNoBigAllocation", func(t *testing.T) {
		// A length at the limit with a short input costs what was read,
		// not the length.
		bad := binary.LittleEndian.AppendUint32(nil, MaxRecordSize)
		bad = append(bad, make([]byte, 4+100)...)
		var err error
		allocated := bytesAllocated(func() {
			_, err = NewRecordReader(bytes.NewReader(bad), "log").Next()
		})
		assertRecordErr(t, err, ErrTruncated)
		if allocated > 1<<20 {
			t.Fatalf("allocated %d bytes for a 112-byte input", allocated)
		}
	})
	t.Run("ErrRead", func(t *testing.T) {
		boom := errors.New("disk on fire")
		r := io.MultiReader(bytes.NewReader(data[:ends[0]+3]), iotest.ErrReader(boom))
		_, err := readAllRecords(t, NewRecordReader(r, "log"))
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want the read error", err)
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			t.Fatalf("read error reported as corruption: %v", err)
		}
	})
}

func TestRecord_Clone(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		r := recordFixtures()[1]
		c := r.Clone()
		if !reflect.DeepEqual(*c, r) {
			t.Fatal("clone differs")
		}
		c.Key[0] = 'X'
		if r.Key[0] == 'X' {
			t.Fatal("clone shares Key")
		}
	})
}

func TestRecordType_String(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		seen := map[string]bool{}
		for typ := RecordEpochBegin; typ <= RecordMutations; typ++ {
			s := typ.String()
			if strings.HasPrefix(s, "type(") || seen[s] {
				t.Fatalf("type %d has name %q", typ, s)
			}
			seen[s] = true
		}
		if got := RecordType(99).String(); got != "type(99)" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestRecord_Golden(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		recs := recordFixtures()
		data := mustAppendRecords(t, recs)
		checkGoldenFile(t, txlogGoldenPath, data)
		got, err := readAllRecords(t, NewRecordReader(bytes.NewReader(data), txlogGoldenPath))
		if err != io.EOF || !reflect.DeepEqual(got, recs) {
			t.Fatalf("golden decodes to %+v, %v", got, err)
		}
	})
}

func genRecordName() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.StringMatching(`[a-z][a-z0-9_-]{0,10}`),
		rapid.StringN(1, 8, -1).Filter(func(s string) bool { return checkManifestID("x", s) == nil }),
	)
}

// genRecordBytes draws byte fields, nil when empty as the decoder returns them.
func genRecordBytes() *rapid.Generator[[]byte] {
	return rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 40), func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	})
}

func genRecord(t *rapid.T) Record {
	r := Record{
		Type:  rapid.SampledFrom([]RecordType{RecordEpochBegin, RecordMutation, RecordPosition, RecordTxnPrepare, RecordTxnCommit, RecordTxnAbort, RecordEpochEnd, RecordInput, RecordMutations}).Draw(t, "type"),
		LSN:   rapid.Uint64().Draw(t, "lsn"),
		Time:  rapid.Int64().Draw(t, "time"),
		Epoch: rapid.Uint64().Draw(t, "epoch"),
	}
	switch r.Type {
	case RecordMutation:
		r.Operator = genRecordName().Draw(t, "operator")
		r.State = genRecordName().Draw(t, "state")
		r.KeyGroup = rapid.Uint32().Draw(t, "keygroup")
		r.Key = genRecordBytes().Draw(t, "key")
		if r.Delete = rapid.Bool().Draw(t, "delete"); !r.Delete {
			r.Value = genRecordBytes().Draw(t, "value")
			r.ExpiresAt = rapid.Int64().Draw(t, "expires")
		}
	case RecordPosition:
		r.Source = genRecordName().Draw(t, "source")
		r.Position = genRecordBytes().Draw(t, "position")
	case RecordTxnPrepare, RecordTxnCommit, RecordTxnAbort:
		r.Output = genRecordName().Draw(t, "output")
		r.TxnID = genRecordName().Draw(t, "txn")
		r.Data = genRecordBytes().Draw(t, "data")
	case RecordEpochEnd:
		r.Checkpoint = rapid.Uint64Min(1).Draw(t, "checkpoint")
	case RecordInput:
		r.Source = genRecordName().Draw(t, "source")
		r.Position = genRecordBytes().Draw(t, "position")
		r.Data = genRecordBytes().Draw(t, "data")
	case RecordMutations:
		r.Operator = genRecordName().Draw(t, "operator")
		r.State = genRecordName().Draw(t, "state")
		for range rapid.IntRange(1, 5).Draw(t, "entries") {
			del := rapid.Bool().Draw(t, "delete")
			r.Batch = AppendMutationEntry(r.Batch, rapid.Uint32().Draw(t, "keygroup"), genRecordBytes().Draw(t, "key"),
				genRecordBytes().Draw(t, "value"), rapid.Int64().Draw(t, "expires"), del)
		}
	}
	return r
}

func TestRecord_RoundTrip(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			recs := rapid.SliceOfN(rapid.Custom(genRecord), 1, 8).Draw(t, "records")
			var data []byte
			for i := range recs {
				var err error
				if data, err = AppendRecord(data, &recs[i]); err != nil {
					t.Fatalf("AppendRecord(%+v): %v", recs[i], err)
				}
			}
			rest := data
			for i, want := range recs {
				got, n, err := DecodeRecord(rest)
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("record %d:\n got %+v\nwant %+v", i, got, want)
				}
				// The encoding is canonical: re-encoding gives the same bytes.
				again, err := AppendRecord(nil, &got)
				if err != nil || !bytes.Equal(again, rest[:n]) {
					t.Fatalf("record %d re-encodes differently (err %v)", i, err)
				}
				rest = rest[n:]
			}
			rr := NewRecordReader(iotest.HalfReader(bytes.NewReader(data)), "log")
			for i, want := range recs {
				got, err := rr.Next()
				if err != nil || !reflect.DeepEqual(*got, want) {
					t.Fatalf("reader record %d: %+v, %v", i, got, err)
				}
			}
			if _, err := rr.Next(); err != io.EOF {
				t.Fatalf("reader ended with %v", err)
			}
		})
	})
}

// benchMutation is a typical word-count update: short names, a 16-byte key,
// an 8-byte counter.
var benchMutation = Record{
	Type: RecordMutation, LSN: 123_456_789, Time: 1_741_964_966_535_897_932, Epoch: 4242,
	Operator: "count", State: "counts", KeyGroup: 77,
	Key: []byte("user-0000012345:"), Value: []byte{0, 0, 0, 0, 0, 0, 1, 0},
}

func BenchmarkAppendRecord(b *testing.B) {
	buf := make([]byte, 0, 256)
	enc, _ := AppendRecord(nil, &benchMutation)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		var err error
		if buf, err = AppendRecord(buf[:0], &benchMutation); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkDecodeRecord(b *testing.B) {
	enc, err := AppendRecord(nil, &benchMutation)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, _, err := DecodeRecord(enc); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// A tail framed with its LSN and time is the record AppendRecord encodes,
// for every record; AppendRecordTail refuses what AppendRecord refuses.
func TestAppendRecordTail(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			r := genRecord(t)
			want, err := AppendRecord(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			tail, err := AppendRecordTail([]byte("prefix"), &r)
			if err != nil {
				t.Fatal(err)
			}
			got := AppendFramedRecord([]byte("x"), r.Type, r.LSN, r.Time, tail[len("prefix"):])
			if !bytes.Equal(got[1:], want) {
				t.Fatalf("framed tail % x\nAppendRecord % x", got[1:], want)
			}
		})
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		if err := CheckRecordName("state", "a\x00b"); err == nil {
			t.Fatal("CheckRecordName accepts a control character")
		}
		dst := []byte("keep")
		out, err := AppendRecordTail(dst, &Record{Type: RecordMutation, Operator: "op"})
		if !errors.Is(err, ErrMalformed) || string(out) != "keep" {
			t.Fatalf("got %q, %v; want ErrMalformed and dst unchanged", out, err)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		r := &Record{Type: RecordMutation, Operator: "op", State: "s", Value: make([]byte, MaxRecordSize-20)}
		if _, err := AppendRecordTail(nil, r); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
	})
}

// A mutations record yields its entries as mutation records carrying its
// LSN, time, epoch and names; a damaged entry is an error naming it, on
// append and on decode.
func TestRecord_Mutations(t *testing.T) {
	batch := AppendMutationEntry(nil, 7, []byte("a"), []byte("1"), 99, false)
	batch = AppendMutationEntry(batch, 8, []byte("b"), []byte("ignored"), 5, true)
	r := Record{Type: RecordMutations, LSN: 4, Time: 5, Epoch: 6, Operator: "op", State: "st", Batch: batch}
	var got []Record
	if err := r.Mutations(func(m *Record) error { got = append(got, *m.Clone()); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{Type: RecordMutation, LSN: 4, Time: 5, Epoch: 6, Operator: "op", State: "st", KeyGroup: 7, Key: []byte("a"), Value: []byte("1"), ExpiresAt: 99},
		{Type: RecordMutation, LSN: 4, Time: 5, Epoch: 6, Operator: "op", State: "st", KeyGroup: 8, Key: []byte("b"), Delete: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Mutations yields %+v\nwant %+v", got, want)
	}
	enc, err := AppendRecord(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	// What a writer builds from the head and its entries is that record.
	if built := AppendFramedRecord(nil, RecordMutations, 4, 5, append(AppendMutationsHead(nil, 6, "op", "st"), batch...)); !bytes.Equal(built, enc) {
		t.Fatalf("head and entries framed % x\nAppendRecord % x", built, enc)
	}
	// Every entry of a mutation has the same size as the fields it
	// replaces, minus the names: the point of the record.
	single, _ := AppendRecord(nil, &want[0])
	if len(enc) >= 2*len(single) {
		t.Fatalf("two changes in a mutations record take %d bytes, one mutation record %d", len(enc), len(single))
	}
	for _, tc := range []struct {
		name  string
		batch []byte
		want  string
	}{
		{"ErrDeleteFlag", []byte{1, 1, 'k', 2, 0, 0}, "entry 0: delete flag"},
		{"ErrTruncatedEntry", append(bytes.Clone(batch), 1, 5, 'x'), "entry 2: key"},
		{"ErrDeleteWithValue", []byte{1, 0, 1, 1, 'v', 0}, "entry 0: delete carries a value"},
		{"ErrEmpty", nil, "without entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := r
			bad.Batch = tc.batch
			if _, err := AppendRecord(nil, &bad); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AppendRecord: %v; want ErrMalformed mentioning %q", err, tc.want)
			}
			tail := AppendMutationsHead(nil, 6, "op", "st")
			frame := AppendFramedRecord(nil, RecordMutations, 4, 5, append(tail, tc.batch...))
			if _, _, err := DecodeRecord(frame); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeRecord: %v; want ErrMalformed mentioning %q", err, tc.want)
			}
		})
	}
}
