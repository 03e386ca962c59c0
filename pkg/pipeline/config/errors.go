package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel errors. Every *FieldError matches ErrInvalid and its Kind with
// errors.Is, so a caller can tell a bad configuration (exit code 2) from an
// unreadable file.
var (
	// ErrInvalid matches every configuration problem.
	ErrInvalid = errors.New("invalid configuration")
	// ErrSyntax is malformed YAML, or a document that is not one mapping.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownField is a key the schema does not have, or an unknown
	// ARKFLOW_STATE_* variable.
	ErrUnknownField = errors.New("unknown field")
	// ErrWrongType is a value of the wrong YAML type, or an environment
	// value that does not parse as the field's type.
	ErrWrongType = errors.New("wrong type")
	// ErrRequired is a missing field that has no default.
	ErrRequired = errors.New("required field missing")
	// ErrBadValue is a value out of range, not among an enum's values, a
	// regular expression that does not compile, a duplicate id, or a
	// combination of fields that does not work.
	ErrBadValue = errors.New("bad value")
)

// FieldError is one problem, located as precisely as its source allows.
type FieldError struct {
	// File is the configuration file name ("" for a Config built in Go).
	File string
	// Line and Column are 1-based; 0 when the value is not in the file
	// (a default, an environment value or a missing field whose enclosing
	// mapping is not in the file either).
	Line, Column int
	// Env is the environment variable the value came from, if any.
	Env string
	// Path is the field path, e.g. "streams[0].pipeline.processors[1].key".
	Path string
	// Kind is one of the sentinels ErrSyntax, ErrUnknownField,
	// ErrWrongType, ErrRequired, ErrBadValue.
	Kind error
	// Msg says what is wrong, without the location.
	Msg string
}

// Error formats the problem as "file:line:col: path: msg", or
// "VARIABLE: path: msg" for a value from the environment.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.Env != "":
		b.WriteString(e.Env)
		b.WriteString(": ")
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.File != "":
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is matches ErrInvalid and the error's Kind.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid || target == e.Kind
}

// Errors is every problem found in one step (Parse, ApplyEnv or Validate),
// in the order of the file.
type Errors []*FieldError

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// maxErrors bounds how many problems one step reports, so a huge broken
// file cannot make the error list grow without limit.
const maxErrors = 100

// errorList collects problems up to maxErrors.
type errorList struct {
	errs      Errors
	truncated int
}

func (l *errorList) add(e *FieldError) {
	if len(l.errs) >= maxErrors {
		l.truncated++
		return
	}
	l.errs = append(l.errs, e)
}

// result sorts the problems by position (those without one last, in the
// order found) and returns them as an error, or nil.
func (l *errorList) result(file string) error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *FieldError) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	if l.truncated > 0 {
		l.errs = append(l.errs, &FieldError{File: file, Kind: ErrBadValue,
			Msg: fmt.Sprintf("%d more problems not shown", l.truncated)})
	}
	return l.errs
}
