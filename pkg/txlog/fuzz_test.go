package txlog

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/arkstate/arkstate/pkg/format"
)

// FuzzTxlogSegment feeds arbitrary bytes to NewSegmentReader and Next.
//
// Properties: no panic; every failure is a *format.CorruptError whose
// offset lies within the input; records come out with consecutive LSNs from
// the header's first LSN; and the header plus the re-encoded records are
// exactly the input up to Offset (nothing is skipped or invented).
func FuzzTxlogSegment(f *testing.F) {
	recs := []*format.Record{
		withLSN(mutation(0), 5),
		withLSN(&format.Record{Type: format.RecordPosition, Source: "in", Position: []byte("17")}, 6),
		withLSN(&format.Record{Type: format.RecordTxnPrepare, Output: "out", TxnID: "t1", Data: []byte{0xff}}, 7),
		withLSN(&format.Record{Type: format.RecordEpochEnd, Epoch: 1, Checkpoint: 1}, 8),
		withLSN(&format.Record{Type: format.RecordInput, Source: "input", Position: []byte(`{"offset":0}`), Data: []byte("a\nb")}, 9),
	}
	good := buildSegment(f, 5, recs...)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:SegmentHeaderSize])
	f.Add(good[:SegmentHeaderSize-1])
	f.Add(buildSegment(f, 5, withLSN(mutation(1), 6)))
	f.Add(append(bytes.Clone(good), make([]byte, 64)...))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		sr, err := NewSegmentReader(bytes.NewReader(data), "seg")
		if err != nil {
			var ce *format.CorruptError
			if !errors.As(err, &ce) || ce.Offset != 0 {
				t.Fatalf("header error %T %v", err, err)
			}
			return
		}
		out := AppendSegmentHeader(nil, sr.Header())
		want := sr.Header().FirstLSN
		for {
			rec, err := sr.Next()
			if err == io.EOF {
				if sr.Offset() != int64(len(data)) {
					t.Fatalf("EOF at %d of %d", sr.Offset(), len(data))
				}
				break
			}
			if err != nil {
				var ce *format.CorruptError
				if !errors.As(err, &ce) || ce.Offset < SegmentHeaderSize || ce.Offset > int64(len(data)) || ce.Offset != sr.Offset() {
					t.Fatalf("record error %T %v at reader offset %d", err, err, sr.Offset())
				}
				break
			}
			if rec.LSN != want {
				t.Fatalf("LSN %d, want %d", rec.LSN, want)
			}
			want++
			if out, err = format.AppendRecord(out, rec); err != nil {
				t.Fatalf("decoded record does not encode: %v", err)
			}
		}
		if !bytes.Equal(out, data[:sr.Offset()]) {
			t.Fatalf("re-encoding differs from the input up to offset %d", sr.Offset())
		}
	})
}
