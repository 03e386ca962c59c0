package checkpoint_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func leaseStores(t *testing.T) map[string]func(t *testing.T) checkpoint.Store {
	return map[string]func(t *testing.T) checkpoint.Store{
		"dir": func(t *testing.T) checkpoint.Store {
			s, err := checkpoint.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"s3": func(t *testing.T) checkpoint.Store {
			srv := s3Server.Get(t)
			return newS3(t, srv.NewBucket(t), "job", s3Opts(srv))
		},
	}
}

func TestLease_Acquire(t *testing.T) {
	for name, newStore := range leaseStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r, err := checkpoint.InitRepo(ctx, newStore(t), "job", 128)
			if err != nil {
				t.Fatal(err)
			}
			clk := &testClock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
			opts := checkpoint.LeaseOptions{TTL: 10 * time.Second, Now: clk.now}

			a, err := r.AcquireLease(ctx, "job", "writer-a", opts)
			if err != nil {
				t.Fatal(err)
			}
			if a.Token() != 1 {
				t.Fatalf("first token = %d", a.Token())
			}
			if _, err := r.AcquireLease(ctx, "job", "writer-b", opts); !errors.Is(err, checkpoint.ErrLeaseHeld) {
				t.Fatalf("second writer acquired a held lease: %v", err)
			}
			clk.add(5 * time.Second)
			if err := a.Renew(ctx); err != nil {
				t.Fatal(err)
			}
			clk.add(9 * time.Second) // past the first expiry, within the renewed one
			if _, err := r.AcquireLease(ctx, "job", "writer-b", opts); !errors.Is(err, checkpoint.ErrLeaseHeld) {
				t.Fatalf("renewed lease was taken: %v", err)
			}
			clk.add(2 * time.Second) // now expired
			b, err := r.AcquireLease(ctx, "job", "writer-b", opts)
			if err != nil {
				t.Fatalf("expired lease not taken over: %v", err)
			}
			if b.Token() != 2 {
				t.Fatalf("takeover token = %d, want 2", b.Token())
			}
			if err := a.Renew(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) {
				t.Fatalf("stale holder renewed: %v", err)
			}
			if err := a.Check(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) {
				t.Fatalf("stale holder passed Check: %v", err)
			}
			if err := a.Release(ctx); err != nil {
				t.Fatalf("releasing a lost lease: %v", err)
			}
			if err := b.Check(ctx); err != nil {
				t.Fatalf("a stale release disturbed the holder: %v", err)
			}
			if err := b.Release(ctx); err != nil {
				t.Fatal(err)
			}
			c, err := r.AcquireLease(ctx, "job", "writer-c", opts)
			if err != nil || c.Token() != 3 {
				t.Fatalf("after release: %v, token %d", err, c.Token())
			}
		})
	}
}

// A writer whose lease was taken over cannot commit.
func TestBuilder_CommitErrLeaseLost(t *testing.T) {
	ctx := context.Background()
	s := checkpoint.NewMem("lease")
	j := checkpointtest.NewJob(t, s)
	clk := &testClock{t: time.Now()}
	opts := checkpoint.LeaseOptions{TTL: time.Second, Now: clk.now}
	a, err := j.Repo.AcquireLease(ctx, "job", "a", opts)
	if err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Second)
	if _, err := j.Repo.AcquireLease(ctx, "job", "b", opts); err != nil {
		t.Fatal(err)
	}
	bld, err := j.Repo.NewCheckpoint(ctx, 1, 0, checkpoint.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bld.SetLease(a)
	if _, err := bld.Commit(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("commit under a lost lease: %v", err)
	}
	if ids, _ := j.Repo.IDs(ctx); len(ids) != 0 {
		t.Fatalf("checkpoints committed: %v", ids)
	}
}
