// Package txlog owns arkstate's transaction log: an append-only sequence of
// format.Record values per stream, each with a log sequence number (LSN),
// kept in segment files under txlog/<stream>/<20-digit first LSN>.log.
//
// A pipeline with state.txlog on (pkg/pipeline's journal) appends each
// epoch's state changes, source positions and two-phase-commit events, so
// that state can be rebuilt at any point between checkpoints
// (AfterCheckpoint; checkpoint.RestoreAt). Keeping what a non-replayable
// input (stdin) has read is not done yet.
//
// Four pieces:
//
//   - Log, the single writer of a stream in a local directory. Append assigns
//     the next LSN and returns once the record is durable; concurrent
//     appenders share one fsync (group commit). Segments roll at a size, and
//     Open cuts a torn tail left by a crash but refuses damage it cannot
//     explain.
//   - SegmentReader, the bounded decoder of one segment file: header, records
//     and LSN continuity, with damage reported as *format.CorruptError.
//   - Streams, Segments, Replay and Verify, which read a log through any
//     store.Store, so they work on the writer's directory and on copies
//     in S3 alike; AfterCheckpoint, Pending and CheckCoverage, which read
//     it against the checkpoints it belongs to.
//   - Upload, which copies sealed segments from the writer's directory to a
//     Store.
//
// The segment layout is specified in docs/FORMAT.md, section "Transaction
// log segment"; the records inside are those of pkg/format.
package txlog
