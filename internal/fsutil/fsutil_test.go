package fsutil

import (
	"os"
	"path/filepath"
	"slices"
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

func TestMkdirAll(t *testing.T) {
	root := t.TempDir()
	var synced []string
	old := syncDir
	syncDir = func(d string) error { synced = append(synced, d); return SyncDir(d) }
	defer func() { syncDir = old }()

	dir := filepath.Join(root, "a", "b", "c")
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("%s not created: %v", dir, err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if !slices.Equal(synced, want) {
		t.Fatalf("synced %q; want the parent of every new directory, top down: %q", synced, want)
	}
	synced = nil
	if err := MkdirAll(dir, 0o755); err != nil || len(synced) != 0 {
		t.Fatalf("MkdirAll of an existing directory: %v, synced %q", err, synced)
	}
}
