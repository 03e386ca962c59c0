// Package golden compares a test's output with a file kept under testdata
// and, when the test binary runs with -rewrite, writes the file instead. It
// defines the -rewrite flag once for every test that imports it.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files and generated fixtures instead of comparing with them")

// Rewriting reports whether the tests run with -rewrite, so that tests
// which generate fixtures regenerate them.
func Rewriting() bool { return *rewrite }

// Check compares got with the golden file at path and reports whether they
// are equal; a difference, or a missing file, is an error of tb that says
// where the two part. With -rewrite it writes got to path (creating its
// directory) and reports true.
func Check(tb testing.TB, path string, got []byte) bool {
	tb.Helper()
	if *rewrite {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		tb.Logf("rewrote %s (%d bytes)", path, len(got))
		return true
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Errorf("%v (run the test with -rewrite to create it)", err)
		return false
	}
	if bytes.Equal(got, want) {
		return true
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if isText(got) && isText(want) {
		line := bytes.Count(want[:i], []byte("\n")) + 1
		tb.Errorf("output differs from %s at line %d (run the test with -rewrite if the change is intended)\n--- got\n%s\n--- want\n%s", path, line, got, want)
	} else {
		tb.Errorf("output differs from %s at byte %d (got %d bytes, want %d; run the test with -rewrite if the change is intended)", path, i, len(got), len(want))
	}
	return false
}

func isText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }
