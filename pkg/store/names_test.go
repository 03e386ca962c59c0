package store_test

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// TestMain stops the shared S3 server before checking for leaked
// goroutines.
func TestMain(m *testing.M) { s3Server.Main(m) }

func TestValidateName(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, name := range append([]string{
			"checkpoints/chk-00000000000000000042/MANIFEST",
			"segments/ab/ab12cd.seg",
			"leases/job",
			"ARKSTATE",
		}, storetest.GoodNames...) {
			if err := store.ValidateName(name); err != nil {
				t.Errorf("ValidateName(%q) = %v", name, err)
			}
		}
	})
	t.Run("ErrInvalidName", func(t *testing.T) {
		for _, name := range storetest.BadNames {
			err := store.ValidateName(name)
			if !errors.Is(err, store.ErrInvalidName) {
				t.Errorf("ValidateName(%q) = %v; want ErrInvalidName", name, err)
				continue
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("ValidateName(%q) error spans lines: %q", name, err)
			}
		}
	})
}

func TestError_Error(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		cause := errors.New("dial tcp 127.0.0.1:1:\n connect: connection refused")
		err := error(&store.Error{Op: "get", Location: "s3://b/p", Name: "a/b", Kind: store.ErrUnavailable, Err: cause})
		want := `get "a/b" in s3://b/p: store unavailable: dial tcp 127.0.0.1:1: connect: connection refused`
		if err.Error() != want {
			t.Fatalf("Error() = %q; want %q", err.Error(), want)
		}
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, cause) || errors.Is(err, store.ErrConfig) {
			t.Fatal("errors.Is does not see exactly the kind and the cause")
		}
		wrapped := fmt.Errorf("restore: %w", err)
		var se *store.Error
		if !errors.As(wrapped, &se) || se.Name != "a/b" {
			t.Fatal("errors.As does not find *Error through wrapping")
		}
	})
	t.Run("OKNoKind", func(t *testing.T) {
		err := &store.Error{Op: "stat", Location: "mem://x", Name: "n", Err: store.ErrNotExist}
		if got, want := err.Error(), `stat "n" in mem://x: object does not exist`; got != want {
			t.Fatalf("Error() = %q; want %q", got, want)
		}
	})
	t.Run("OKKindNotRepeated", func(t *testing.T) {
		err := &store.Error{Op: "open store", Kind: store.ErrConfig, Err: fmt.Errorf("x: %w", store.ErrConfig)}
		if strings.Count(err.Error(), store.ErrConfig.Error()) != 1 {
			t.Fatalf("Error() = %q repeats the kind", err.Error())
		}
	})
}

// FuzzValidateName checks the property the rules exist for: an accepted name
// is canonical and local, so no store can map it outside its root.
func FuzzValidateName(f *testing.F) {
	for _, name := range append(append([]string{}, storetest.GoodNames...), storetest.BadNames...) {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if store.ValidateName(name) != nil {
			return
		}
		if path.Clean(name) != name || !filepath.IsLocal(filepath.FromSlash(name)) || strings.ContainsAny(name, `\:`) {
			t.Fatalf("ValidateName accepted %q, which is not a canonical local path", name)
		}
		root := filepath.Join("store", "root")
		if rel, err := filepath.Rel(root, filepath.Join(root, filepath.FromSlash(name))); err != nil || !filepath.IsLocal(rel) {
			t.Fatalf("name %q maps outside the root: %q, %v", name, rel, err)
		}
	})
}
