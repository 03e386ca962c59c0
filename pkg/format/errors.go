package format

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by *CorruptError so callers can test the kind of
// damage with errors.Is.
var (
	// ErrBadMagic means the bytes are not an arkstate file of the expected kind.
	ErrBadMagic = errors.New("bad magic")
	// ErrUnsupportedVersion means the file was written by a format version this
	// build cannot read.
	ErrUnsupportedVersion = errors.New("unsupported format version")
	// ErrChecksum means stored and computed checksums differ.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrTruncated means the input ended before a structure was complete.
	ErrTruncated = errors.New("truncated")
	// ErrTooLarge means a length field exceeds the format's bound; the decoder
	// refused to allocate for it.
	ErrTooLarge = errors.New("length exceeds limit")
	// ErrMalformed means a structure decoded but violates the format's rules
	// (ordering, ranges, unknown record type, trailing bytes).
	ErrMalformed = errors.New("malformed")
)

// CorruptError reports damaged input: which file, where in it, and what is wrong.
type CorruptError struct {
	File   string // file or object name as given by the caller; may be empty
	Offset int64  // byte offset of the damaged structure, or -1 when unknown
	Record string // the structure, e.g. "footer", "index", "block 3", "record"
	Err    error  // one of the sentinels above, possibly wrapped with detail
}

func (e *CorruptError) Error() string {
	file := e.File
	if file == "" {
		file = "<input>"
	}
	if e.Offset >= 0 {
		return fmt.Sprintf("%s: %s at offset %d: %v", file, e.Record, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", file, e.Record, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// corrupt builds a *CorruptError whose Err wraps sentinel with a detail message.
func corrupt(file string, offset int64, record string, sentinel error, format string, args ...any) *CorruptError {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	}
	return &CorruptError{File: file, Offset: offset, Record: record, Err: err}
}
