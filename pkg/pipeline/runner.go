package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// Spec is a runnable pipeline: one input, a chain of processors, one output.
type Spec struct {
	// ID names the job; operator ids in checkpoints derive from it and the
	// processors' positions, so both must stay stable across restarts.
	ID          string
	Input       Input
	Processors  []ProcessorSpec
	Output      Output
	Parallelism int    // subtasks per keyed stage (thread_num)
	KeyGroups   uint32 // the job's key-group count
}

// Options configure checkpointing. A nil Repo runs without checkpoints.
type Options struct {
	Repo     *checkpoint.Repo
	Interval time.Duration
	// Retained is how many complete checkpoints to keep (0: all).
	Retained int
	// MaxChain bounds incremental chains (default checkpoint.DefaultMaxChain).
	MaxChain int
	// SpoolDir holds segments between writing and upload.
	SpoolDir string
	// Segment configures the writer of checkpoint segments (zstd level,
	// block size).
	Segment format.SegmentWriterOptions
	Logger  *slog.Logger
	// Owner names this process in the store's writer lease; the lease is
	// taken when set.
	Owner string
	// LeaseTTL is the lease's time to live (default 30s).
	LeaseTTL time.Duration
	// LeaseAbandoned tells a dead holder's lease from a live one (see
	// checkpoint.LeaseOptions.Abandoned).
	LeaseAbandoned func(checkpoint.LeaseRecord) bool
	// WaitForLease makes Run wait while another writer holds the lease,
	// instead of failing with checkpoint.ErrLeaseHeld.
	WaitForLease bool
	// OnCheckpoint, when set, is called after every checkpoint attempt, on
	// the coordinator's goroutine: keep it short.
	OnCheckpoint func(CheckpointResult)
	// RetryFor is how long checkpoints, or output commits, may keep
	// failing (and at least MinFailures times in a row) before the stream
	// stops with ErrCheckpointStuck or ErrCommitStuck; zero means
	// DefaultRetryFor or 10 intervals, whichever is longer.
	RetryFor time.Duration
	// OnStart, when set, is called once the runner has its lease and has
	// restored its state, before the input opens: restored is the
	// checkpoint it resumed from, 0 for a fresh start.
	OnStart func(restored uint64)
	// Txlog, when set with a Repo, keeps a transaction log of the stream
	// under the spec's id.
	Txlog *TxlogOptions
}

// CheckpointResult describes one checkpoint attempt.
type CheckpointResult struct {
	ID uint64
	// Duration is from the barrier's injection to the end of the attempt.
	Duration time.Duration
	// Err is why the attempt failed; nil when the checkpoint completed.
	Err error
}

// SourceID is the name a stream's input has in checkpoint manifests.
const SourceID = "input"

// Stats count what a pipeline did; all fields are updated atomically.
type Stats struct {
	RecordsIn            atomic.Int64
	RecordsOut           atomic.Int64
	CheckpointsCompleted atomic.Int64
	CheckpointsFailed    atomic.Int64
	FailuresSinceSuccess atomic.Int64 // checkpoints failed since the last completed one
	LastCheckpointID     atomic.Uint64
	LastCheckpointNanos  atomic.Int64 // duration from trigger to the end of the last attempt
	LastCheckpointUnix   atomic.Int64 // when the last completed checkpoint committed, in Unix nanoseconds
	CheckpointBytes      atomic.Int64 // segment bytes the last completed checkpoint is made of
	BytesUploaded        atomic.Int64
	RestoredFrom         atomic.Uint64
	StartedUnix          atomic.Int64 // when Run started (or took the lease it waited for), in Unix nanoseconds
	CommitFailures       atomic.Int64 // output commits failed in a row; 0 after one succeeds
	LastCommitError      atomic.Pointer[string]
	Running              atomic.Bool
	WaitingForLease      atomic.Bool // a standby waiting for another writer's lease
}

// message travels between tasks: a record, a barrier, the end of input,
// or the flush that precedes it.
type message struct {
	recs    []Record // a batch: sending records one by one costs more than processing them
	barrier uint64
	flush   bool
	eof     bool
	from    int
}

