package checkpoint_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
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

func leaseStores(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"dir": func(t *testing.T) store.Store {
			s, err := store.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"s3": func(t *testing.T) store.Store {
			srv := s3Server.Get(t)
			return storetest.NewS3(t, srv.NewBucket(t), "job", storetest.S3Options(srv))
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
	s := store.NewMem("lease")
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

// TestLease_Fence: a writer frozen past its lease thaws holding a builder
// for its next checkpoint. The new holder fenced it out first, so that
// commit fails whether or not the thawed writer re-checks its lease, and
// the fence checkpoint holds exactly the latest state.
func TestLease_Fence(t *testing.T) {
	for name, newStore := range leaseStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			j := checkpointtest.Standard(t, newStore(t)) // checkpoints 1..3
			clk := &testClock{t: time.Now()}
			opts := checkpoint.LeaseOptions{TTL: time.Second, Now: clk.now}
			zombie, err := j.Repo.AcquireLease(ctx, "job", "zombie", opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := zombie.Superseded(); ok {
				t.Fatal("the first holder superseded nobody")
			}
			// The zombie prepares checkpoint 4, then freezes past its TTL.
			frozen, err := j.Repo.NewCheckpoint(ctx, 4, 3, checkpoint.BuilderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			clk.add(2 * time.Second)
			standby, err := j.Repo.AcquireLease(ctx, "job", "standby", opts)
			if err != nil {
				t.Fatal(err)
			}
			prev, ok := standby.Superseded()
			if !ok || prev.Owner != "zombie" {
				t.Fatalf("Superseded = %+v, %t; want the zombie", prev, ok)
			}
			m, err := j.Repo.Fence(ctx, standby)
			if err != nil {
				t.Fatal(err)
			}
			m3, _ := j.Repo.Manifest(ctx, 3)
			if m.CheckpointID != 4 || m.Parent != 3 || len(m.Operators) != len(m3.Operators) {
				t.Fatalf("fence checkpoint %d (parent %d, %d operators); want 4 over 3 with its state", m.CheckpointID, m.Parent, len(m.Operators))
			}
			if got, want := restoreStandard(t, j.Repo, m), restoreStandard(t, j.Repo, m3); got != want {
				t.Fatal("the fence checkpoint's state differs from the latest checkpoint's")
			}
			// The zombie thaws and commits without a lease check (the race
			// a check before the write cannot close): the id is taken.
			if _, err := frozen.Commit(ctx); !errors.Is(err, checkpoint.ErrCheckpointExists) {
				t.Fatalf("the zombie's commit: %v; want ErrCheckpointExists", err)
			}
			if err := zombie.Renew(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) || !strings.Contains(err.Error(), `"standby"`) {
				t.Fatalf("the zombie's renewal: %v; want ErrLeaseLost naming the standby", err)
			}
			rep, err := checkpoint.Verify(ctx, j.Repo, checkpoint.VerifyOptions{Deep: true})
			if err != nil || !rep.OK() {
				t.Fatalf("verify after the fence: %v, %+v", err, rep)
			}

			// A released lease is not fenced.
			if err := standby.Release(ctx); err != nil {
				t.Fatal(err)
			}
			next, err := j.Repo.AcquireLease(ctx, "job", "next", opts)
			if err != nil {
				t.Fatal(err)
			}
			if prev, ok := next.Superseded(); ok {
				t.Fatalf("a released lease counts as superseded: %+v", prev)
			}
		})
	}
}

// TestLease_FenceCopiesLateCheckpoint: the old writer committed the id the
// new holder was about to take; the fence then copies that checkpoint, so
// the new holder resumes from everything committed.
func TestLease_FenceCopiesLateCheckpoint(t *testing.T) {
	ctx := context.Background()
	j := checkpointtest.Standard(t, store.NewMem("fence"))
	clk := &testClock{t: time.Now()}
	opts := checkpoint.LeaseOptions{TTL: time.Second, Now: clk.now}
	if _, err := j.Repo.AcquireLease(ctx, "job", "old", opts); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Second)
	standby, err := j.Repo.AcquireLease(ctx, "job", "new", opts)
	if err != nil {
		t.Fatal(err)
	}
	// The old writer passed its lease check just before the takeover and
	// commits checkpoint 4 now.
	j.Apply(t, 700, 720)
	late := j.Checkpoint(t)
	m, err := j.Repo.Fence(ctx, standby)
	if err != nil {
		t.Fatal(err)
	}
	if late.CheckpointID != 4 || m.CheckpointID != 5 || m.Parent != 4 {
		t.Fatalf("late checkpoint %d, fence %d over %d; want 4, then 5 over 4", late.CheckpointID, m.CheckpointID, m.Parent)
	}
	if got, want := restoreStandard(t, j.Repo, m), restoreStandard(t, j.Repo, late); got != want {
		t.Fatal("the fence checkpoint lost what the late checkpoint committed")
	}
}

// putIfLostReply makes the next conditional write succeed and then report
// a failed precondition, as a retried request whose first attempt
// succeeded unseen does.
type putIfLostReply struct {
	store.Store
	armed bool
}

func (s *putIfLostReply) PutIf(ctx context.Context, name string, r io.Reader, size int64, c store.Condition) (store.ObjectInfo, error) {
	info, err := s.Store.PutIf(ctx, name, r, size, c)
	if err == nil && s.armed {
		s.armed = false
		return store.ObjectInfo{}, &store.Error{Op: "put", Name: name, Kind: store.ErrPreconditionFailed, Err: errors.New("injected: 412 on the retry of a write that succeeded")}
	}
	return info, err
}

func TestLease_RenewAfterLostReply(t *testing.T) {
	ctx := context.Background()
	s := &putIfLostReply{Store: store.NewMem("lease")}
	r, err := checkpoint.InitRepo(ctx, s, "job", 128)
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.AcquireLease(ctx, "job", "a", checkpoint.LeaseOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.armed = true
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("a renewal whose reply was lost: %v; want success", err)
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check after it: %v", err)
	}
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("the next renewal: %v", err)
	}
}

