package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSyncDir(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		if err := SyncDir(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrNotExist", func(t *testing.T) {
		if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
			t.Fatalf("SyncDir of a missing directory: %v", err)
		}
	})
}
