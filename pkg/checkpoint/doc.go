// Package checkpoint owns where arkstate's checkpoints live and everything
// done to them as a whole.
//
// Stores: implementations of the Store interface of pkg/store: dir (local directory), s3, mem and
// hybrid (local first, copied to S3 in the background) implementations, and
// Open, which turns an address such as "/var/lib/arkstate",
// "file:///var/lib/arkstate", "mem://test", "s3://bucket/prefix" or
// "hybrid:///var/lib/arkstate?remote=s3://bucket/prefix" into a
// Store. A Store has object-store semantics: flat slash-separated names,
// whole-object atomic writes, conditional writes (create-only and
// compare-and-swap on an ETag) and lexically ordered listing. Every
// implementation passes the same conformance suite, storetest.Run.
//
// Checkpoints: Repo lays out a store as docs/ARCHITECTURE.md describes (the ARKSTATE
// marker, checkpoints/chk-<id>/MANIFEST, content-addressed segments/, the
// writer lease under leases/). Builder writes a checkpoint — segments first,
// the manifest last with a create-only write, which is the commit point —
// and RestoreBackend loads one into a state backend at any parallelism.
//
// Operations shared by the CLI and library users: List and Show, Verify
// (structure, deep, sampled), Diff over merged Views, Restore to another
// store, Prune and GC by reference counting, and Dump and Import of state as
// JSON lines.
//
// Errors wrap the sentinels of errors.go: ErrNotExist and
// ErrPreconditionFailed for the expected outcomes, and ErrConfig or
// ErrUnavailable on an *Error so that callers can tell a wrong address or
// credentials from a store that cannot be reached; damaged data is a
// *format.CorruptError.
package checkpoint
