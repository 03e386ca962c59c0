package txlog

import "errors"

// Sentinel errors; test with errors.Is. Damage is reported as
// *format.CorruptError, not with these.
var (
	// ErrClosed means the Log was used after Close.
	ErrClosed = errors.New("txlog: log is closed")
	// ErrFailed means an earlier write or fsync failed. What reached the disk
	// is unknown, so the Log refuses further appends; close it and open it
	// again, which cuts any torn tail.
	ErrFailed = errors.New("txlog: log failed")
	// ErrLocked means another Log, in this or another process, has the
	// stream open for writing.
	ErrLocked = errors.New("txlog: stream is locked by another writer")
	// ErrInvalidStream means a stream name cannot be a directory under
	// txlog/ (see ValidateStream).
	ErrInvalidStream = errors.New("txlog: invalid stream name")
	// ErrStreamNotFound means the store holds no segment of the stream.
	ErrStreamNotFound = errors.New("txlog: stream not found")
	// ErrLSNNotFound means a requested LSN is not in the log: it was
	// truncated away, or lies beyond the last record.
	ErrLSNNotFound = errors.New("txlog: LSN not in the log")
	// ErrGap is wrapped, with format.ErrMalformed, by the *format.CorruptError
	// for records whose LSNs do not follow one another.
	ErrGap = errors.New("LSN gap")
	// ErrConflict means a store already holds a different object under a
	// sealed segment's name.
	ErrConflict = errors.New("txlog: store holds a different segment of that name")
)
