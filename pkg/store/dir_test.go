package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

func TestDirStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return storetest.NewDir(t, filepath.Join(t.TempDir(), "store"))
	})
}

func TestDirStore_Put(t *testing.T) {
	ctx := context.Background()
	t.Run("OKLayout", func(t *testing.T) {
		// Objects are plain files at their names: operators can inspect a
		// store with ls, and nothing is written outside the root.
		parent := t.TempDir()
		root := filepath.Join(parent, "store")
		s := storetest.NewDir(t, root)
		put := func(name, content string) {
			if err := s.Put(ctx, name, strings.NewReader(content), int64(len(content))); err != nil {
				t.Fatal(err)
			}
		}
		put("checkpoints/chk-1/MANIFEST", "manifest")
		put("a..b", "dots")
		b, err := os.ReadFile(filepath.Join(root, "checkpoints", "chk-1", "MANIFEST"))
		if err != nil || string(b) != "manifest" {
			t.Fatalf("file content = %q, %v", b, err)
		}
		ents, err := os.ReadDir(parent)
		if err != nil || len(ents) != 1 || ents[0].Name() != "store" {
			t.Fatalf("parent of the root holds %v, %v; want only the root", ents, err)
		}
		var files []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, p)
				files = append(files, filepath.ToSlash(rel))
			}
			return err
		})
		slices.Sort(files)
		// The lock file is the only file that is not an object.
		want := []string{".arkstate-lock", "a..b", "checkpoints/chk-1/MANIFEST"}
		if !slices.Equal(files, want) {
			t.Fatalf("files under the root = %q; want %q (no temporary files left)", files, want)
		}
	})
	t.Run("OKStaleTempHidden", func(t *testing.T) {
		root := t.TempDir()
		s := storetest.NewDir(t, root)
		if err := s.Put(ctx, "x/obj", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		// What a crash between write and rename leaves behind.
		if err := os.WriteFile(filepath.Join(root, "x", ".arkstate-tmp-123"), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		var got []string
		for info, err := range s.List(ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info.Name)
		}
		if !slices.Equal(got, []string{"x/obj"}) {
			t.Fatalf("List = %q; want only x/obj", got)
		}
	})
	t.Run("ErrNameIsDirectory", func(t *testing.T) {
		s := storetest.NewDir(t, t.TempDir())
		if err := s.Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		err := s.Put(ctx, "a", strings.NewReader("x"), 1)
		if err == nil {
			t.Fatal(`Put "a" over the directory of "a/b" succeeded`)
		}
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), `"a"`) {
			t.Fatalf("error = %v; want an I/O error naming the object", err)
		}
	})
}

func TestDirStore_Stat(t *testing.T) {
	t.Run("OKETagIsSHA256", func(t *testing.T) {
		s := storetest.NewDir(t, t.TempDir())
		content := "content-addressed"
		if err := s.Put(context.Background(), "o", strings.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		info, err := s.Stat(context.Background(), "o")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		if info.ETag != hex.EncodeToString(sum[:]) {
			t.Fatalf("ETag = %q; want hex SHA-256 %x", info.ETag, sum)
		}
	})
}

func TestDirStore_PutIf(t *testing.T) {
	t.Run("OKTwoInstancesOneWinner", func(t *testing.T) {
		// Two stores on one directory stand for two processes: only the
		// file lock and link(2) keep their conditional writes exclusive.
		ctx := context.Background()
		root := t.TempDir()
		stores := []*store.DirStore{storetest.NewDir(t, root), storetest.NewDir(t, root)}
		for round := range 5 {
			name := "leases/l" + strconv.Itoa(round)
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := stores[i%2].PutIf(ctx, name, strings.NewReader("x"), 1, store.Condition{IfNoneMatch: true})
					switch {
					case err == nil:
						mu.Lock()
						wins++
						mu.Unlock()
					case !errors.Is(err, store.ErrPreconditionFailed):
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Fatalf("round %d: %d winners; want 1", round, wins)
			}
		}
		// Compare-and-swap across the two instances loses no update.
		if _, err := stores[0].PutIf(ctx, "n", strings.NewReader("0"), 1, store.Condition{}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := stores[i%2]
				for done := 0; done < 5; {
					info, err := s.Stat(ctx, "n")
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := os.ReadFile(filepath.Join(root, "n"))
					n, _ := strconv.Atoi(string(b))
					next := strconv.Itoa(n + 1)
					_, err = s.PutIf(ctx, "n", strings.NewReader(next), int64(len(next)), store.Condition{IfMatch: info.ETag})
					if err == nil {
						done++
					} else if !errors.Is(err, store.ErrPreconditionFailed) {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if b, _ := os.ReadFile(filepath.Join(root, "n")); string(b) != "20" {
			t.Fatalf("counter = %q; want 20", b)
		}
	})
}

func TestNewDir(t *testing.T) {
	t.Run("OKCreatesRoot", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "a", "b")
		s := storetest.NewDir(t, root)
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			t.Fatalf("root not created: %v", err)
		}
		if !strings.HasPrefix(s.Location(), "file://") || !strings.HasSuffix(s.Location(), "/a/b") {
			t.Fatalf("Location() = %q", s.Location())
		}
	})
	t.Run("ErrConfig", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := store.NewDir(file)
		if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), "file") {
			t.Fatalf("NewDir on a file: %v; want ErrConfig naming it", err)
		}
	})
}

func TestDirStore_Delete(t *testing.T) {
	t.Run("OKPrunesEmptyDirs", func(t *testing.T) {
		ctx := context.Background()
		root := t.TempDir()
		s := storetest.NewDir(t, root)
		for _, name := range []string{"checkpoints/chk-1/MANIFEST", "checkpoints/chk-2/MANIFEST"} {
			if err := s.Put(ctx, name, strings.NewReader("m"), 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Delete(ctx, "checkpoints/chk-1/MANIFEST"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "checkpoints", "chk-1")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("emptied directory still there: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "checkpoints", "chk-2", "MANIFEST")); err != nil {
			t.Fatalf("sibling object gone: %v", err)
		}
		if err := s.Delete(ctx, "checkpoints"); err != nil {
			t.Fatalf("Delete of a name that is a directory: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "checkpoints", "chk-2", "MANIFEST")); err != nil {
			t.Fatalf("Delete of a directory name removed objects: %v", err)
		}
	})
}
