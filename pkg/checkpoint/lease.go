package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// Errors of the single-writer lease.
var (
	// ErrLeaseHeld means another writer holds an unexpired lease.
	ErrLeaseHeld = errors.New("lease held by another writer")
	// ErrLeaseLost means the lease was taken over (it expired and another
	// writer acquired it): the holder must stop committing.
	ErrLeaseLost = errors.New("lease lost")
)

// maxLeaseSize bounds a lease object read.
const maxLeaseSize = 64 << 10

// LeaseRecord is the JSON content of leases/<name>.
type LeaseRecord struct {
	// Owner names the holder (host, process, run id) for operators.
	Owner string `json:"owner"`
	// Token is the fencing token: it grows by one with every acquisition, so
	// a writer can tell it was superseded.
	Token uint64 `json:"token"`
	// ExpiresAt is when the lease lapses unless renewed.
	ExpiresAt time.Time `json:"expires_at"`
	// Released is set by a holder that gave the lease up: it commits
	// nothing more, so the next holder need not fence it out.
	Released bool `json:"released,omitempty"`
}

// Lease is a held single-writer lease. All changes to the lease object are
// conditional writes (If-None-Match to create, If-Match on the ETag to renew,
// take over or release), so of two writers racing for it exactly one wins,
// on a directory store and on S3 alike.
type Lease struct {
	repo  *Repo
	name  string
	ttl   time.Duration
	clock func() time.Time
	// superseded is the previous holder when it may still be alive: its
	// lease expired (or was held by a frozen process) without being
	// released. See Fence.
	superseded *LeaseRecord

	mu   sync.Mutex // guards rec and etag: a renewer runs beside commits
	rec  LeaseRecord
	etag string
}

// LeaseOptions configure AcquireLease.
type LeaseOptions struct {
	// TTL is how long the lease lasts without renewal (default 30s).
	TTL time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Abandoned, when set, may declare an unexpired lease of another owner
	// dead, so it is taken over at once: a restarted process that can tell
	// its predecessor on the same host has exited need not wait for the TTL.
	Abandoned func(LeaseRecord) bool
}

// DefaultLeaseTTL is a lease's time to live when LeaseOptions.TTL is zero.
const DefaultLeaseTTL = 30 * time.Second

