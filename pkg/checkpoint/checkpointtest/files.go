package checkpointtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// ReadObject returns the content of object name of s.
func ReadObject(tb testing.TB, s store.Store, name string) []byte {
	tb.Helper()
	rc, _, err := s.Get(context.Background(), name)
	if err != nil {
		tb.Fatalf("Get(%q) from %s: %v", name, s.Location(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatalf("Get(%q) from %s: %v", name, s.Location(), err)
	}
	return b
}

// Names lists the names of s under prefix, in order.
func Names(tb testing.TB, s store.Store, prefix string) []string {
	tb.Helper()
	var names []string
	for info, err := range s.List(context.Background(), prefix) {
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, info.Name)
	}
	return names
}

// Manifest reads the manifest of checkpoint id.
func Manifest(tb testing.TB, r *checkpoint.Repo, id uint64) *format.Manifest {
	tb.Helper()
	m, err := r.Manifest(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TreeHashes maps every file below root, by its slash-separated path
// relative to root, to its SHA-256 in hex; a missing root has none. Taken
// before and after an operation, it shows whether the operation changed a
// directory.
func TreeHashes(tb testing.TB, root string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// FlipByte inverts the byte at off of the file at path (off < 0 counts
// from the end): damage of the kind a bad disk leaves.
func FlipByte(tb testing.TB, path string, off int64) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}
