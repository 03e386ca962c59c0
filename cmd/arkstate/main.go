// Command arkstate is the operator's tool for arkstate state stores: it runs
// stateful pipelines and lists, shows, diffs, verifies, restores and prunes
// checkpoints. Commands only parse flags, call pkg/ and render; the exit codes
// are the CLI contract of docs/CLI.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/arkstate/arkstate/internal/crashpoint"
)

// Exit codes of the CLI contract (docs/CLI.md, "Exit codes").
const (
	exitOK       = 0
	exitFindings = 1 // verification found damage, or a diff found differences with --exit-code
	exitUsage    = 2 // usage or configuration error
	exitIO       = 3 // store unreachable or I/O error
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the root command with args and maps its error to an exit code.
func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	if err := crashpoint.Init(); err != nil {
		fmt.Fprintf(root.ErrOrStderr(), "arkstate: %v\n", err)
		return exitUsage
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	var findings *findingsError
	if !errors.As(err, &findings) {
		fmt.Fprintf(root.ErrOrStderr(), "arkstate: %v\n", err)
	}
	return code
}