// Flusher is a processor that holds results back (windows waiting for their
// watermark). At the end of a bounded input Flush emits everything still
// held, before the final checkpoint, so the output is complete.
type Flusher interface {
	Flush(emit func(Record) error) error
}

// stage is a set of parallel subtasks; stage 0 is the source.
type stage struct {
	opID   string // "" when the stage keeps no state
	key    func(Record) (string, error)
	procs  []ProcessorSpec
	tasks  []*task
	inputs []chan message
}

// Runner runs one pipeline.
type Runner struct {
	spec   Spec
	opts   Options
	log    *slog.Logger
	stages []*stage
	coord  *coordinator
	// journal is the transaction log (Options.Txlog), nil without one.
	journal *journal
	stats   Stats
	runErr  atomic.Pointer[error] // why Run returned, if on an error
	// tasks are all stages' tasks, published once built for Status, which
	// other goroutines call while Run builds them.
	tasks atomic.Pointer[[]*task]

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

// NewRunner checks spec and builds the runner; nothing runs or is written
// until Run.
func NewRunner(spec Spec, opts Options) (*Runner, error) {
	if spec.ID == "" || spec.Input == nil || spec.Output == nil {
		return nil, errors.New("pipeline: a spec needs an id, an input and an output")
	}
	if spec.KeyGroups == 0 {
		spec.KeyGroups = state.DefaultKeyGroups
	}
	if spec.Parallelism <= 0 {
		spec.Parallelism = 1
	}
	if uint32(spec.Parallelism) > spec.KeyGroups {
		return nil, fmt.Errorf("pipeline %s: parallelism %d exceeds the %d key groups", spec.ID, spec.Parallelism, spec.KeyGroups)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxChain <= 0 {
		opts.MaxChain = checkpoint.DefaultMaxChain
	}
	if opts.Repo != nil && opts.Interval <= 0 {
		return nil, fmt.Errorf("pipeline %s: checkpoint interval must be positive", spec.ID)
	}
	if opts.Txlog != nil {
		if opts.Repo == nil {
			return nil, fmt.Errorf("pipeline %s: a transaction log needs checkpoints", spec.ID)
		}
		if err := txlog.ValidateStream(spec.ID); err != nil {
			return nil, fmt.Errorf("pipeline %s: the id cannot name a transaction-log stream: %w", spec.ID, err)
		}
	}
	r := &Runner{spec: spec, opts: opts, log: opts.Logger}
	r.stages = []*stage{{}}
	for i, p := range spec.Processors {
		if p.Keyed() {
			r.stages = append(r.stages, &stage{opID: fmt.Sprintf("%s/%d-%s", spec.ID, i, p.Name), key: p.Key})
		}
		last := r.stages[len(r.stages)-1]
		last.procs = append(last.procs, p)
	}
	return r, nil
}

// acquireLease takes the job's writer lease. With WaitForLease it retries
// while another writer holds it, logging who, until it is free or ctx ends:
// a standby started beside the active process takes over when that one stops
// or its lease expires, and restores from its last checkpoint.
func (r *Runner) acquireLease(ctx context.Context) (*checkpoint.Lease, error) {
	opts := checkpoint.LeaseOptions{TTL: r.opts.LeaseTTL, Abandoned: r.opts.LeaseAbandoned}
	// One small read a second at most: a standby takes over within a second
	// of the active writer releasing the lease.
	ttl := r.opts.LeaseTTL
	if ttl <= 0 {
		ttl = checkpoint.DefaultLeaseTTL
	}
	poll := min(max(ttl/8, 10*time.Millisecond), time.Second)
	logged := false
	for {
		l, err := r.opts.Repo.AcquireLease(ctx, r.spec.ID, r.opts.Owner, opts)
		if err == nil || !r.opts.WaitForLease || !errors.Is(err, checkpoint.ErrLeaseHeld) {
			if err == nil && logged {
				r.log.Info("took the writer lease")
			}
			return l, err
		}
		if !logged {
			r.log.Info("waiting for the writer lease", "err", err)
			r.stats.WaitingForLease.Store(true)
			// The checkpoint clock that health watches starts when the
			// lease is taken, not while the standby waits.
			defer func() {
				r.stats.WaitingForLease.Store(false)
				r.stats.StartedUnix.Store(time.Now().UnixNano())
			}()
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(poll):
		}
	}
}

// Stats returns the runner's live counters.
func (r *Runner) Stats() *Stats { return &r.stats }

// Run restores the latest checkpoint if there is one, then processes until
// a bounded input ends (after a final checkpoint and commit), ctx is
// cancelled, or a task fails.
func (r *Runner) Run(ctx context.Context) (err error) {
	r.stats.StartedUnix.Store(time.Now().UnixNano())
	r.stats.Running.Store(true)
	defer func() {
		if err != nil {
			r.runErr.Store(&err)
		}
		r.stats.Running.Store(false)
	}()
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	defer r.cancel(nil)
	if c, ok := r.spec.Output.(interface{ Check() error }); ok {
		if err := c.Check(); err != nil {
			return err
		}
	}
	if err := r.build(); err != nil {
		return err
	}
	var lease *checkpoint.Lease
	if r.opts.Repo != nil && r.opts.Owner != "" {
		l, err := r.acquireLease(ctx)
		if err != nil {
			return err
		}
		lease = l
		defer lease.Release(context.WithoutCancel(ctx))
		stopRenew := r.renewLease(lease)
		defer stopRenew()
		if prev, ok := lease.Superseded(); ok {
			// The last holder's lease expired without a release: it may be
			// frozen, and may thaw. Take the next checkpoint id before
			// restoring, so nothing it commits can count.
			m, err := r.opts.Repo.Fence(ctx, lease)
			if err != nil {
				return err
			}
			r.log.Warn("took the writer lease over from a writer that did not release it; fenced it out",
				"previous_owner", prev.Owner, "previous_token", prev.Token, "fence_checkpoint", m.CheckpointID)
		}
	}
	pos, err := r.restore(ctx)
	if err != nil {
		return err
	}
	if r.opts.Txlog != nil {
		// Opened under the lease, so one writer appends; a torn tail a
		// crash left is cut and reported.
		j, jerr := openJournal(ctx, r.spec.ID, *r.opts.Txlog, r.log)
		if jerr != nil {
			return fmt.Errorf("pipeline %s: %w", r.spec.ID, jerr)
		}
		defer func() {
			if cerr := j.close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
				err = cerr
			}
		}()
		if cut := j.log.TailCut(); cut != nil {
			r.log.Warn("cut the torn tail of the transaction log", "segment", cut.Segment, "offset", cut.Offset, "bytes", cut.Bytes)
		}
		if _, jerr := j.beginEpoch(r.coord.next); jerr != nil {
			return fmt.Errorf("pipeline %s: %w", r.spec.ID, jerr)
		}
		var restored, from uint64
		if m := r.coord.parent.Load(); m != nil {
			// Recovery committed what the restored checkpoint lists.
			if jerr := j.committed(m.Pending); jerr != nil {
				return fmt.Errorf("pipeline %s: %w", r.spec.ID, jerr)
			}
			restored = m.CheckpointID
			if m.Txlog != nil && m.Txlog.Stream == r.spec.ID {
				from = m.Txlog.LSN
			}
		}
		// ... and aborted what the log shows prepared for later epochs.
		if jerr := j.aborted(ctx, restored, from); jerr != nil {
			return fmt.Errorf("pipeline %s: %w", r.spec.ID, jerr)
		}
		r.journal = j
		if in, ok := r.spec.Input.(unrepeatableInput); ok {
			if err := r.recoverInput(ctx, in, pos); err != nil {
				return fmt.Errorf("pipeline %s: %w", r.spec.ID, err)
			}
		}
	}
	if r.opts.OnStart != nil {
		r.opts.OnStart(r.stats.RestoredFrom.Load())
	}
	if err := r.spec.Input.Open(ctx, pos); err != nil {
		return err
	}
	defer r.spec.Input.Close()
	for _, st := range r.stages {
		for _, t := range st.tasks {
			if err := t.open(); err != nil {
				return err
			}
		}
	}
	if r.coord != nil {
		r.coord.lease = lease
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.coord.run(r.ctx); err != nil {
				r.fail(err)
			}
		}()
	}
	for _, st := range r.stages {
		for _, t := range st.tasks {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				if err := t.run(r.ctx); err != nil {
					r.fail(err)
				}
			}()
		}
	}
	r.wg.Wait()
	if r.coord == nil && errors.Is(context.Cause(r.ctx), context.Canceled) {
		// Stopped (SIGINT, SIGTERM) without checkpoints: nothing can
		// resume this run's position, so what it wrote is committed now,
		// as at the end of a bounded input (at-least-once), rather than
		// left half-written in a pending part.
		for _, t := range r.stages[len(r.stages)-1].tasks {
			if err := t.stopFlush(); err != nil {
				r.log.Error("committing the output on stop failed", "err", err)
			}
		}
	}
	for _, t := range r.stages[len(r.stages)-1].tasks {
		t.sink.Close()
	}
	if c, ok := r.spec.Output.(io.Closer); ok {
		c.Close()
	}
	if cause := context.Cause(r.ctx); cause != nil {
		return cause
	}
	return nil
}

