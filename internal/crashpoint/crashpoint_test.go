package crashpoint

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		name string
		n    int64
		err  string
	}{
		{in: AfterManifest, name: AfterManifest, n: 1},
		{in: BetweenCommits + ":3", name: BetweenCommits, n: 3},
		{in: "after-lunch", err: "unknown crash point"},
		{in: AfterManifest + ":0", err: "positive integer"},
		{in: AfterManifest + ":x", err: "positive integer"},
	} {
		name, n, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), Env) {
				t.Errorf("Parse(%q) = %v; want an error naming %s and %q", tc.in, err, Env, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || n != tc.n {
			t.Errorf("Parse(%q) = %q, %d, %v", tc.in, name, n, err)
		}
	}
}

// TestHit runs this test binary as a child that passes a point five times,
// printing each passage; armed at the third, the child must die of SIGKILL
// after printing two.
func TestHit(t *testing.T) {
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		if err := Init(); err != nil {
			fmt.Println("init:", err)
			os.Exit(2)
		}
		for i := 1; i <= 5; i++ {
			Hit(AfterSegments) // another point: not counted
			Hit(AfterManifest)
			fmt.Println("passed", i)
		}
		os.Exit(0)
	}
	for _, tc := range []struct {
		env    string
		passed int
		killed bool
	}{
		{env: AfterManifest + ":3", passed: 2, killed: true},
		{env: "", passed: 5},
		{env: AfterManifest + ":9", passed: 5},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHit$")
		cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", Env+"="+tc.env)
		out, err := cmd.Output()
		var ee *exec.ExitError
		killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		if killed != tc.killed || (err != nil && !killed) {
			t.Fatalf("%s=%q: err %v, killed %t; want killed %t", Env, tc.env, err, killed, tc.killed)
		}
		if got := strings.Count(string(out), "passed"); got != tc.passed {
			t.Fatalf("%s=%q: passed %d times before the end, want %d:\n%s", Env, tc.env, got, tc.passed, out)
		}
	}
}
