package checkpoint

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/store"
)

// The sweep on its own: what it does with each kind of marked orphan.
func TestGCSweep(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names := []string{"segments/aa/old.seg", "segments/aa/young.seg", "segments/aa/undated.seg", "segments/weird"}
	run := func(t *testing.T, opts GCOptions, unreadable bool) (*GCReport, store.Store, error) {
		s := store.NewMem("sweep")
		for _, n := range names {
			if err := s.Put(ctx, n, strings.NewReader("x"), 1); err != nil {
				t.Fatal(err)
			}
		}
		rep := &GCReport{Orphans: []Orphan{
			{Name: names[0], Kind: OrphanSegment, Bytes: 1, ModTime: now.Add(-2 * time.Hour)},
			{Name: names[1], Kind: OrphanSegment, Bytes: 1, ModTime: now.Add(-time.Minute)},
			{Name: names[2], Kind: OrphanSegment, Bytes: 1},
			{Name: names[3], Kind: OrphanUnknown, Bytes: 1, ModTime: now.Add(-2 * time.Hour), Action: ActionUnknown},
		}}
		if unreadable {
			rep.Unreadable = []UnreadableManifest{{Checkpoint: 3, File: "checkpoints/chk-00000000000000000003/MANIFEST", Error: "bad"}}
		}
		g := &gcRun{ctx: ctx, repo: &Repo{store: s}, rep: rep}
		return rep, s, g.sweep(opts, time.Hour, now)
	}
	actions := func(rep *GCReport) []string {
		var out []string
		for _, o := range rep.Orphans {
			out = append(out, o.Action)
		}
		return out
	}
	left := func(s store.Store) int {
		n := 0
		for _, err := range s.List(ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	for _, tc := range []struct {
		name       string
		opts       GCOptions
		unreadable bool
		want       []string
		left       int
		err        error
	}{
		{"OK", GCOptions{}, false, []string{ActionDeleted, ActionGrace, ActionGrace, ActionUnknown}, 3, nil},
		{"OKDryRun", GCOptions{DryRun: true}, false, []string{ActionWouldDelete, ActionGrace, ActionGrace, ActionUnknown}, 4, nil},
		{"ErrUnreadableManifest", GCOptions{}, true, []string{ActionBlocked, ActionBlocked, ActionBlocked, ActionUnknown}, 4, ErrUnreadableManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, s, err := run(t, tc.opts, tc.unreadable)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("sweep: %v, want %v", err, tc.err)
			}
			if got := actions(rep); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("actions %q, want %q", got, tc.want)
			}
			if n := left(s); n != tc.left {
				t.Fatalf("%d objects left, want %d", n, tc.left)
			}
		})
	}
}
