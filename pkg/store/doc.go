// Package store is arkstate's object stores: the Store and Object
// interfaces, object names and their rules (ValidateName), the errors every
// store returns, and the implementations: a local directory (DirStore), S3
// (S3Store, over the S3Client shared with the S3 output), memory (MemStore)
// and hybrid (HybridStore: local first, copied to a remote store in the
// background).
//
// A Store has object-store semantics: flat slash-separated names,
// whole-object atomic writes, conditional writes (create-only and
// compare-and-swap on an ETag) and lexically ordered listing. Every
// implementation passes the same conformance suite, storetest.Run.
//
// Open turns an address such as "/var/lib/arkstate", "file:///var/lib/arkstate",
// "mem://test", "s3://bucket/prefix" or
// "hybrid:///var/lib/arkstate?remote=s3://bucket/prefix" into a Store.
//
// What only some stores can do is an optional interface (LocalReads,
// Temporaries, RemoteFallback, Replicator) found with As, which looks
// through wrappers such as a test's fault injector; callers never assert a
// concrete store type.
//
// The stores know no layout. A hybrid store is told by its HybridLayout
// which names live remotely only and in what order to copy; the checkpoint
// layout's rules are checkpoint.HybridLayout.
//
// Errors are an *Error carrying ErrNotExist or ErrPreconditionFailed for the
// expected outcomes, and ErrConfig or ErrUnavailable so that callers can
// tell a wrong address or credentials from a store that cannot be reached.
package store
