package store

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Store methods wrap them in an *Error, so test with
// errors.Is.
var (
	// ErrNotExist means the named object is not in the store.
	ErrNotExist = errors.New("object does not exist")
	// ErrPreconditionFailed means a conditional write lost: the object existed
	// for Condition.IfNoneMatch, or its ETag differed (or it was absent) for
	// Condition.IfMatch.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrInvalidName means an object name or list prefix broke the naming
	// rules of ValidateName.
	ErrInvalidName = errors.New("invalid object name")
	// ErrClosed means the Store was used after Close.
	ErrClosed = errors.New("store is closed")

	// ErrConfig classifies failures that retrying cannot fix: a malformed or
	// unknown address, a missing bucket, rejected credentials, options out of
	// range. The CLI maps it to exit code 2.
	ErrConfig = errors.New("store configuration error")
	// ErrUnavailable classifies failures of the medium: the store could not be
	// reached, kept failing after retries, or a local I/O operation failed.
	// Retrying later may help. The CLI maps it to exit code 3.
	ErrUnavailable = errors.New("store unavailable")
)

// Error describes a failed store operation. Kind is ErrConfig, ErrUnavailable
// or nil (when Err alone says what happened, e.g. ErrNotExist); errors.Is sees
// both Kind and Err.
//
// Location comes from Store.Location and never carries credentials.
type Error struct {
	Op       string // "put", "get", "list", "open store", ...
	Location string // the store's address, e.g. "s3://bucket/prefix"
	Name     string // the object name or list prefix; empty for store-wide operations
	Kind     error  // ErrConfig, ErrUnavailable or nil
	Err      error  // the cause
}

// Error renders one line: `op "name" in location: kind: cause`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Name != "" {
		fmt.Fprintf(&b, " %q", e.Name)
	}
	if e.Location != "" {
		b.WriteString(" in ")
		b.WriteString(e.Location)
	}
	b.WriteString(": ")
	if e.Kind != nil && !errors.Is(e.Err, e.Kind) {
		b.WriteString(e.Kind.Error())
		b.WriteString(": ")
	}
	if e.Err != nil {
		// SDK and OS messages can span lines; a CLI prints this as one.
		b.WriteString(strings.Join(strings.Fields(e.Err.Error()), " "))
	}
	return b.String()
}

// Unwrap exposes both the classification and the cause to errors.Is/As.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}
