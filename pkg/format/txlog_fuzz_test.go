package format

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"
)

// FuzzTxlogRecord feeds arbitrary bytes to DecodeRecord and RecordReader.
//
// Properties: no panic; every decode failure is a *CorruptError; a decoded
// record re-encodes to exactly the bytes it was decoded from (the encoding
// is canonical); and the reader yields the same records and stops at the
// same offset with the same kind of error as repeated DecodeRecord calls.
func FuzzTxlogRecord(f *testing.F) {
	golden, err := os.ReadFile(txlogGoldenPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	for _, r := range recordFixtures() {
		enc := mustAppendRecords(f, []Record{r})
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
	}
	f.Add(frameRecordBody([]byte{byte(RecordMutation), 1, 2, 3, 2, 'o', 'p', 1, 's', 0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0, 0}))
	f.Add(frameRecordBody([]byte{10, 1, 1, 1}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		type step struct {
			rec Record
			off int64
		}
		var want []step
		var wantErr error
		off := 0
		for off < len(data) {
			r, n, err := DecodeRecord(data[off:])
			if err != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("offset %d: %T %v, want *CorruptError", off, err, err)
				}
				if n != 0 {
					t.Fatalf("offset %d: error with %d bytes consumed", off, n)
				}
				wantErr = err
				break
			}
			if n <= 0 || n > len(data)-off {
				t.Fatalf("offset %d: consumed %d of %d bytes", off, n, len(data)-off)
			}
			enc, err := AppendRecord(nil, &r)
			if err != nil {
				t.Fatalf("decoded record does not encode: %v (%+v)", err, r)
			}
			if !bytes.Equal(enc, data[off:off+n]) {
				t.Fatalf("offset %d: re-encoding differs:\n%x\n%x", off, enc, data[off:off+n])
			}
			want = append(want, step{*r.Clone(), int64(off)})
			off += n
		}

		rr := NewRecordReader(bytes.NewReader(data), "log")
		for i, w := range want {
			if rr.Offset() != w.off {
				t.Fatalf("reader at %d before record %d, want %d", rr.Offset(), i, w.off)
			}
			got, err := rr.Next()
			if err != nil || !reflect.DeepEqual(*got, w.rec) {
				t.Fatalf("reader record %d: %+v, %v; want %+v", i, got, err, w.rec)
			}
		}
		_, err := rr.Next()
		if wantErr == nil {
			if err != io.EOF {
				t.Fatalf("reader ended with %v, want io.EOF", err)
			}
			return
		}
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != int64(off) || rr.Offset() != int64(off) {
			t.Fatalf("reader error %v at %d, want corruption at offset %d", err, rr.Offset(), off)
		}
		for _, sentinel := range []error{ErrTruncated, ErrTooLarge, ErrChecksum, ErrMalformed} {
			if errors.Is(err, sentinel) != errors.Is(wantErr, sentinel) {
				t.Fatalf("reader error %v, DecodeRecord error %v", err, wantErr)
			}
		}
	})
}
