// Package checkpoint owns where arkstate's checkpoints live and everything
// done to them as a whole.
//
// Stores are pkg/store's. Open opens one for holding checkpoints: it is
// store.Open with the rules a hybrid store needs for this layout
// (HybridLayout).
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
// Errors wrap the sentinels of pkg/store (ErrNotExist, ErrConfig,
// ErrUnavailable, ...) and of this package (ErrNoCheckpoints,
// ErrLeaseHeld, ...); damaged data is a *format.CorruptError.
package checkpoint
