package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/arkstate/arkstate/internal/crashpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
)

// Transactional is what an output implements to deliver exactly once
// through TwoPhaseCommitOutput: writes of an epoch go into a transaction
// that stays invisible until the checkpoint of that epoch completes.
type Transactional interface {
	// Write adds rec to subtask's open transaction of epoch.
	Write(subtask int, epoch uint64, rec Record) error
	// Prepare makes subtask's writes of epoch durable but invisible and
	// names the transaction. It returns ok=false when the epoch wrote
	// nothing. data is kept in the checkpoint and handed back to Commit.
	Prepare(subtask int, epoch uint64) (txnID string, data json.RawMessage, ok bool, err error)
	// Commit makes a prepared transaction visible. It must be idempotent:
	// after a crash the same transaction may be committed again.
	Commit(ctx context.Context, txnID string, data json.RawMessage) error
	// AbortExcept discards every prepared or open transaction whose id is
	// not in keep; it runs when a pipeline restarts from a checkpoint.
	AbortExcept(ctx context.Context, keep []string) error
}

// TwoPhaseCommitOutput turns a Transactional into an Output (TwoPhaseCommitOutput of
// ArkFlow's state-management document): each epoch is pre-committed at its barrier,
// recorded in the checkpoint, and committed when the checkpoint completes;
// a restored pipeline commits what its checkpoint lists and aborts the rest.
func TwoPhaseCommitOutput(name string, t Transactional) Output {
	return &twoPhaseOutput{name: name, t: t}
}

type twoPhaseOutput struct {
	name string
	t    Transactional
	// atLeastOnce commits each transaction at its pre-commit.
	atLeastOnce bool
}

func (o *twoPhaseOutput) Name() string { return o.name }

func (o *twoPhaseOutput) NewSink(subtask int) (Sink, error) {
	return &twoPhaseSink{o: o, subtask: subtask}, nil
}

func (o *twoPhaseOutput) Commit(ctx context.Context, txns []format.PendingTxn) error {
	for _, p := range txns {
		if p.Output != o.name {
			continue
		}
		if err := o.t.Commit(ctx, p.TxnID, p.Data); err != nil {
			return fmt.Errorf("output %s: commit %s: %w", o.name, p.TxnID, err)
		}
		crashpoint.Hit(crashpoint.BetweenCommits)
	}
	return nil
}

func (o *twoPhaseOutput) Recover(ctx context.Context, commit []format.PendingTxn) error {
	if err := o.Commit(ctx, commit); err != nil {
		return err
	}
	crashpoint.Hit(crashpoint.RecoverAfterCommit)
	var keep []string
	for _, p := range commit {
		if p.Output == o.name {
			keep = append(keep, p.TxnID)
		}
	}
	slices.Sort(keep)
	return o.t.AbortExcept(ctx, keep)
}

type twoPhaseSink struct {
	o       *twoPhaseOutput
	subtask int
	epoch   uint64
}

func (s *twoPhaseSink) Begin(epoch uint64) { s.epoch = epoch }

func (s *twoPhaseSink) Write(rec Record) error { return s.o.t.Write(s.subtask, s.epoch, rec) }

func (s *twoPhaseSink) PreCommit(epoch uint64) ([]format.PendingTxn, error) {
	id, data, ok, err := s.o.t.Prepare(s.subtask, epoch)
	if err != nil || !ok {
		return nil, err
	}
	if data == nil {
		data = json.RawMessage("null")
	}
	txn := format.PendingTxn{Output: s.o.name, TxnID: id, Epoch: epoch, Data: data}
	if s.o.atLeastOnce {
		return nil, s.o.Commit(context.Background(), []format.PendingTxn{txn})
	}
	return []format.PendingTxn{txn}, nil
}

func (s *twoPhaseSink) Close() error { return nil }

// StatefulFunc is a user's keyed processing step: it gets the record's key
// and the subtask's state backend (register state on first use, e.g. in a
// closure), and emits results.
type StatefulFunc interface {
	Open(st *state.Backend) error
	Process(key string, rec Record, emit func(Record) error) error
}

// ExactlyOnceProcessor wraps a user's stateful step as a keyed processor
// (ExactlyOnceProcessor of ArkFlow's state-management document): records are routed by key, the state
// the step keeps in its backend is checkpointed with the pipeline's barriers
// and restored after a failure, so its effects are applied exactly once.
// operatorID must stay stable across restarts; newFunc makes one instance
// per subtask.
func ExactlyOnceProcessor(operatorID string, key func(Record) (string, error), newFunc func() StatefulFunc) ProcessorSpec {
	return ProcessorSpec{Name: operatorID, Key: key, New: func() Processor {
		return &exactlyOnce{key: key, f: newFunc()}
	}}
}

type exactlyOnce struct {
	key func(Record) (string, error)
	f   StatefulFunc
}

func (p *exactlyOnce) Open(st *state.Backend) error { return p.f.Open(st) }

func (p *exactlyOnce) Process(rec Record, emit func(Record) error) error {
	k, err := p.key(rec)
	if err != nil {
		return err
	}
	return p.f.Process(k, rec, emit)
}
