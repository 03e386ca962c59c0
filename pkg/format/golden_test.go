package format

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// rewrite regenerates golden files from the current writers instead of
// comparing against them: go test ./pkg/format -run Golden -rewrite.
// It is registered once here for every golden test of the package.
var rewrite = flag.Bool("rewrite", false, "rewrite golden files")

// checkGoldenFile compares got with the golden file at path, or writes got
// to path when -rewrite is set.
func checkGoldenFile(t *testing.T, path string, got []byte) {
	t.Helper()
	if *rewrite {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s (%d bytes)", path, len(got))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (run with -rewrite to create it)", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: output differs from golden at byte %d (got %d bytes, golden %d); if the format change is intended, bump the version or run with -rewrite",
			path, i, len(got), len(want))
	}
}
