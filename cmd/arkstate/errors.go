package main

import "errors"

// usageError marks a bad flag, argument or configuration: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// findingsError means the command ran correctly and found something the user
// asked to fail on (damage, differences): exit 1. Its report is already on
// stdout, so main prints nothing more.
type findingsError struct{ summary string }

func (e *findingsError) Error() string { return e.summary }

// exitCode maps an error to the exit code of the CLI contract. Anything not
// known to be a usage error or a finding is treated as an I/O failure.
func exitCode(err error) int {
	var usage *usageError
	var findings *findingsError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &findings):
		return exitFindings
	case errors.As(err, &usage):
		return exitUsage
	default:
		return exitIO
	}
}
