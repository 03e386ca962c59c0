package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/arkstate/arkstate/pkg/checkpoint"
)

// leaseOwner names this process in a store's writer lease: host/pid.
func leaseOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// leaseAbandoned reports whether a lease was held by a process on this host
// that no longer exists, so a restart after a crash takes over at once
// instead of waiting for the lease to expire.
func leaseAbandoned(rec checkpoint.LeaseRecord) bool {
	host, pidText, ok := strings.Cut(rec.Owner, "/")
	me, _ := os.Hostname()
	if !ok || host != me {
		return false
	}
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
