package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// StdinInput reads standard input one line at a time, as FileInput reads a
// file. Standard input cannot be read again, so its position is a logical
// offset: the bytes read by every run of the stream, one after the other.
//
// Without a transaction log a restarted pipeline goes on with whatever
// arrives next, and what an earlier run had read past its last checkpoint
// is lost. With one, every chunk is logged before it is parsed (a record of
// type input) and a restarted run reads first the chunks that earlier runs
// read past the checkpoint's position, then standard input: the only loss
// is what still sat unread in the pipe, plus a chunk read but not yet
// logged when the process died. A line that a run had read only part of is
// dropped, since the rest of it went with that run's pipe; the restart
// is logged (an input record without data) so every later recovery drops
// it too (docs/EXACTLY-ONCE.md, "Standard input").
type StdinInput struct {
	Reader io.Reader
	JSON   bool

	// logRead, when set, appends a chunk read at offset to the log and
	// returns its LSN once it is written.
	logRead func(offset int64, data []byte) (uint64, error)
	// pieces are what to read before Reader: chunks earlier runs logged
	// past the checkpoint's position, and the cuts between runs.
	pieces []inputPiece

	readBuf []byte
	buf     []byte // the current chunk's bytes not yet parsed
	bufOff  int64  // logical offset of buf[0]
	bufLSN  uint64 // LSN of the input record holding buf (0 without a log)
	line    []byte // a line begun in an earlier chunk
	lineOff int64
	eof     bool
}

// inputPiece is a run of logged input bytes, or a cut: the place where a
// restarted run's bytes begin, which do not continue a line begun before.
type inputPiece struct {
	offset int64
	lsn    uint64
	data   []byte
	cut    bool
}

// stdinPosition is a StdinInput position: the logical offset after the
// last line returned and, with a log, the LSN of the input record that
// holds that line's end, where a recovery starts reading.
type stdinPosition struct {
	Offset int64  `json:"offset"`
	LSN    uint64 `json:"lsn,omitempty"`
}

// stdinChunk is the most one read takes from standard input, and so the
// most one input record holds.
const stdinChunk = 64 << 10

// Open implements Input. Reading resumes at pos's offset.
func (in *StdinInput) Open(_ context.Context, pos json.RawMessage) error {
	p, err := parseStdinPosition(pos)
	if err != nil {
		return err
	}
	in.bufOff, in.lineOff = p.Offset, p.Offset
	in.buf, in.line, in.eof = nil, in.line[:0], false
	in.readBuf = make([]byte, stdinChunk)
	return nil
}

func parseStdinPosition(pos json.RawMessage) (stdinPosition, error) {
	var p stdinPosition
	if pos == nil {
		return p, nil
	}
	if err := json.Unmarshal(pos, &p); err != nil || p.Offset < 0 {
		return p, fmt.Errorf("input stdin: bad checkpoint position %s", pos)
	}
	return p, nil
}

// Next implements Input.
func (in *StdinInput) Next(context.Context) (Record, json.RawMessage, error) {
	for {
		if len(in.buf) > 0 {
			i := bytes.IndexByte(in.buf, '\n')
			if i < 0 {
				in.line = append(in.line, in.buf...)
				in.bufOff += int64(len(in.buf))
				in.buf = nil
				if len(in.line) > maxLine {
					return nil, nil, fmt.Errorf("input stdin: line at offset %d is longer than %d bytes", in.lineOff, maxLine)
				}
				continue
			}
			in.line = append(in.line, in.buf[:i+1]...)
			in.buf = in.buf[i+1:]
			in.bufOff += int64(i + 1)
			rec, ok, err := in.take()
			if err != nil || ok {
				return rec, in.position(), err
			}
			continue
		}
		if len(in.pieces) > 0 {
			p := in.pieces[0]
			in.pieces = in.pieces[1:]
			if p.cut {
				// The rest of a partial line went with the run that read
				// it.
				in.line, in.lineOff = in.line[:0], p.offset
				continue
			}
			in.buf, in.bufOff, in.bufLSN = p.data, p.offset, p.lsn
			continue
		}
		if in.eof {
			if len(in.line) == 0 {
				return nil, nil, io.EOF
			}
			// A last line without a newline.
			rec, ok, err := in.take()
			if err != nil || ok {
				return rec, in.position(), err
			}
			return nil, nil, io.EOF
		}
		if err := in.read(); err != nil {
			return nil, nil, err
		}
	}
}

// read takes the next chunk from standard input and logs it before
// anything is parsed from it.
func (in *StdinInput) read() error {
	n, err := in.Reader.Read(in.readBuf)
	if n > 0 {
		in.buf = in.readBuf[:n]
		if in.logRead != nil {
			lsn, lerr := in.logRead(in.bufOff, in.buf)
			if lerr != nil {
				return fmt.Errorf("input stdin: log what was read: %w", lerr)
			}
			in.bufLSN = lsn
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		in.eof = true
	case err != nil:
		return fmt.Errorf("input stdin: %w", err)
	}
	return nil
}

// take turns the complete line in in.line into a record; ok is false for
// a blank line of a JSON input.
func (in *StdinInput) take() (Record, bool, error) {
	start := in.lineOff
	in.lineOff = in.bufOff
	text := bytes.TrimRight(in.line, "\r\n")
	in.line = in.line[:0]
	if !in.JSON {
		return Record{"line": string(text)}, true, nil
	}
	if len(bytes.TrimSpace(text)) == 0 {
		return nil, false, nil
	}
	rec, err := decodeJSONRecord(text)
	if err != nil {
		return nil, false, fmt.Errorf("input stdin: line at offset %d: %w", start, err)
	}
	return rec, true, nil
}

func (in *StdinInput) position() json.RawMessage {
	pos, _ := json.Marshal(stdinPosition{Offset: in.lineOff, LSN: in.bufLSN})
	return pos
}

// Close implements Input.
func (in *StdinInput) Close() error { return nil }

// journalFrom implements unrepeatableInput.
func (in *StdinInput) journalFrom(pos json.RawMessage) (int64, uint64, error) {
	p, err := parseStdinPosition(pos)
	return p.Offset, p.LSN, err
}

// setJournal implements unrepeatableInput.
func (in *StdinInput) setJournal(logRead func(int64, []byte) (uint64, error), recovered []inputPiece) {
	in.logRead, in.pieces = logRead, recovered
}

// unrepeatableInput is an input whose bytes cannot be read again. With a
// transaction log it logs what it reads before parsing it, and a restarted
// run gets back what earlier runs read past the checkpoint's position.
type unrepeatableInput interface {
	Input
	// journalFrom returns where the bytes after pos, a position Next
	// returned, begin: their logical offset, and the LSN of the input
	// record that holds them (0: the log's start).
	journalFrom(pos json.RawMessage) (offset int64, lsn uint64, err error)
	// setJournal makes the input log every chunk it reads with logRead,
	// and read recovered first: the chunks earlier runs logged from the
	// position's offset on, and the cuts between runs, ending with this
	// run's. It is called before Open.
	setJournal(logRead func(offset int64, data []byte) (uint64, error), recovered []inputPiece)
}