// AcquireLease takes the lease called name for owner. It fails with
// ErrLeaseHeld while another owner's lease is unexpired; an expired lease,
// or one already held by the same owner, is taken over with the next token.
func (r *Repo) AcquireLease(ctx context.Context, name, owner string, opts LeaseOptions) (*Lease, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultLeaseTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Lease{repo: r, name: format.LeasesPrefix + name, ttl: opts.TTL, clock: opts.Now}
	if err := store.ValidateName(l.name); err != nil {
		return nil, err
	}
	// A lost race means someone else changed the lease between our read
	// and write: read again and decide again, a few times.
	for range 5 {
		cur, etag, err := l.read(ctx)
		cond := store.Condition{IfNoneMatch: true}
		next := LeaseRecord{Owner: owner, Token: 1, ExpiresAt: l.clock().Add(l.ttl).UTC()}
		switch {
		case errors.Is(err, store.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			abandoned := opts.Abandoned != nil && opts.Abandoned(cur)
			if cur.Owner != owner && l.clock().Before(cur.ExpiresAt) && !abandoned {
				return nil, fmt.Errorf("%w: %s is held by %q (token %d) until %s", ErrLeaseHeld, l.name, cur.Owner, cur.Token, cur.ExpiresAt.Format(time.RFC3339))
			}
			cond = store.Condition{IfMatch: etag}
			next.Token = cur.Token + 1
			if !cur.Released && !abandoned {
				prev := cur
				l.superseded = &prev
			} else {
				l.superseded = nil
			}
		}
		err = l.write(ctx, next, cond)
		if errors.Is(err, store.ErrPreconditionFailed) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("%w: %s is contended", ErrLeaseHeld, l.name)
}

func (l *Lease) read(ctx context.Context) (LeaseRecord, string, error) {
	rc, info, err := l.repo.store.Get(ctx, l.name)
	if err != nil {
		return LeaseRecord{}, "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxLeaseSize))
	if err != nil {
		return LeaseRecord{}, "", fmt.Errorf("checkpoint: read lease %s: %w", l.name, err)
	}
	var rec LeaseRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return LeaseRecord{}, "", fmt.Errorf("checkpoint: lease %s is not valid JSON: %w", l.name, err)
	}
	return rec, info.ETag, nil
}

func (l *Lease) write(ctx context.Context, rec LeaseRecord, cond store.Condition) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	info, err := l.repo.store.PutIf(ctx, l.name, bytes.NewReader(data), int64(len(data)), cond)
	if errors.Is(err, store.ErrPreconditionFailed) && cond.IfMatch != "" {
		// The lease changed since this holder last saw it. If it is still
		// this holding (only a takeover changes the token), the change was
		// this holder's own: a retried request whose first attempt
		// succeeded unseen, a renewal that failed after the store applied
		// it, or the background renewal racing this write. Write over it.
		cur, etag, rerr := l.read(ctx)
		if rerr == nil && l.isOurs(cur, rec) {
			info, err = l.repo.store.PutIf(ctx, l.name, bytes.NewReader(data), int64(len(data)), store.Condition{IfMatch: etag})
		}
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.rec, l.etag = rec, info.ETag
	l.mu.Unlock()
	return nil
}

// isOurs reports whether the stored record cur belongs to the same holding
// as rec: same owner and fencing token, and not released.
func (l *Lease) isOurs(cur, rec LeaseRecord) bool {
	return cur.Owner == rec.Owner && cur.Token == rec.Token && !cur.Released
}

// state returns the holding's record and ETag.
func (l *Lease) state() (LeaseRecord, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec, l.etag
}

// Superseded returns the previous holder when this acquisition took the
// lease over from a process that may still be running (its lease expired
// unreleased, and it was not found dead): that process may still try to
// commit, and Fence must shut it out before this holder restores.
func (l *Lease) Superseded() (LeaseRecord, bool) {
	if l.superseded == nil {
		return LeaseRecord{}, false
	}
	return *l.superseded, true
}

// Holder reads who holds the lease now, for errors that name the writer
// that took over.
func (l *Lease) Holder(ctx context.Context) string {
	cur, _, err := l.read(ctx)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return fmt.Sprintf("%q (token %d)", cur.Owner, cur.Token)
}

// Token returns the fencing token of this holding.
func (l *Lease) Token() uint64 { rec, _ := l.state(); return rec.Token }

// ExpiresAt returns when the lease lapses unless renewed.
func (l *Lease) ExpiresAt() time.Time { rec, _ := l.state(); return rec.ExpiresAt }

// TTL returns how long the lease lasts without renewal.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Renew extends the lease by its TTL. It fails with ErrLeaseLost when
// another writer has taken the lease over.
func (l *Lease) Renew(ctx context.Context) error {
	cur, etag := l.state()
	next := cur
	next.ExpiresAt = l.clock().Add(l.ttl).UTC()
	if err := l.write(ctx, next, store.Condition{IfMatch: etag}); err != nil {
		if errors.Is(err, store.ErrPreconditionFailed) {
			return fmt.Errorf("%w: %s (token %d) was taken over by %s", ErrLeaseLost, l.name, cur.Token, l.Holder(ctx))
		}
		return err
	}
	return nil
}

// Check confirms the lease is still this holder's and unexpired; a writer
// calls it right before committing a checkpoint.
func (l *Lease) Check(ctx context.Context) error {
	rec, etag := l.state()
	if !l.clock().Before(rec.ExpiresAt) {
		return fmt.Errorf("%w: %s (token %d) expired at %s", ErrLeaseLost, l.name, rec.Token, rec.ExpiresAt.Format(time.RFC3339))
	}
	info, err := l.repo.store.Stat(ctx, l.name)
	switch {
	case errors.Is(err, store.ErrNotExist):
		return fmt.Errorf("%w: %s (token %d) was taken over by %s", ErrLeaseLost, l.name, rec.Token, l.Holder(ctx))
	case err != nil:
		return err
	case info.ETag == etag:
		return nil
	}
	// The ETag moved: by a takeover, or by this holder's own renewal (the
	// background renewer racing this check, or a renewal that failed after
	// the store applied it). Only a takeover changes the token.
	cur, curETag, err := l.read(ctx)
	if err != nil {
		return err
	}
	if !l.isOurs(cur, rec) {
		return fmt.Errorf("%w: %s (token %d) was taken over by %q (token %d)", ErrLeaseLost, l.name, rec.Token, cur.Owner, cur.Token)
	}
	if !l.clock().Before(cur.ExpiresAt) {
		return fmt.Errorf("%w: %s (token %d) expired at %s", ErrLeaseLost, l.name, cur.Token, cur.ExpiresAt.Format(time.RFC3339))
	}
	l.mu.Lock()
	if l.etag == etag {
		l.rec, l.etag = cur, curETag
	}
	l.mu.Unlock()
	return nil
}

// Release gives the lease up by marking it expired, so the next writer need
// not wait for the TTL. Releasing a lease already taken over changes nothing.
func (l *Lease) Release(ctx context.Context) error {
	cur, etag := l.state()
	next := cur
	next.ExpiresAt = l.clock().UTC()
	next.Released = true
	err := l.write(ctx, next, store.Condition{IfMatch: etag})
	if errors.Is(err, store.ErrPreconditionFailed) {
		return nil
	}
	return err
}

// Fence shuts every earlier writer out of the store before this holder
// restores: it commits checkpoint latest+1 as a copy of the latest
// checkpoint (the same state, source positions and pending transactions),
// under the lease. Checkpoint ids are committed create-only, so a writer
// that lost the lease while frozen, and thaws with latest+1 as its next
// checkpoint, finds it taken and stops; nothing it commits afterwards can
// become a checkpoint. If that writer got latest+1 in first, Fence copies
// its checkpoint instead, so the new holder resumes from everything
// committed. It returns the fence checkpoint.
func (r *Repo) Fence(ctx context.Context, l *Lease) (*format.Manifest, error) {
	for range 10 {
		ids, err := r.IDs(ctx)
		if err != nil {
			return nil, err
		}
		var latest *format.Manifest
		var latestID uint64
		if len(ids) > 0 {
			latestID = ids[len(ids)-1]
			if latest, err = r.Manifest(ctx, latestID); err != nil {
				return nil, fmt.Errorf("checkpoint: fence: %w", err)
			}
		}
		b, err := r.NewCheckpoint(ctx, latestID+1, latestID, BuilderOptions{})
		if err != nil {
			return nil, err
		}
		b.SetLease(l)
		if latest != nil {
			for _, o := range latest.Operators {
				for _, rs := range o.Ranges {
					if err := b.AddRange(o.ID, o.States, rs); err != nil {
						return nil, err
					}
				}
			}
			b.SetSources(latest.Sources)
			b.SetTxlog(latest.Txlog)
			for _, p := range latest.Pending {
				b.AddPending(p)
			}
		}
		m, err := b.Commit(ctx)
		if errors.Is(err, ErrCheckpointExists) {
			continue // the old writer committed latest+1 just now: copy it
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint: fence: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("checkpoint: fence: %w: another writer keeps committing checkpoints", ErrLeaseLost)
}

// Maintenance is the hold that gc and prune take on a store before they
// delete anything: every writer lease the store has, and the job's. While
// it is held no pipeline can start writing, and while a pipeline writes it
// cannot be taken, so a maintenance command never deletes a segment that a
// checkpoint being written is about to name (a running job collects its own
// garbage between checkpoints). It is checked again before every delete, so
// a command frozen past the lease's TTL deletes nothing once it thaws.
type Maintenance struct {
	leases []*Lease
}

// AcquireMaintenance takes the hold for owner. It fails with ErrLeaseHeld,
// naming the holder, while a writer holds any of the leases.
func (r *Repo) AcquireMaintenance(ctx context.Context, owner string, opts LeaseOptions) (*Maintenance, error) {
	names := map[string]bool{r.marker.JobID: true}
	for info, err := range r.store.List(ctx, format.LeasesPrefix) {
		if err != nil {
			return nil, err
		}
		names[strings.TrimPrefix(info.Name, format.LeasesPrefix)] = true
	}
	m := &Maintenance{}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		l, err := r.AcquireLease(ctx, name, owner, opts)
		if err != nil {
			m.Release(context.WithoutCancel(ctx))
			return nil, err
		}
		m.leases = append(m.leases, l)
		if _, ok := l.Superseded(); ok {
			// An expired writer that may thaw must not commit a
			// checkpoint naming a segment about to be deleted.
			if _, err := r.Fence(ctx, l); err != nil {
				m.Release(context.WithoutCancel(ctx))
				return nil, err
			}
		}
	}
	return m, nil
}

// Check confirms that every lease of the hold is still held, renewing
// those past half their TTL, so a long gc keeps its hold.
func (m *Maintenance) Check(ctx context.Context) error {
	if m == nil {
		return nil
	}
	for _, l := range m.leases {
		var err error
		if l.ExpiresAt().Sub(l.clock()) < l.ttl/2 {
			err = l.Renew(ctx)
		} else {
			err = l.Check(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Release gives the hold up.
func (m *Maintenance) Release(ctx context.Context) error {
	if m == nil {
		return nil
	}
	var errs []error
	for _, l := range m.leases {
		errs = append(errs, l.Release(ctx))
	}
	return errors.Join(errs...)
}
