// Package crashpoint names the windows of the commit protocol so that crash
// tests can reach them. Random SIGKILLs rarely land between a manifest
// commit and an output commit; a named point turns "the N-th time the
// process passes here" into a SIGKILL of the process itself.
//
// The switch is the environment variable ARKSTATE_TEST_CRASH_AT, for tests
// only: "POINT" or "POINT:N" kills the process at the N-th passage (default
// 1) of the named point. Unset, Hit costs one atomic load.
package crashpoint

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable that arms a crash point.
const Env = "ARKSTATE_TEST_CRASH_AT"

// The named points, in the order a checkpoint passes them.
const (
	// AfterPrepare: the pending output is durable; no segment is written.
	AfterPrepare = "checkpoint-after-prepare"
	// AfterSegments: every segment is stored; the manifest is not.
	AfterSegments = "checkpoint-after-segments"
	// AfterLog: the transaction log holds the epoch's end (positions,
	// prepared transactions) durably; the manifest is not written. Passed
	// only with state.txlog on.
	AfterLog = "checkpoint-after-log"
	// AfterManifest: the checkpoint is complete; no output is committed.
	AfterManifest = "checkpoint-after-manifest"
	// BetweenCommits: one output transaction is committed, others of the
	// same checkpoint may not be.
	BetweenCommits = "commit-between-parts"
	// AfterCommit: the output is committed; retention has not run.
	AfterCommit = "commit-after"
	// RecoverAfterCommit: recovery committed the listed transactions and
	// has not aborted the others.
	RecoverAfterCommit = "recover-after-commit"
	// BetweenPruneDeletes: prune deleted part of what it deletes.
	BetweenPruneDeletes = "prune-between-deletes"
	// BetweenGCDeletes: gc deleted part of what it deletes.
	BetweenGCDeletes = "gc-between-deletes"
)

// Points lists every named point.
var Points = []string{AfterPrepare, AfterSegments, AfterLog, AfterManifest, BetweenCommits, AfterCommit,
	RecoverAfterCommit, BetweenPruneDeletes, BetweenGCDeletes}

var (
	armed    atomic.Bool
	point    string
	at       int64
	passes   atomic.Int64
	setup    sync.Once
	killSelf = func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
)

// Parse reads a value of ARKSTATE_TEST_CRASH_AT.
func Parse(v string) (name string, n int64, err error) {
	name, count, hasCount := strings.Cut(v, ":")
	if !slices.Contains(Points, name) {
		return "", 0, fmt.Errorf("%s=%q: unknown crash point %q (known: %s)", Env, v, name, strings.Join(Points, ", "))
	}
	n = 1
	if hasCount {
		n, err = strconv.ParseInt(count, 10, 64)
		if err != nil || n < 1 {
			return "", 0, fmt.Errorf("%s=%q: the count after ':' must be a positive integer", Env, v)
		}
	}
	return name, n, nil
}

// Init arms the point the environment names. A bad value is an error, so
// that a mistyped test setting fails loudly instead of testing nothing.
func Init() error {
	var err error
	setup.Do(func() {
		v := os.Getenv(Env)
		if v == "" {
			return
		}
		point, at, err = Parse(v)
		if err == nil {
			armed.Store(true)
		}
	})
	return err
}

// Hit marks a passage of the named point.
func Hit(name string) {
	if !armed.Load() || name != point {
		return
	}
	if passes.Add(1) == at {
		killSelf()
	}
}
