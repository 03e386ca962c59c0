// Package store is the contract of arkstate's object stores: the Store and
// Object interfaces, object names and their rules (ValidateName), and the
// errors every store returns. A Store has object-store semantics: flat
// slash-separated names, whole-object atomic writes, conditional writes
// (create-only and compare-and-swap on an ETag) and lexically ordered
// listing. The implementations (directory, S3, memory, hybrid) and Open are
// in pkg/checkpoint for now; the transaction log needs only this package.
package store
