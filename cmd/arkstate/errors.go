package main

import (
	"errors"
	"fmt"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/pipeline"
	"github.com/arkstate/arkstate/pkg/store"
)

// usageError marks a bad flag, argument or configuration: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// findingsError means the command ran correctly and found something the user
// asked to fail on (damage, differences): exit 1. Its report is already on
// stdout, so main prints nothing more.
type findingsError struct{ summary string }

func (e *findingsError) Error() string { return e.summary }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error to the exit code of the CLI contract: damage found
// is 1; a wrong flag, address, configuration, credentials or checkpoint id
// is 2; anything else (the store could not be reached, I/O failed) is 3.
func exitCode(err error) int {
	var usage *usageError
	var findings *findingsError
	var corrupt *format.CorruptError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &findings), errors.As(err, &corrupt), errors.Is(err, errNothingToVerify):
		return exitFindings
	case errors.As(err, &usage),
		errors.Is(err, store.ErrConfig),
		errors.Is(err, store.ErrInvalidName),
		errors.Is(err, checkpoint.ErrNotRepo),
		errors.Is(err, checkpoint.ErrJobMismatch),
		errors.Is(err, checkpoint.ErrCheckpointNotFound),
		errors.Is(err, checkpoint.ErrInvalidRef),
		errors.Is(err, checkpoint.ErrNoCheckpoints),
		errors.Is(err, pipeline.ErrOutputUnreachable),
		errors.Is(err, pipeline.ErrTxlogBackend):
		return exitUsage
	default:
		return exitIO
	}
}
