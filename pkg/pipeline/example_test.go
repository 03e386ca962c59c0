package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/pipeline"
	"github.com/arkstate/arkstate/pkg/pipeline/config"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// linesInput feeds fixed lines; its position is the number of lines read.
type linesInput struct {
	lines []string
	n     int
}

func (in *linesInput) Open(_ context.Context, pos json.RawMessage) error {
	if pos != nil {
		return json.Unmarshal(pos, &in.n)
	}
	return nil
}

func (in *linesInput) Next(context.Context) (pipeline.Record, json.RawMessage, error) {
	if in.n == len(in.lines) {
		return nil, nil, io.EOF
	}
	in.n++
	pos, _ := json.Marshal(in.n)
	return pipeline.Record{"user": in.lines[in.n-1]}, pos, nil
}

func (in *linesInput) Close() error { return nil }

// runningTotal keeps a per-user total in keyed state.
type runningTotal struct{ total *state.Value[int64] }

func (r *runningTotal) Open(st *state.Backend) (err error) {
	r.total, err = state.NewValue(st, state.Descriptor[int64]{Name: "total"})
	return err
}

func (r *runningTotal) Process(user string, _ pipeline.Record, emit func(pipeline.Record) error) error {
	n, _, err := r.total.Get(user)
	if err != nil {
		return err
	}
	if err := r.total.Put(user, n+1); err != nil {
		return err
	}
	return emit(pipeline.Record{"user": user, "visits": n + 1})
}

func ExampleExactlyOnceProcessor() {
	store := store.NewMem("example")
	repo, err := checkpoint.InitRepo(context.Background(), store, "visits", 128)
	if err != nil {
		fmt.Println(err)
		return
	}
	spec := pipeline.Spec{
		ID:    "visits",
		Input: &linesInput{lines: []string{"ann", "bob", "ann"}},
		Processors: []pipeline.ProcessorSpec{
			pipeline.ExactlyOnceProcessor("visits", pipeline.FieldKey("user"), func() pipeline.StatefulFunc { return &runningTotal{} }),
		},
		Output:      &pipeline.WriterOutput{W: os.Stdout},
		Parallelism: 1,
	}
	r, err := pipeline.NewRunner(spec, pipeline.Options{Repo: repo, Interval: time.Second})
	if err == nil {
		err = r.Run(context.Background())
	}
	fmt.Println("err:", err, "checkpoints:", r.Stats().CheckpointsCompleted.Load())
	// Output:
	// {"user":"ann","visits":1}
	// {"user":"bob","visits":1}
	// {"user":"ann","visits":2}
	// err: <nil> checkpoints: 1
}

// printOnCommit is a Transactional output that holds each epoch's records
// and prints them when the checkpoint commits them.
type printOnCommit struct {
	mu   sync.Mutex
	open map[string][]string
}

func (p *printOnCommit) Write(subtask int, epoch uint64, rec pipeline.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(rec)
	id := fmt.Sprintf("%d-%d", epoch, subtask)
	p.open[id] = append(p.open[id], string(b))
	return err
}

func (p *printOnCommit) Prepare(subtask int, epoch uint64) (string, json.RawMessage, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := fmt.Sprintf("%d-%d", epoch, subtask)
	if len(p.open[id]) == 0 {
		return "", nil, false, nil
	}
	data, err := json.Marshal(p.open[id])
	return id, data, true, err
}

func (p *printOnCommit) Commit(_ context.Context, id string, data json.RawMessage) error {
	var lines []string
	if err := json.Unmarshal(data, &lines); err != nil {
		return err
	}
	fmt.Printf("commit %s: %s\n", id, strings.Join(lines, " "))
	return nil
}

func (p *printOnCommit) AbortExcept(_ context.Context, keep []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.open {
		if !slices.Contains(keep, id) {
			delete(p.open, id)
		}
	}
	return nil
}

func ExampleTwoPhaseCommitOutput() {
	repo, err := checkpoint.InitRepo(context.Background(), store.NewMem("2pc"), "greetings", 128)
	if err != nil {
		fmt.Println(err)
		return
	}
	spec := pipeline.Spec{
		ID:          "greetings",
		Input:       &linesInput{lines: []string{"hello", "world"}},
		Output:      pipeline.TwoPhaseCommitOutput("printer", &printOnCommit{open: map[string][]string{}}),
		Parallelism: 1,
	}
	r, err := pipeline.NewRunner(spec, pipeline.Options{Repo: repo, Interval: time.Second})
	if err == nil {
		err = r.Run(context.Background())
	}
	fmt.Println("err:", err)
	// Output:
	// commit 1-0: {"user":"hello"} {"user":"world"}
	// err: <nil>
}

func ExampleNewManager() {
	dir, err := os.MkdirTemp("", "arkstate-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	// EnhancedStateConfig of ArkFlow's state-management document: a local checkpoint store.
	cfg := config.DefaultState()
	cfg.Enabled = true
	cfg.BackendType = config.StateBackendLocal
	cfg.Path = filepath.Join(dir, "state")
	cfg.CheckpointIntervalMS = 1000
	mgr, err := pipeline.NewManager(ctx, cfg, "visits", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mgr.Close()
	for run := 1; run <= 2; run++ {
		spec := pipeline.Spec{
			ID:    "visits",
			Input: &linesInput{lines: []string{"ann", "bob", "ann"}},
			Processors: []pipeline.ProcessorSpec{
				pipeline.ExactlyOnceProcessor("visits", pipeline.FieldKey("user"), func() pipeline.StatefulFunc { return &runningTotal{} }),
			},
			Output: &pipeline.WriterOutput{W: os.Stdout},
		}
		r, err := pipeline.NewRunner(spec, mgr.Options("example"))
		if err == nil {
			err = r.Run(ctx)
		}
		// The second run restores the first one's final checkpoint: its input
		// position is at the end, so it emits nothing.
		fmt.Printf("run %d: restored from checkpoint %d, err %v\n", run, r.Stats().RestoredFrom.Load(), err)
	}
	fmt.Println("health:", mgr.HealthStatus(ctx))
	// Output:
	// {"user":"ann","visits":1}
	// {"user":"bob","visits":1}
	// {"user":"ann","visits":2}
	// run 1: restored from checkpoint 0, err <nil>
	// run 2: restored from checkpoint 1, err <nil>
	// health: <nil>
}
