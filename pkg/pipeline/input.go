package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// Input is a source of records with a resumable position.
type Input interface {
	// Open starts reading at pos, a position an earlier Next returned (nil:
	// from the beginning).
	Open(ctx context.Context, pos json.RawMessage) error
	// Next returns the next record and the position just after it, or
	// io.EOF when a bounded input has ended.
	Next(ctx context.Context) (Record, json.RawMessage, error)
	// Close releases the input.
	Close() error
}

// maxLine bounds one input line, so a file without newlines cannot make the
// reader allocate without limit.
const maxLine = 16 << 20

// filePosition is a file input's position: the byte offset of the next line.
type filePosition struct {
	Offset int64 `json:"offset"`
}

// FileInput reads a file one line at a time: a line becomes {"line": text},
// or with JSON set, the line is a JSON object. Its position is a byte
// offset. With Follow it tails a growing file and never ends.
type FileInput struct {
	Path   string
	JSON   bool
	Follow bool
	// Poll is how often a followed file is checked for new data (default
	// 100ms).
	Poll time.Duration

	f      *os.File
	r      *bufio.Reader
	offset int64
	line   []byte
}

// Open implements Input.
func (in *FileInput) Open(_ context.Context, pos json.RawMessage) error {
	f, err := os.Open(in.Path)
	if err != nil {
		return fmt.Errorf("input %s: %w", in.Path, err)
	}
	if pos != nil {
		var p filePosition
		if err := json.Unmarshal(pos, &p); err != nil {
			f.Close()
			return fmt.Errorf("input %s: bad checkpoint position %s: %w", in.Path, pos, err)
		}
		if st, err := f.Stat(); err == nil && p.Offset > st.Size() {
			f.Close()
			return fmt.Errorf("input %s: checkpoint position %d is past the end of the file (%d bytes): was it replaced?", in.Path, p.Offset, st.Size())
		}
		if _, err := f.Seek(p.Offset, io.SeekStart); err != nil {
			f.Close()
			return fmt.Errorf("input %s: %w", in.Path, err)
		}
		in.offset = p.Offset
	}
	in.f, in.r = f, bufio.NewReaderSize(f, 256<<10)
	if in.Poll <= 0 {
		in.Poll = 100 * time.Millisecond
	}
	return nil
}

// Next implements Input.
func (in *FileInput) Next(ctx context.Context) (Record, json.RawMessage, error) {
	for {
		chunk, err := in.r.ReadSlice('\n')
		in.line = append(in.line, chunk...)
		if len(in.line) > maxLine {
			return nil, nil, fmt.Errorf("input %s: line at offset %d is longer than %d bytes", in.Path, in.offset, maxLine)
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && in.Follow:
			// Keep a partial line until its newline arrives.
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(in.Poll):
			}
			continue
		case errors.Is(err, io.EOF) && len(in.line) == 0:
			return nil, nil, io.EOF
		case errors.Is(err, io.EOF):
			// A last line without a newline.
		default:
			return nil, nil, fmt.Errorf("input %s: %w", in.Path, err)
		}
		start := in.offset
		in.offset += int64(len(in.line))
		text := bytes.TrimRight(in.line, "\r\n")
		in.line = in.line[:0]
		pos, _ := json.Marshal(filePosition{Offset: in.offset})
		if !in.JSON {
			return Record{"line": string(text)}, pos, nil
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		rec, err := decodeJSONRecord(text)
		if err != nil {
			return nil, nil, fmt.Errorf("input %s: line at offset %d: %w", in.Path, start, err)
		}
		return rec, pos, nil
	}
}

// Close implements Input.
func (in *FileInput) Close() error {
	if in.f == nil {
		return nil
	}
	return in.f.Close()
}

func decodeJSONRecord(b []byte) (Record, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var rec Record
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if rec == nil {
		return nil, errors.New("not a JSON object: null")
	}
	for k, v := range rec {
		rec[k] = plainNumbers(v)
	}
	return rec, nil
}

// plainNumbers turns the json.Numbers of a decoded value into int64 where
// they are integers that fit, float64 otherwise, the types expressions and
// aggregates work with; decoding with UseNumber first keeps large integers
// exact.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}

// GenerateInput produces Count records (0: without end) of random words
// from a vocabulary of Words words, Rate records a second (0: as fast as
// possible). The same Seed gives the same records, so its position, the
// number of records produced, is resumable.
type GenerateInput struct {
	Seed  int64
	Rate  int
	Count int64
	Words int
	// WordsPerLine is how many words a record's "line" holds (default 8).
	WordsPerLine int

	rng    *rand.Rand
	n      int64
	start  time.Time // when pacing at Rate began, with startN records produced
	startN int64
	sb     strings.Builder
}

type generatePosition struct {
	N int64 `json:"n"`
}

// Open implements Input.
func (in *GenerateInput) Open(_ context.Context, pos json.RawMessage) error {
	if in.Words <= 0 {
		in.Words = 1000
	}
	if in.WordsPerLine <= 0 {
		in.WordsPerLine = 8
	}
	in.rng = rand.New(rand.NewPCG(uint64(in.Seed), uint64(in.Seed)^0x9e3779b97f4a7c15))
	in.n = 0
	if pos != nil {
		var p generatePosition
		if err := json.Unmarshal(pos, &p); err != nil {
			return fmt.Errorf("input generate: bad checkpoint position %s: %w", pos, err)
		}
		for in.n < p.N {
			in.line()
		}
	}
	// The rate is paced from here: a restored generator goes on at Rate at
	// once instead of waiting out the time its first n records once took.
	in.start, in.startN = time.Now(), in.n
	return nil
}

func (in *GenerateInput) line() string {
	in.sb.Reset()
	for i := range in.WordsPerLine {
		if i > 0 {
			in.sb.WriteByte(' ')
		}
		fmt.Fprintf(&in.sb, "w%d", in.rng.IntN(in.Words))
	}
	in.n++
	return in.sb.String()
}

// Next implements Input.
func (in *GenerateInput) Next(ctx context.Context) (Record, json.RawMessage, error) {
	if in.Count > 0 && in.n >= in.Count {
		return nil, nil, io.EOF
	}
	if in.Rate > 0 {
		due := in.start.Add(time.Duration(in.n-in.startN) * time.Second / time.Duration(in.Rate))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(d):
			}
		}
	}
	l := in.line()
	pos, _ := json.Marshal(generatePosition{N: in.n})
	return Record{"line": l}, pos, nil
}

// Close implements Input.
func (in *GenerateInput) Close() error { return nil }
