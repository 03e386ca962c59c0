package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps its errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Errorf(format string, a ...any) { r.errs = append(r.errs, format) }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	r := &recorder{TB: t}
	if Check(r, path, []byte("a")) || len(r.errs) != 1 || !strings.Contains(r.errs[0], "-rewrite to create it") {
		t.Fatalf("a missing golden file: %q", r.errs)
	}
	*rewrite = true
	if !Check(t, path, []byte("one\ntwo\n")) {
		t.Fatal("Check with -rewrite reported a difference")
	}
	*rewrite = false
	if b, err := os.ReadFile(path); err != nil || string(b) != "one\ntwo\n" {
		t.Fatalf("-rewrite wrote %q, %v", b, err)
	}
	r = &recorder{TB: t}
	if !Check(r, path, []byte("one\ntwo\n")) || len(r.errs) != 0 {
		t.Fatalf("equal output: %q", r.errs)
	}
	for _, got := range []string{"one\nthree\n", "one\x00"} {
		r = &recorder{TB: t}
		if Check(r, path, []byte(got)) || len(r.errs) != 1 {
			t.Fatalf("different output %q passed: %q", got, r.errs)
		}
	}
}
