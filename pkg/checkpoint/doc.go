// Package checkpoint owns where arkstate's checkpoints live: the Store
// interface with its dir (local directory), s3 and mem implementations, and
// Open, which turns a store address such as "/var/lib/arkstate",
// "file:///var/lib/arkstate", "mem://test" or "s3://bucket/prefix" into a
// Store.
//
// A Store has object-store semantics: flat slash-separated names, whole-object
// atomic writes, conditional writes (create-only and compare-and-swap on an
// ETag) and lexically ordered listing. Every implementation passes the same
// conformance suite, storetest.Run.
//
// Errors wrap the sentinels of errors.go: ErrNotExist and
// ErrPreconditionFailed for the expected outcomes, and ErrConfig or
// ErrUnavailable on an *Error so that callers can tell a wrong address or
// credentials from a store that cannot be reached.
package checkpoint
