// Package pipeline runs stateful stream pipelines with exactly-once results:
// an input, a chain of processors, an output, and barrier-aligned
// checkpoints in the way Flink takes them.
//
// The coordinator injects barrier N at the source, which records its
// position. Stateless processors run chained in the task before them; every
// keyed processor starts a stage of thread_num subtasks, each owning a range
// of key groups, and records are routed to the subtask that owns their key.
// A subtask that has seen barrier N on all its input channels (records that
// arrive behind a barrier on one channel wait until the others catch up)
// freezes its state in constant time and forwards the barrier. Outputs
// write each epoch's records invisibly and pre-commit them at the barrier;
// when every task has acknowledged, the coordinator writes the checkpoint
// (segments first, manifest last) and only then are the outputs committed.
// A restarted pipeline restores the latest checkpoint, resumes each source
// from its recorded position, commits the transactions that checkpoint lists
// as pre-committed and aborts the rest, so no record is lost or repeated.
package pipeline
