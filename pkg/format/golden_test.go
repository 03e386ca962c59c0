package format

import (
	"testing"

	"github.com/arkstate/arkstate/internal/golden"
)

// checkGoldenFile compares got with the golden file at path, or writes got
// to path when -rewrite is set: go test ./pkg/format -run Golden -rewrite.
func checkGoldenFile(t *testing.T, path string, got []byte) {
	t.Helper()
	if !golden.Check(t, path, got) {
		t.Fatal("if the format change is intended, bump the version or run with -rewrite")
	}
}
