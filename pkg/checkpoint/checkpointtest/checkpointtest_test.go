package checkpointtest

import (
	"context"
	"testing"

	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// The fixture history restores, checkpoint by checkpoint, to exactly the
// state the job had when it was taken, at another parallelism too.
func TestStandard_Restore(t *testing.T) {
	ctx := context.Background()
	s, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := Standard(t, s)
	m, err := j.Repo.Manifest(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != "incremental" || m.Parent != 2 {
		t.Fatalf("checkpoint 3 is %s with parent %d", m.Kind, m.Parent)
	}
	// Restore the whole job into one backend (parallelism 1).
	b, err := state.NewBackend(state.Options{KeyGroups: KeyGroups})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Repo.RestoreBackend(ctx, m, "count", b); err != nil {
		t.Fatal(err)
	}
	v, err := state.NewValue(b, state.Descriptor[uint64]{Name: "count"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 700 {
		want, wantOK := j.Count(t, Word(i))
		got, ok, err := v.Get(Word(i))
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("%s: restored %d,%v,%v; live %d,%v", Word(i), got, ok, err, want, wantOK)
		}
	}
}
