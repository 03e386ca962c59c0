package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
)

// leaseOwner names this process in a store's writer lease:
// host/pid/start, where start is random per process start. Host and pid
// alone collide between containers (every one may be pid 1 on a host
// called "localhost"), and a lease that looks like our own would be taken
// over without fencing its holder out.
func leaseOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), processStart)
}

// processStart tells this process start from any other.
var processStart = func() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}()

// leaseAbandoned reports whether a lease was held by a process on this host
// that no longer exists, so a restart after a crash takes over at once
// instead of waiting for the lease to expire.
func leaseAbandoned(rec checkpoint.LeaseRecord) bool {
	host, rest, ok := strings.Cut(rec.Owner, "/")
	me, _ := os.Hostname()
	if !ok || host != me {
		return false
	}
	pidText, _, _ := strings.Cut(rest, "/") // host/pid/start, or host/pid of older versions
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

// maintenanceLeaseTTL is how long the hold of gc or prune lasts without
// renewal; they renew it as they delete.
const maintenanceLeaseTTL = 2 * time.Minute

// openForDeleting opens the repository a command that deletes (gc, prune)
// works on and, unless dryRun, takes the store's maintenance hold, so that
// nothing is deleted beside a running job. done releases the hold and
// closes the store.
func openForDeleting(ctx context.Context, openRepo func(context.Context) (*checkpoint.Repo, error), dryRun bool, command string) (repo *checkpoint.Repo, hold *checkpoint.Maintenance, done func(), err error) {
	if repo, err = openRepo(ctx); err != nil {
		return nil, nil, nil, err
	}
	if !dryRun {
		if hold, err = acquireMaintenance(ctx, repo, command); err != nil {
			repo.Store().Close()
			return nil, nil, nil, err
		}
	}
	return repo, hold, func() {
		if hold != nil {
			hold.Release(context.WithoutCancel(ctx))
		}
		repo.Store().Close()
	}, nil
}

// acquireMaintenance takes the store's maintenance hold for a command that
// deletes (gc, prune), or explains why it cannot: a job writes the store.
func acquireMaintenance(ctx context.Context, repo *checkpoint.Repo, command string) (*checkpoint.Maintenance, error) {
	m, err := repo.AcquireMaintenance(ctx, leaseOwner()+" ("+command+")",
		checkpoint.LeaseOptions{TTL: maintenanceLeaseTTL, Abandoned: leaseAbandoned})
	if errors.Is(err, checkpoint.ErrLeaseHeld) {
		return nil, fmt.Errorf("%s does not delete beside a running job, which collects its own garbage between checkpoints; stop the job first (or use --dry-run): %w", command, err)
	}
	return m, err
}
