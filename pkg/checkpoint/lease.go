package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors of the single-writer lease.
var (
	// ErrLeaseHeld means another writer holds an unexpired lease.
	ErrLeaseHeld = errors.New("lease held by another writer")
	// ErrLeaseLost means the lease was taken over (it expired and another
	// writer acquired it): the holder must stop committing.
	ErrLeaseLost = errors.New("lease lost")
)

// leasePrefix is where leases live in the store layout.
const leasePrefix = "leases/"

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
}

// Lease is a held single-writer lease. All changes to the lease object are
// conditional writes (If-None-Match to create, If-Match on the ETag to renew,
// take over or release), so of two writers racing for it exactly one wins,
// on a directory store and on S3 alike.
type Lease struct {
	repo  *Repo
	name  string
	ttl   time.Duration
	rec   LeaseRecord
	etag  string
	clock func() time.Time
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
	l := &Lease{repo: r, name: leasePrefix + name, ttl: opts.TTL, clock: opts.Now}
	if err := ValidateName(l.name); err != nil {
		return nil, err
	}
	// A lost race means someone else changed the lease between our read
	// and write: read again and decide again, a few times.
	for range 5 {
		cur, etag, err := l.read(ctx)
		cond := Condition{IfNoneMatch: true}
		next := LeaseRecord{Owner: owner, Token: 1, ExpiresAt: l.clock().Add(l.ttl).UTC()}
		switch {
		case errors.Is(err, ErrNotExist):
		case err != nil:
			return nil, err
		default:
			abandoned := opts.Abandoned != nil && opts.Abandoned(cur)
			if cur.Owner != owner && l.clock().Before(cur.ExpiresAt) && !abandoned {
				return nil, fmt.Errorf("%w: %s is held by %q (token %d) until %s", ErrLeaseHeld, l.name, cur.Owner, cur.Token, cur.ExpiresAt.Format(time.RFC3339))
			}
			cond = Condition{IfMatch: etag}
			next.Token = cur.Token + 1
		}
		err = l.write(ctx, next, cond)
		if errors.Is(err, ErrPreconditionFailed) {
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

func (l *Lease) write(ctx context.Context, rec LeaseRecord, cond Condition) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	info, err := l.repo.store.PutIf(ctx, l.name, bytes.NewReader(data), int64(len(data)), cond)
	if err != nil {
		return err
	}
	l.rec, l.etag = rec, info.ETag
	return nil
}

// Token returns the fencing token of this holding.
func (l *Lease) Token() uint64 { return l.rec.Token }

// ExpiresAt returns when the lease lapses unless renewed.
func (l *Lease) ExpiresAt() time.Time { return l.rec.ExpiresAt }

// Renew extends the lease by its TTL. It fails with ErrLeaseLost when
// another writer has taken the lease over.
func (l *Lease) Renew(ctx context.Context) error {
	next := l.rec
	next.ExpiresAt = l.clock().Add(l.ttl).UTC()
	if err := l.write(ctx, next, Condition{IfMatch: l.etag}); err != nil {
		if errors.Is(err, ErrPreconditionFailed) {
			return fmt.Errorf("%w: %s (token %d) was taken over", ErrLeaseLost, l.name, l.rec.Token)
		}
		return err
	}
	return nil
}

// Check confirms the lease is still this holder's and unexpired; a writer
// calls it right before committing a checkpoint.
func (l *Lease) Check(ctx context.Context) error {
	if !l.clock().Before(l.rec.ExpiresAt) {
		return fmt.Errorf("%w: %s (token %d) expired at %s", ErrLeaseLost, l.name, l.rec.Token, l.rec.ExpiresAt.Format(time.RFC3339))
	}
	info, err := l.repo.store.Stat(ctx, l.name)
	if errors.Is(err, ErrNotExist) || (err == nil && info.ETag != l.etag) {
		return fmt.Errorf("%w: %s (token %d) was taken over", ErrLeaseLost, l.name, l.rec.Token)
	}
	return err
}

// Release gives the lease up by marking it expired, so the next writer need
// not wait for the TTL. Releasing a lease already taken over changes nothing.
func (l *Lease) Release(ctx context.Context) error {
	next := l.rec
	next.ExpiresAt = l.clock().UTC()
	err := l.write(ctx, next, Condition{IfMatch: l.etag})
	if errors.Is(err, ErrPreconditionFailed) {
		return nil
	}
	return err
}
