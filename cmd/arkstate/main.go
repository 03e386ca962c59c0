// Command arkstate is the operator's tool for arkstate state stores: it runs
// stateful pipelines and lists, shows, diffs, verifies, restores and prunes
// checkpoints. Commands only parse flags, call pkg/ and render; the exit codes
// are the CLI contract of docs/CLI.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// run executes arkstate with args on the process's standard streams.
func run(ctx context.Context, args []string) int {
	return Main(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// Main executes the root command with args and the given standard streams,
// prints an error that has no report of its own as one line on stderr, and
// returns the exit code of the CLI contract. Tests run the CLI through it.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if err := crashpoint.Init(); err != nil {
		fmt.Fprintf(stderr, "arkstate: %v\n", err)
		return exitUsage
	}
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	var findings *findingsError
	if !errors.As(err, &findings) {
		fmt.Fprintf(stderr, "arkstate: %v\n", err)
	}
	return code
}
