// Package checkpointtest writes real checkpoints of a small synthetic job for
// tests and golden fixtures: two operators at parallelism 2, value, map and
// list state, a full checkpoint followed by incremental ones.
package checkpointtest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// JobID and KeyGroups describe the synthetic job.
const (
	JobID       = "wordcount"
	KeyGroups   = 128
	Parallelism = 2
)

// Job is the synthetic job: per subtask one backend per operator.
type Job struct {
	Repo     *checkpoint.Repo
	counts   []*state.Value[uint64]       // operator "count", state "count"
	windows  []*state.Map[string, uint64] // operator "count", state "windows"
	seen     []*state.List[string]        // operator "dedupe", state "seen"
	backends map[string][]*state.Backend
	ranges   []state.KeyGroupRange
	last     uint64
	round    int
}

// NewJob initialises the store s for the synthetic job.
func NewJob(tb testing.TB, s store.Store) *Job {
	tb.Helper()
	ctx := context.Background()
	r, err := checkpoint.InitRepo(ctx, s, JobID, KeyGroups)
	if err != nil {
		tb.Fatal(err)
	}
	j := &Job{Repo: r, backends: map[string][]*state.Backend{}}
	for i := range Parallelism {
		rng, err := state.RangeForSubtask(KeyGroups, Parallelism, i)
		if err != nil {
			tb.Fatal(err)
		}
		j.ranges = append(j.ranges, rng)
		for _, op := range []string{"count", "dedupe"} {
			b, err := state.NewBackend(state.Options{KeyGroups: KeyGroups, Range: &rng})
			if err != nil {
				tb.Fatal(err)
			}
			j.backends[op] = append(j.backends[op], b)
		}
		c, err := state.NewValue(j.backends["count"][i], state.Descriptor[uint64]{Name: "count"})
		if err != nil {
			tb.Fatal(err)
		}
		w, err := state.NewMap[string](j.backends["count"][i], state.Descriptor[uint64]{Name: "windows"}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		l, err := state.NewList(j.backends["dedupe"][i], state.Descriptor[string]{Name: "seen"})
		if err != nil {
			tb.Fatal(err)
		}
		j.counts, j.windows, j.seen = append(j.counts, c), append(j.windows, w), append(j.seen, l)
	}
	return j
}

// Word returns the i-th word of the synthetic vocabulary.
func Word(i int) string { return fmt.Sprintf("word-%05d", i) }

func (j *Job) subtask(key string) int {
	return state.SubtaskFor(state.KeyGroupFor(key, KeyGroups), KeyGroups, Parallelism)
}

// Apply counts words [from, to) once more and records them in the other
// states, as a stream of input would.
func (j *Job) Apply(tb testing.TB, from, to int) {
	tb.Helper()
	j.round++
	for i := from; i < to; i++ {
		w := Word(i)
		s := j.subtask(w)
		n, _, err := j.counts[s].Get(w)
		if err == nil {
			err = j.counts[s].Put(w, n+1)
		}
		if err == nil {
			err = j.windows[s].Put(w, fmt.Sprintf("w%03d", j.round), uint64(i))
		}
		if err == nil && i%3 == 0 {
			err = j.seen[s].Add(w, fmt.Sprintf("r%d", j.round))
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// Delete removes words [from, to) from the count state.
func (j *Job) Delete(tb testing.TB, from, to int) {
	tb.Helper()
	for i := from; i < to; i++ {
		w := Word(i)
		if err := j.counts[j.subtask(w)].Delete(w); err != nil {
			tb.Fatal(err)
		}
	}
}

// Checkpoint writes the next checkpoint: incremental where the previous one
// allows, with a source position, and returns its manifest.
func (j *Job) Checkpoint(tb testing.TB) *format.Manifest {
	tb.Helper()
	ctx := context.Background()
	id := j.last + 1
	bld, err := j.Repo.NewCheckpoint(ctx, id, j.last, checkpoint.BuilderOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var snaps []*state.Snapshot
	for _, op := range []string{"count", "dedupe"} {
		for i, b := range j.backends[op] {
			snap := b.Snapshot(bld.SnapshotKind(op, j.ranges[i], checkpoint.DefaultMaxChain))
			snaps = append(snaps, snap)
			if err := bld.AddSnapshot(ctx, op, j.ranges[i], snap); err != nil {
				tb.Fatal(err)
			}
		}
	}
	pos, _ := json.Marshal(map[string]int{"offset": j.round * 1000})
	bld.SetSources([]format.SourcePosition{{Source: "input", Position: pos}})
	m, err := bld.Commit(ctx)
	for _, s := range snaps {
		s.Release(err == nil)
	}
	if err != nil {
		tb.Fatal(err)
	}
	j.last = id
	return m
}

// Count returns word's current count in the live job.
func (j *Job) Count(tb testing.TB, word string) (uint64, bool) {
	tb.Helper()
	n, ok, err := j.counts[j.subtask(word)].Get(word)
	if err != nil {
		tb.Fatal(err)
	}
	return n, ok
}

// Standard writes the standard fixture history to s: 3 checkpoints over 600
// words (full, incremental with updates, incremental with updates and
// deletes) and returns the job.
func Standard(tb testing.TB, s store.Store) *Job {
	j := NewJob(tb, s)
	j.Apply(tb, 0, 600)
	j.Checkpoint(tb)
	j.Apply(tb, 0, 60)
	j.Checkpoint(tb)
	j.Apply(tb, 550, 650)
	j.Delete(tb, 100, 110)
	j.Checkpoint(tb)
	return j
}

// StandardDir writes the standard fixture history into a directory store
// in a new temporary directory and returns the directory and the job. The
// store is closed when tb ends.
func StandardDir(tb testing.TB) (string, *Job) {
	tb.Helper()
	dir := tb.TempDir()
	return dir, Standard(tb, storetest.NewDir(tb, dir))
}

// Snapshot adds full snapshots of op's subtasks to bld, for tests that
// assemble checkpoints by hand, and returns the function that releases them
// once the commit's outcome is known.
func (j *Job) Snapshot(tb testing.TB, bld *checkpoint.Builder, op string) (release func(persisted bool)) {
	tb.Helper()
	var snaps []*state.Snapshot
	for i, b := range j.backends[op] {
		snap := b.Snapshot(state.Full)
		snaps = append(snaps, snap)
		if err := bld.AddSnapshot(context.Background(), op, j.ranges[i], snap); err != nil {
			tb.Fatal(err)
		}
	}
	return func(persisted bool) {
		for _, s := range snaps {
			s.Release(persisted)
		}
	}
}