// rewriteLease changes the stored lease object behind the holder's back, as
// its own background renewal or a takeover would.
func rewriteLease(t *testing.T, s store.Store, change func(*checkpoint.LeaseRecord)) {
	t.Helper()
	var rec checkpoint.LeaseRecord
	if err := json.Unmarshal(checkpointtest.ReadObject(t, s, "leases/job"), &rec); err != nil {
		t.Fatal(err)
	}
	change(&rec)
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "leases/job", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// A change of the lease object by the holder itself (a renewal racing the
// commit's check, or one the store applied although the call failed) is
// not a takeover; a new token is.
func TestLease_OwnChangeIsNotTakeover(t *testing.T) {
	for name, newStore := range leaseStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			r, err := checkpoint.InitRepo(ctx, s, "job", 128)
			if err != nil {
				t.Fatal(err)
			}
			l, err := r.AcquireLease(ctx, "job", "a", checkpoint.LeaseOptions{TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			rewriteLease(t, s, func(rec *checkpoint.LeaseRecord) { rec.ExpiresAt = rec.ExpiresAt.Add(time.Second) })
			if err := l.Check(ctx); err != nil {
				t.Fatalf("Check after the holder's own renewal: %v", err)
			}
			rewriteLease(t, s, func(rec *checkpoint.LeaseRecord) { rec.ExpiresAt = rec.ExpiresAt.Add(time.Second) })
			if err := l.Renew(ctx); err != nil {
				t.Fatalf("Renew after the holder's own renewal: %v", err)
			}
			if err := l.Check(ctx); err != nil {
				t.Fatalf("Check after Renew: %v", err)
			}
			rewriteLease(t, s, func(rec *checkpoint.LeaseRecord) { rec.Owner, rec.Token = "b", rec.Token+1 })
			if err := l.Check(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) || !strings.Contains(err.Error(), `"b"`) {
				t.Fatalf("Check after a takeover: %v; want ErrLeaseLost naming b", err)
			}
			if err := l.Renew(ctx); !errors.Is(err, checkpoint.ErrLeaseLost) {
				t.Fatalf("Renew after a takeover: %v; want ErrLeaseLost", err)
			}
		})
	}
}
