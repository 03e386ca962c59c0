package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/arkstate/arkstate/pkg/format"
)

// The commands that take a while show a progress bar on stderr when it is
// a terminal, and their output on stdout is the same as without one.
// verify, restore and gc have theirs tested in pkg/checkpoint and in
// their own tests; these are prune, state dump and state import.
func TestProgressBars_Terminal(t *testing.T) {
	good := copyFixtureStore(t, filepath.Join(inspectFixtures, "good"))
	// Orphans older than gc's grace, for prune's gc to delete.
	for i, body := range []string{"orphan one", "orphan number two"} {
		name := filepath.Join(good, filepath.FromSlash(format.SegmentPath(strings.Repeat(string(rune('a'+i)), 64))))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-2 * time.Hour)
		if err := os.Chtimes(name, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// An input of several reads, so that the import's bar moves.
	var lines bytes.Buffer
	for i := range 200000 {
		fmt.Fprintf(&lines, `{"operator":"count","state":"count","key":"key-%d","value":%d}`+"\n", i, i)
	}
	dump := filepath.Join(t.TempDir(), "dump.jsonl")
	if err := os.WriteFile(dump, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		bar  string // what the bar shows
	}{
		{"dump", []string{"state", "dump", good, "latest"}, "/384)"}, // 3 states × 128 key groups
		{"import", []string{"state", "import", good, "--from", dump, "--dry-run"}, "% |"},
		{"prune", []string{"checkpoint", "prune", good, "--keep-last", "1"}, "B/s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatalf("open a pseudo-terminal: %v", err)
			}
			defer ptmx.Close()
			var stdout bytes.Buffer
			cmd := exec.Command(arkstateBinary(t), tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, tty
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close()                // the child has its own
			raw, _ := io.ReadAll(ptmx) // ends with EIO once the child has exited
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v: %v\n%q", tc.args, err, raw)
			}
			// The bar is drawn, then cleared when the command ends.
			if !bytes.HasPrefix(raw, []byte("\r"+tc.name)) || !bytes.Contains(raw, []byte(tc.bar)) ||
				!regexp.MustCompile(`\r +\r$`).Match(raw) {
				t.Fatalf("%v: stderr on a terminal shows no %s bar with %q, cleared at the end:\n%q", tc.args, tc.name, tc.bar, raw)
			}
			if tc.name == "dump" {
				// Off a terminal there is no bar, and the lines are the same.
				plain, stderr, code := cliRun(t, "", tc.args...)
				if code != exitOK || stderr != "" || plain != stdout.String() {
					t.Fatalf("dump without a terminal: exit %d, stderr %q, %d bytes of lines (with a terminal %d)", code, stderr, len(plain), stdout.Len())
				}
			}
		})
	}
}