// renewLease renews the lease every third of its TTL until stop is called,
// so a long checkpoint or an idle input never lets it lapse. A renewal that
// finds the lease taken over stops the run with ErrLeaseLost; other
// failures are retried, and a lease that lapses meanwhile fails the next
// checkpoint's commit check.
func (r *Runner) renewLease(l *checkpoint.Lease) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(l.TTL()/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			err := l.Renew(r.ctx)
			switch {
			case err == nil:
			case errors.Is(err, checkpoint.ErrLeaseLost):
				r.log.Error("lost the writer lease; stopping", "err", err)
				r.fail(err)
				return
			case r.ctx.Err() != nil:
				return
			default:
				r.log.Warn("renewing the writer lease failed; retrying", "err", err, "expires_at", l.ExpiresAt())
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func (r *Runner) fail(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		r.cancel(err)
		return
	}
	r.cancel(err)
}

func (r *Runner) build() error {
	total := 0
	for si, st := range r.stages {
		n := r.spec.Parallelism
		if si == 0 {
			n = 1
		}
		for i := range n {
			t := &task{r: r, stage: si, index: i, st: st}
			if si > 0 {
				rng, err := state.RangeForSubtask(r.spec.KeyGroups, n, i)
				if err != nil {
					return err
				}
				t.rng = rng
				t.backend, err = state.NewBackend(state.Options{KeyGroups: r.spec.KeyGroups, Range: &rng})
				if err != nil {
					return err
				}
				t.wake = make(chan struct{}, 1)
				st.inputs = append(st.inputs, make(chan message, inputQueue))
				t.ups = len(r.stages[si-1].tasks)
			}
			if si == len(r.stages)-1 {
				sink, err := r.spec.Output.NewSink(i)
				if err != nil {
					return err
				}
				t.sink = sink
			}
			st.tasks = append(st.tasks, t)
			total++
		}
	}
	for si, st := range r.stages {
		for i, t := range st.tasks {
			if si > 0 {
				t.in = st.inputs[i]
			}
			if si+1 < len(r.stages) {
				t.next = r.stages[si+1]
			}
		}
	}
	if r.opts.Repo != nil {
		r.coord = &coordinator{r: r, repo: r.opts.Repo, expected: total, trigger: make(chan uint64, 1), acks: make(chan ack, total), finalReq: make(chan struct{}, 1), finalDone: make(chan struct{}), next: 1}
	}
	var all []*task
	for _, st := range r.stages {
		all = append(all, st.tasks...)
	}
	r.tasks.Store(&all)
	return nil
}

// restore loads the newest readable checkpoint into the tasks' backends,
// settles the output's transactions, and returns the source position.
func (r *Runner) restore(ctx context.Context) (json.RawMessage, error) {
	if r.coord == nil {
		return nil, r.spec.Output.Recover(ctx, nil)
	}
	repo := r.opts.Repo
	ids, err := repo.IDs(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, r.spec.Output.Recover(ctx, nil)
	}
	r.coord.next = ids[len(ids)-1] + 1
	// Only the newest checkpoint will do: its output is committed, so
	// resuming from an older one would emit those records again. A damaged
	// one is an error for the operator (verify, restore from a replica, or
	// restore an older checkpoint elsewhere and accept the repeats), never
	// silently skipped.
	latest := ids[len(ids)-1]
	m, err := repo.Manifest(ctx, latest)
	if err == nil {
		err = r.restoreStates(ctx, m)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: restore checkpoint %d: %w", r.spec.ID, latest, err)
	}
	if err := checkPendingOwned(r.spec.Output, m); err != nil {
		return nil, err
	}
	if err := r.spec.Output.Recover(ctx, m.Pending); err != nil {
		return nil, err
	}
	r.coord.parent.Store(m)
	r.stats.RestoredFrom.Store(m.CheckpointID)
	r.stats.CheckpointBytes.Store(m.LogicalBytes())
	r.log.Info("restored checkpoint", "checkpoint", m.CheckpointID, "pending_committed", len(m.Pending))
	for _, s := range m.Sources {
		if s.Source == SourceID {
			return s.Position, nil
		}
	}
	return nil, nil
}

// OutputOwner is an Output that recognises its transactions under more
// than one name, for example names recorded before they were normalised.
type OutputOwner interface {
	OwnsOutput(name string) bool
}

// checkPendingOwned refuses to resume from a checkpoint that lists
// pre-committed transactions of an output this pipeline does not have:
// recovery would leave them uncommitted for ever while the source resumes
// past their records.
func checkPendingOwned(out Output, m *format.Manifest) error {
	owns := func(name string) bool { return name == out.Name() }
	if o, ok := out.(OutputOwner); ok {
		owns = o.OwnsOutput
	}
	for _, p := range m.Pending {
		if !owns(p.Output) {
			return fmt.Errorf("checkpoint %d lists pre-committed transaction %s of output %q, but this pipeline's output is %q: its records are in no other place, so run with the output the checkpoint was written with: %w",
				m.CheckpointID, p.TxnID, p.Output, out.Name(), ErrOutputUnreachable)
		}
	}
	return nil
}

// restoreStates loads checkpoint m into every keyed task's backend.
func (r *Runner) restoreStates(ctx context.Context, m *format.Manifest) error {
	for _, st := range r.stages[1:] {
		for _, t := range st.tasks {
			if err := r.opts.Repo.RestoreBackend(ctx, m, st.opID, t.backend); err != nil {
				return err
			}
		}
	}
	return nil
}

// task is one subtask of a stage.
type task struct {
	r       *Runner
	stage   int
	index   int
	st      *stage
	rng     state.KeyGroupRange
	backend *state.Backend
	chain   func(Record) error
	procs   []Processor
	emits   []func(Record) error // emits[i] feeds the processor after procs[i]
	next    *stage
	sink    Sink
	in      chan message
	ups     int
	out     [][]Record // per downstream subtask, records not sent yet
	// wake tells an idle keyed task that a snapshot released its layers,
	// so the state maintenance that waited for them can go on.
	wake chan struct{}
	// frozenLayers mirrors the backend's count of frozen layers not yet
	// folded into its base, for Status to read from other goroutines.
	frozenLayers atomic.Int32
	// epoch is the barrier epoch the task is in. With a journal, logTails
	// holds the state changes not yet handed to the transaction log, as
	// mutations records encoded up to their LSN and time; logEnds are
	// where each ends. logErr is the first change that could not be
	// encoded, reported by flushLog.
	epoch    uint64
	logTails []byte
	logEnds  []int
	logErr   error
	// logOpen says a mutations record is open in logTails, from logStart,
	// for state logState.
	logOpen  bool
	logStart int
	logState string
}

// idleMaintenance is how many state entries an idle task folds or sweeps
// between two looks at its input: a message that arrives meanwhile waits
// for about that many map operations at most.
const idleMaintenance = 4096

// batchSize is how many records a message carries at most.
const batchSize = 256

// inputQueue is how many messages a subtask's input holds. A barrier waits
// behind everything queued before it, so the queue is kept short: 32
// batches are enough to keep a busy subtask fed.
const inputQueue = 32

// open instantiates the stage's processors and wires them into a chain.
func (t *task) open() error {
	procs := make([]Processor, len(t.st.procs))
	for i, ps := range t.st.procs {
		procs[i] = ps.New()
		if err := procs[i].Open(t.backend); err != nil {
			return fmt.Errorf("pipeline %s: open %s: %w", t.r.spec.ID, ps.Name, err)
		}
	}
	emit := t.emitOut
	t.emits = make([]func(Record) error, len(procs))
	for i := len(procs) - 1; i >= 0; i-- {
		p, next := procs[i], emit
		t.emits[i] = next
		emit = func(rec Record) error { return p.Process(rec, next) }
	}
	t.chain, t.procs = emit, procs
	t.epoch = 1
	if t.r.coord != nil {
		t.epoch = t.r.coord.next
	}
	if t.sink != nil {
		t.sink.Begin(t.epoch)
	}
	if t.r.journal != nil && t.backend != nil {
		if err := format.CheckRecordName("operator", t.st.opID); err != nil {
			return fmt.Errorf("pipeline %s: %w", t.r.spec.ID, err)
		}
		t.backend.SetObserver(t.observe)
	}
	return nil
}

// observe keeps one state change for the transaction log. Changes to one
// state between two flushes go into one mutations record (its names and
// framing written once), encoded but for the LSN and time into a buffer
// reused from batch to batch: a change costs no allocation, and the
// encoding happens outside the log's lock. Names are checked once (the
// operator's at open, a state's when it first appears in a record).
func (t *task) observe(e *format.Entry) {
	value := e.Value
	if e.Tombstone {
		value = nil
	}
	size := format.MutationEntrySize(len(e.Key), len(value))
	if t.logOpen && (e.State != t.logState || len(t.logTails)-t.logStart+size > maxLogRecord) {
		t.closeLogRecord()
	}
	if !t.logOpen {
		if err := format.CheckRecordName("state", e.State); err != nil {
			t.failLog(err)
			return
		}
		if len(t.st.opID)+len(e.State)+3*binary.MaxVarintLen64+size > format.MaxRecordTail {
			t.failLog(fmt.Errorf("state %s key group %d: a change of %d bytes: %w", e.State, e.KeyGroup, size, format.ErrTooLarge))
			return
		}
		t.logStart, t.logState, t.logOpen = len(t.logTails), e.State, true
		t.logTails = format.AppendMutationsHead(t.logTails, t.epoch, t.st.opID, e.State)
	}
	t.logTails = format.AppendMutationEntry(t.logTails, e.KeyGroup, e.Key, value, e.ExpiresAt, e.Tombstone)
}

// maxLogRecord is the size at which a mutations record is closed and the
// next change starts another: records stay small enough to write whole.
const maxLogRecord = 1 << 20

// closeLogRecord ends the open mutations record.
func (t *task) closeLogRecord() {
	t.logEnds = append(t.logEnds, len(t.logTails))
	t.logOpen = false
}

// failLog keeps the first change that could not be logged, for flushLog
// to report.
func (t *task) failLog(err error) {
	if t.logErr == nil {
		t.logErr = fmt.Errorf("pipeline %s: log a change of %s: %w", t.r.spec.ID, t.st.opID, err)
	}
}

// flushLog hands the state changes kept since the last call to the
// transaction log, without waiting for the disk (the coordinator syncs the
// log before a checkpoint commits).
func (t *task) flushLog() error {
	if t.logErr != nil {
		return t.logErr
	}
	if t.logOpen {
		t.closeLogRecord()
	}
	if len(t.logEnds) == 0 {
		return nil
	}
	_, err := t.r.journal.log.SubmitTails(format.RecordMutations, t.logTails, t.logEnds)
	t.logTails, t.logEnds = t.logTails[:0], t.logEnds[:0]
	return err
}

// emitOut sends a record to the subtask of the next stage that owns its
// key, or to the sink.
func (t *task) emitOut(rec Record) error {
	if t.next == nil {
		t.r.stats.RecordsOut.Add(1)
		return t.sink.Write(rec)
	}
	k, err := t.next.key(rec)
	if err != nil {
		return fmt.Errorf("pipeline %s: route to %s: %w", t.r.spec.ID, t.next.opID, err)
	}
	kg := state.KeyGroupFor(k, t.r.spec.KeyGroups)
	sub := state.SubtaskFor(kg, t.r.spec.KeyGroups, len(t.next.inputs))
	if t.out == nil {
		t.out = make([][]Record, len(t.next.inputs))
	}
	t.out[sub] = append(t.out[sub], rec)
	if len(t.out[sub]) < batchSize {
		return nil
	}
	return t.sendBatch(sub)
}

func (t *task) sendBatch(sub int) error {
	b := t.out[sub]
	t.out[sub] = make([]Record, 0, batchSize)
	return t.send(t.next.inputs[sub], message{recs: b, from: t.index})
}

// flushOut sends every partly filled batch: before a barrier (records of an
// epoch must precede its barrier) and whenever the task's input runs dry,
// so records do not wait for a batch to fill.
func (t *task) flushOut() error {
	for sub, b := range t.out {
		if len(b) > 0 {
			if err := t.sendBatch(sub); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *task) send(ch chan message, m message) error {
	select {
	case ch <- m:
		return nil
	case <-t.r.ctx.Done():
		return t.r.ctx.Err()
	}
}

func (t *task) broadcast(m message) error {
	if t.next == nil {
		return nil
	}
	if err := t.flushOut(); err != nil {
		return err
	}
	m.from = t.index
	for _, ch := range t.next.inputs {
		if err := t.send(ch, m); err != nil {
			return err
		}
	}
	return nil
}

func (t *task) run(ctx context.Context) error {
	if t.stage == 0 {
		return t.runSource(ctx)
	}
	return t.runStage(ctx)
}

// recoverInput hands in what earlier runs logged of it past pos, and makes
// it log what it reads from now on.
func (r *Runner) recoverInput(ctx context.Context, in unrepeatableInput, pos json.RawMessage) error {
	off, lsn, err := in.journalFrom(pos)
	if err != nil {
		return err
	}
	pieces, err := r.journal.recoverInput(ctx, SourceID, off, lsn)
	if err != nil {
		return err
	}
	var n int
	for _, p := range pieces {
		n += len(p.data)
	}
	if n > 0 {
		r.log.Info("recovered input an earlier run had read past the checkpoint from the transaction log", "bytes", n, "from_offset", off)
	}
	in.setJournal(func(offset int64, data []byte) (uint64, error) {
		return r.journal.logInput(SourceID, offset, data)
	}, pieces)
	return nil
}

// item is what the reader goroutine hands the source task.
type item struct {
	rec Record
	pos json.RawMessage
	err error
}

// runSource reads the input on a separate goroutine, so a barrier can be
// injected while a read blocks (a followed file, stdin).
func (t *task) runSource(ctx context.Context) error {
	items := make(chan item, 256)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		defer close(items)
		for {
			rec, pos, err := t.r.spec.Input.Next(readCtx)
			select {
			case items <- item{rec, pos, err}:
			case <-readCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var pos json.RawMessage
	var trigger chan uint64
	if t.r.coord != nil {
		trigger = t.r.coord.trigger
	}
	ended := false
	var finalDone chan struct{}
	if t.r.coord != nil {
		finalDone = t.r.coord.finalDone
	}
	for {
		var in <-chan item = items
		if ended {
			in = nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-finalDone:
			return t.finish()
		case id := <-trigger:
			if err := t.barrier(id, &format.SourcePosition{Source: SourceID, Position: pos}); err != nil {
				return err
			}
		case it := <-in:
			switch {
			case errors.Is(it.err, io.EOF):
				ended = true
				if err := t.flush(); err != nil {
					return err
				}
				if t.r.coord == nil {
					return t.finish()
				}
				t.r.coord.requestFinal()
			case it.err != nil:
				return it.err
			default:
				t.r.stats.RecordsIn.Add(1)
				pos = it.pos
				if err := t.chain(it.rec); err != nil {
					return err
				}
				if err := t.flushLog(); err != nil {
					return err
				}
				if len(items) == 0 {
					if err := t.flushOut(); err != nil {
						return err
					}
				}
			}
		}
	}
}

// flush lets the task's processors emit what they hold back, in chain
// order, and passes the flush downstream.
func (t *task) flush() error {
	for i, p := range t.procs {
		if f, ok := p.(Flusher); ok {
			if err := f.Flush(t.emits[i]); err != nil {
				return err
			}
		}
	}
	return t.broadcast(message{flush: true})
}

// finish ends the stream: the end-of-input marker flows downstream.
func (t *task) finish() error {
	if t.next == nil {
		return t.finalFlush()
	}
	return t.broadcast(message{eof: true})
}

// finalFlush runs in a last-stage task without checkpoints: its output is
// made visible at the end of input.
func (t *task) finalFlush() error {
	if t.r.coord != nil {
		return nil
	}
	return t.commitOutput(t.r.ctx)
}

// stopFlush is finalFlush for a run stopped before the end of its input:
// the run's context is cancelled, so the commit gets one of its own.
func (t *task) stopFlush() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return t.commitOutput(ctx)
}

// commitOutput pre-commits and commits what the sink of a run without
// checkpoints holds: it all belongs to epoch 1.
func (t *task) commitOutput(ctx context.Context) error {
	txns, err := t.sink.PreCommit(1)
	if err != nil {
		return err
	}
	return t.r.spec.Output.Commit(ctx, txns)
}

// runStage processes records from the task's input channel, aligning
// barriers: after barrier N arrives from one upstream subtask, that
// subtask's later records wait until N has arrived from all of them.
func (t *task) runStage(ctx context.Context) error {
	align := newAligner(t.ups)
	on := stageTask{t}
	// Between messages the task folds frozen state layers into the base and
	// sweeps expired entries, a bounded step at a time, so the maintenance
	// that writes pay for as they go also happens while the stream is quiet.
	idleWork := false
	for {
		var m message
		if idleWork {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case m = <-t.in:
			default:
				idleWork = t.backend.MaintainIdle(idleMaintenance)
				t.frozenLayers.Store(int32(t.backend.Stats().FrozenLayers))
				continue
			}
		} else {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.wake:
				idleWork = true
				continue
			case m = <-t.in:
			}
		}
		done, err := align.push(m, on)
		if err == nil {
			err = t.flushLog()
		}
		if done || err != nil {
			return err
		}
		if len(t.in) == 0 {
			if err := t.flushOut(); err != nil {
				return err
			}
		}
		if t.backend != nil {
			idleWork = true
			t.frozenLayers.Store(int32(t.backend.Stats().FrozenLayers))
		}
	}
}

// stageTask is a task as its aligner drives it.
type stageTask struct{ t *task }

func (s stageTask) records(recs []Record) error {
	for _, rec := range recs {
		if err := s.t.chain(rec); err != nil {
			return err
		}
	}
	return nil
}

func (s stageTask) barrier(id uint64) error { return s.t.barrier(id, nil) }
func (s stageTask) flush() error            { return s.t.flush() }
func (s stageTask) finish() error           { return s.t.finish() }

// barrier takes this task's part of checkpoint id: freeze state in O(1),
// pass the barrier on, pre-commit the output, acknowledge.
func (t *task) barrier(id uint64, src *format.SourcePosition) error {
	// The epoch's changes go to the log before the barrier passes on.
	if err := t.flushLog(); err != nil {
		return err
	}
	t.epoch = id + 1
	a := ack{id: id, task: t, source: src}
	if t.backend != nil {
		a.snap = t.backend.Snapshot(checkpoint.NextSnapshotKind(t.r.coord.parent.Load(), t.st.opID, t.rng, t.r.opts.MaxChain))
	}
	if err := t.broadcast(message{barrier: id}); err != nil {
		return err
	}
	if t.sink != nil {
		txns, err := t.sink.PreCommit(id)
		if err != nil {
			return err
		}
		a.pending = txns
		t.sink.Begin(id + 1)
	}
	select {
	case t.r.coord.acks <- a:
		return nil
	case <-t.r.ctx.Done():
		if a.snap != nil {
			a.snap.Release(false)
		}
		return t.r.ctx.Err()
	}
}
