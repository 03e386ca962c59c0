// Package storetest is the conformance suite for store.Store: every
// store implementation runs Run, so they all keep one contract. It also
// opens the real stores other packages' tests use (NewDir, NewS3 with
// S3Options for an s3test server).
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/store"
)

// LargeSize is the size of the suite's large object. Stores with a
// multipart or chunked path should configure it to start below this size
// (for S3: MultipartThreshold and PartSize of store.MinPartSize), so the
// suite exercises that path with several parts and a short last one.
const LargeSize = 2*store.MinPartSize + 123457

// Run runs the suite. newStore must return a new, empty store each time and
// register its own cleanup with t.Cleanup; the suite may Close the store
// earlier, so Close must be idempotent.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Put", func(t *testing.T) { testPut(t, newStore) })
	t.Run("Get", func(t *testing.T) { testGet(t, newStore) })
	t.Run("Stat", func(t *testing.T) { testStat(t, newStore) })
	t.Run("List", func(t *testing.T) { testList(t, newStore) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore) })
	t.Run("PutIf", func(t *testing.T) { testPutIf(t, newStore) })
	t.Run("PutIfRace", func(t *testing.T) { testPutIfRace(t, newStore) })
	t.Run("Atomicity", func(t *testing.T) { testAtomicity(t, newStore) })
	t.Run("Open", func(t *testing.T) { testOpen(t, newStore) })
	t.Run("Large", func(t *testing.T) { testLarge(t, newStore) })
	t.Run("Names", func(t *testing.T) { testNames(t, newStore) })
	t.Run("Context", func(t *testing.T) { testContext(t, newStore) })
	t.Run("Close", func(t *testing.T) { testClose(t, newStore) })
}

// onlyReader hides any io.Seeker or io.WriterTo of the wrapped reader, so
// stores see the plain streams that callers may give them.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func randomBytes(seed uint64, n int) []byte {
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n)
	_, _ = rng.Read(b)
	return b
}

func put(t *testing.T, s store.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), name, onlyReader{bytes.NewReader(data)}, int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
}

func get(t *testing.T, s store.Store, name string) ([]byte, store.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", name, err)
	}
	return data, info
}

func list(t *testing.T, s store.Store, prefix string) []store.ObjectInfo {
	t.Helper()
	var infos []store.ObjectInfo
	for info, err := range s.List(context.Background(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		infos = append(infos, info)
	}
	return infos
}

func names(infos []store.ObjectInfo) []string {
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = info.Name
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v; want %v", what, err, target)
	}
}

func wantAbsent(t *testing.T, s store.Store, name string) {
	t.Helper()
	_, err := s.Stat(context.Background(), name)
	wantErr(t, "Stat of "+name, err, store.ErrNotExist)
}

func wantContent(t *testing.T, s store.Store, name string, want []byte) {
	t.Helper()
	got, _ := get(t, s, name)
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes (sha256 %x); want %d bytes (sha256 %x)",
			name, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

// failingReader yields n bytes and then err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

var errReader = errors.New("storetest: reader failed")

func testPut(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := newStore(t)
		for _, size := range []int{0, 1, 4096 + 7, 300_000} {
			name := "objects/size-" + strconv.Itoa(size)
			data := randomBytes(uint64(size), size)
			put(t, s, name, data)
			wantContent(t, s, name, data)
		}
	})
	t.Run("OKOverwrite", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "x", []byte("first version, longer"))
		put(t, s, "x", []byte("second"))
		wantContent(t, s, "x", []byte("second"))
		if got := names(list(t, s, "")); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("List after overwrite = %q; want [x]", got)
		}
	})
	t.Run("ErrShortReader", func(t *testing.T) {
		s := newStore(t)
		err := s.Put(ctx, "new", onlyReader{strings.NewReader("abc")}, 10)
		if err == nil {
			t.Fatal("Put with 3 of 10 bytes succeeded")
		}
		wantAbsent(t, s, "new")
		put(t, s, "old", []byte("old content"))
		if err := s.Put(ctx, "old", onlyReader{strings.NewReader("abc")}, 10); err == nil {
			t.Fatal("Put with 3 of 10 bytes succeeded")
		}
		wantContent(t, s, "old", []byte("old content"))
	})
	t.Run("ErrLongReader", func(t *testing.T) {
		s := newStore(t)
		if err := s.Put(ctx, "long", onlyReader{strings.NewReader("abcdef")}, 3); err == nil {
			t.Fatal("Put with 6 bytes for size 3 succeeded")
		}
		wantAbsent(t, s, "long")
	})
	t.Run("ErrReader", func(t *testing.T) {
		s := newStore(t)
		err := s.Put(ctx, "broken", &failingReader{n: 1000, err: errReader}, 5000)
		wantErr(t, "Put from a failing reader", err, errReader)
		wantAbsent(t, s, "broken")
	})
	t.Run("ErrNegativeSize", func(t *testing.T) {
		s := newStore(t)
		if err := s.Put(ctx, "neg", strings.NewReader(""), -1); err == nil {
			t.Fatal("Put with size -1 succeeded")
		}
		wantAbsent(t, s, "neg")
	})
}

func testGet(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := newStore(t)
		data := randomBytes(1, 70_000)
		put(t, s, "a/b/c", data)
		got, info := get(t, s, "a/b/c")
		if !bytes.Equal(got, data) {
			t.Fatal("Get returned different bytes")
		}
		st, err := s.Stat(ctx, "a/b/c")
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "a/b/c" || info.Size != int64(len(data)) || info.ETag != st.ETag {
			t.Fatalf("Get info = %+v; want name a/b/c, size %d, ETag %q (from Stat)", info, len(data), st.ETag)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "empty", nil)
		got, info := get(t, s, "empty")
		if len(got) != 0 || info.Size != 0 {
			t.Fatalf("Get of empty object = %d bytes, info size %d", len(got), info.Size)
		}
	})
	t.Run("ErrNotExist", func(t *testing.T) {
		s := newStore(t)
		_, _, err := s.Get(ctx, "missing")
		wantErr(t, "Get missing", err, store.ErrNotExist)
		if !strings.Contains(err.Error(), `"missing"`) {
			t.Fatalf("error %q does not name the object", err)
		}
		put(t, s, "dir/file", []byte("x"))
		_, _, err = s.Get(ctx, "dir")
		wantErr(t, "Get of a name that is only a prefix", err, store.ErrNotExist)
	})
}

func testStat(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := newStore(t)
		before := time.Now()
		put(t, s, "stat/me", []byte("twelve bytes"))
		info, err := s.Stat(ctx, "stat/me")
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "stat/me" || info.Size != 12 || info.ETag == "" {
			t.Fatalf("Stat = %+v; want name stat/me, size 12, an ETag", info)
		}
		// Object stores keep whole seconds; allow for that and a little skew.
		if d := info.ModTime.Sub(before); d < -5*time.Second || d > time.Minute {
			t.Fatalf("ModTime %v is %v from the time of the Put", info.ModTime, d)
		}
	})
	t.Run("OKETagFollowsContent", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "e", []byte("one"))
		a, _ := s.Stat(ctx, "e")
		put(t, s, "e", []byte("two"))
		b, _ := s.Stat(ctx, "e")
		if a.ETag == b.ETag {
			t.Fatalf("ETag %q unchanged after the content changed", a.ETag)
		}
		c, _ := s.Stat(ctx, "e")
		if b.ETag != c.ETag {
			t.Fatalf("ETag changed from %q to %q without a write", b.ETag, c.ETag)
		}
	})
	t.Run("ErrNotExist", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Stat(ctx, "nothing/here")
		wantErr(t, "Stat missing", err, store.ErrNotExist)
	})
}

func testList(t *testing.T, newStore func(*testing.T) store.Store) {
	// Chosen so that a per-directory walk in file-name order would be wrong:
	// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f).
	all := []string{
		"a-c",
		"a.b",
		"a/b",
		"a/b-x/y",
		"a/b.x",
		"a/bb",
		"checkpoints/chk-00000000000000000002/MANIFEST",
		"checkpoints/chk-00000000000000000010/MANIFEST",
		"checkpoints/chk-00000000000000000010/extra",
		"leases/job",
		"segments/ab/ab01.seg",
		"segments/cd/cd02.seg",
		"z",
	}
	setup := func(t *testing.T) store.Store {
		s := newStore(t)
		// Written out of order so that no store can pass by insertion order.
		for i, p := range rand.New(rand.NewPCG(1, 2)).Perm(len(all)) {
			put(t, s, all[p], []byte(strings.Repeat("x", i)))
		}
		return s
	}
	t.Run("OK", func(t *testing.T) {
		s := setup(t)
		infos := list(t, s, "")
		if got := names(infos); !slices.Equal(got, all) {
			t.Fatalf("List(\"\") =\n%q\nwant\n%q", got, all)
		}
		for _, info := range infos {
			st, err := s.Stat(context.Background(), info.Name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != st.Size || (info.ETag != "" && info.ETag != st.ETag) || info.ModTime.IsZero() {
				t.Fatalf("List entry %+v disagrees with Stat %+v", info, st)
			}
		}
	})
	t.Run("OKPrefix", func(t *testing.T) {
		s := setup(t)
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"a", all[:6]},
			{"a/", all[2:6]},
			{"a/b", all[2:6]},
			{"a/b-", all[3:4]},
			{"a/b/", nil},
			{"checkpoints/", all[6:9]},
			{"checkpoints/chk-", all[6:9]},
			{"checkpoints/chk-00000000000000000010", all[7:9]},
			{"checkpoints/chk-00000000000000000010/MANIFEST", all[7:8]},
			{"segments/", all[10:12]},
			{"segments/c", all[11:12]},
			{"nothing", nil},
			{"nothing/", nil},
			{"z", all[12:]},
		} {
			if got := names(list(t, s, tc.prefix)); !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q; want %q", tc.prefix, got, tc.want)
			}
		}
	})
	t.Run("OKStopEarly", func(t *testing.T) {
		s := setup(t)
		var got []string
		for info, err := range s.List(context.Background(), "") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info.Name)
			if len(got) == 3 {
				break
			}
		}
		if !slices.Equal(got, all[:3]) {
			t.Fatalf("first three = %q; want %q", got, all[:3])
		}
	})
	t.Run("OKEmptyStore", func(t *testing.T) {
		s := newStore(t)
		if got := list(t, s, ""); len(got) != 0 {
			t.Fatalf("List of a new store = %+v", got)
		}
	})
	t.Run("ErrInvalidPrefix", func(t *testing.T) {
		s := newStore(t)
		for _, prefix := range []string{"/abs", "../up", "a//b", `a\b`} {
			var err error
			for _, e := range s.List(context.Background(), prefix) {
				err = e
			}
			wantErr(t, fmt.Sprintf("List(%q)", prefix), err, store.ErrInvalidName)
		}
	})
}

func testDelete(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "checkpoints/chk-1/MANIFEST", []byte("m"))
		put(t, s, "checkpoints/chk-1/data", []byte("d"))
		put(t, s, "checkpoints/chk-2/MANIFEST", []byte("m2"))
		if err := s.Delete(ctx, "checkpoints/chk-1/MANIFEST"); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, s, "checkpoints/chk-1/MANIFEST")
		if err := s.Delete(ctx, "checkpoints/chk-1/data"); err != nil {
			t.Fatal(err)
		}
		want := []string{"checkpoints/chk-2/MANIFEST"}
		if got := names(list(t, s, "")); !slices.Equal(got, want) {
			t.Fatalf("List after Delete = %q; want %q", got, want)
		}
		// The emptied "directory" must not get in the way of new objects.
		put(t, s, "checkpoints/chk-1/MANIFEST", []byte("again"))
		wantContent(t, s, "checkpoints/chk-1/MANIFEST", []byte("again"))
	})
	t.Run("OKAbsent", func(t *testing.T) {
		s := newStore(t)
		if err := s.Delete(ctx, "never/was"); err != nil {
			t.Fatalf("Delete of an absent object: %v", err)
		}
		put(t, s, "x", []byte("x"))
		if err := s.Delete(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "x"); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
	})
	t.Run("OKConcurrentWithPut", func(t *testing.T) {
		// Deletes that empty a "directory" race with Puts of other objects
		// into it; neither may fail, and every object put stays readable.
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 60)
		for i := range 30 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				errs <- s.Put(ctx, fmt.Sprintf("d/%d/new-%d", i%3, i), strings.NewReader("x"), 1)
			}()
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("d/%d/old-%d", i%3, i)
				if err := s.Put(ctx, name, strings.NewReader("x"), 1); err != nil {
					errs <- err
					return
				}
				errs <- s.Delete(ctx, name)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		infos := list(t, s, "d/")
		if len(infos) != 30 {
			t.Fatalf("%d objects listed after the race; want the 30 new ones", len(infos))
		}
		for _, info := range infos {
			if !strings.Contains(info.Name, "/new-") {
				t.Fatalf("deleted object %q listed", info.Name)
			}
			wantContent(t, s, info.Name, []byte("x"))
		}
	})
}

func testPutIf(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	putIf := func(s store.Store, name, content string, cond store.Condition) (store.ObjectInfo, error) {
		return s.PutIf(ctx, name, onlyReader{strings.NewReader(content)}, int64(len(content)), cond)
	}
	t.Run("OKCreate", func(t *testing.T) {
		s := newStore(t)
		info, err := putIf(s, "leases/job", "token-1", store.Condition{IfNoneMatch: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Stat(ctx, "leases/job")
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "leases/job" || info.Size != 7 || info.ETag == "" || info.ETag != st.ETag {
			t.Fatalf("PutIf info = %+v; Stat = %+v", info, st)
		}
		wantContent(t, s, "leases/job", []byte("token-1"))
	})
	t.Run("ErrExists", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "leases/job", []byte("holder"))
		_, err := putIf(s, "leases/job", "thief", store.Condition{IfNoneMatch: true})
		wantErr(t, "create-only over an existing object", err, store.ErrPreconditionFailed)
		wantContent(t, s, "leases/job", []byte("holder"))
	})
	t.Run("OKMatch", func(t *testing.T) {
		s := newStore(t)
		first, err := putIf(s, "ptr", "v1", store.Condition{IfNoneMatch: true})
		if err != nil {
			t.Fatal(err)
		}
		second, err := putIf(s, "ptr", "v2", store.Condition{IfMatch: first.ETag})
		if err != nil {
			t.Fatalf("compare-and-swap with the current ETag: %v", err)
		}
		if second.ETag == first.ETag {
			t.Fatal("ETag did not change with the content")
		}
		_, info := get(t, s, "ptr")
		if info.ETag != second.ETag {
			t.Fatalf("Get ETag %q; PutIf returned %q", info.ETag, second.ETag)
		}
		wantContent(t, s, "ptr", []byte("v2"))
	})
	t.Run("ErrStaleETag", func(t *testing.T) {
		s := newStore(t)
		first, err := putIf(s, "ptr", "v1", store.Condition{})
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "ptr", []byte("v2 by someone else"))
		_, err = putIf(s, "ptr", "v3", store.Condition{IfMatch: first.ETag})
		wantErr(t, "compare-and-swap with a stale ETag", err, store.ErrPreconditionFailed)
		wantContent(t, s, "ptr", []byte("v2 by someone else"))
	})
	t.Run("ErrMatchAbsent", func(t *testing.T) {
		s := newStore(t)
		first, err := putIf(s, "ptr", "v1", store.Condition{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "ptr"); err != nil {
			t.Fatal(err)
		}
		_, err = putIf(s, "ptr", "v2", store.Condition{IfMatch: first.ETag})
		wantErr(t, "compare-and-swap on a deleted object", err, store.ErrPreconditionFailed)
		wantAbsent(t, s, "ptr")
	})
	t.Run("ErrBothConditions", func(t *testing.T) {
		s := newStore(t)
		_, err := putIf(s, "ptr", "v", store.Condition{IfNoneMatch: true, IfMatch: "x"})
		if err == nil || errors.Is(err, store.ErrPreconditionFailed) {
			t.Fatalf("PutIf with both conditions: error = %v; want a usage error", err)
		}
		wantAbsent(t, s, "ptr")
	})
}

func testPutIfRace(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	t.Run("OKOneWinner", func(t *testing.T) {
		s := newStore(t)
		const writers = 8
		for round := range 3 {
			name := fmt.Sprintf("leases/race-%d", round)
			var wg sync.WaitGroup
			errs := make([]error, writers)
			start := make(chan struct{})
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					body := "writer-" + strconv.Itoa(i)
					_, errs[i] = s.PutIf(ctx, name, strings.NewReader(body), int64(len(body)), store.Condition{IfNoneMatch: true})
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: writers %d and %d both won", round, winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, store.ErrPreconditionFailed):
					t.Fatalf("round %d: writer %d: %v", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no writer won", round)
			}
			wantContent(t, s, name, []byte("writer-"+strconv.Itoa(winner)))
		}
	})
	t.Run("OKCompareAndSwap", func(t *testing.T) {
		// A counter incremented by read-compare-swap loops loses no update
		// only if every swap is atomic.
		s := newStore(t)
		if _, err := s.PutIf(ctx, "counter", strings.NewReader("0"), 1, store.Condition{IfNoneMatch: true}); err != nil {
			t.Fatal(err)
		}
		const workers, increments = 4, 5
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < increments; {
					rc, info, err := s.Get(ctx, "counter")
					if err != nil {
						errs <- err
						return
					}
					b, err := io.ReadAll(rc)
					rc.Close()
					if err != nil {
						errs <- err
						return
					}
					n, err := strconv.Atoi(string(b))
					if err != nil {
						errs <- fmt.Errorf("counter holds %q: %w", b, err)
						return
					}
					next := strconv.Itoa(n + 1)
					_, err = s.PutIf(ctx, "counter", strings.NewReader(next), int64(len(next)), store.Condition{IfMatch: info.ETag})
					switch {
					case err == nil:
						done++
					case !errors.Is(err, store.ErrPreconditionFailed):
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		wantContent(t, s, "counter", []byte(strconv.Itoa(workers*increments)))
	})
}

func testAtomicity(t *testing.T, newStore func(*testing.T) store.Store) {
	t.Run("OK", func(t *testing.T) {
		// Readers racing an overwriting writer see one version or the other,
		// whole: never a mix, a part or a missing object. The versions have
		// one size, so a part shows as bytes of the wrong kind or a short
		// read. (With versions of different sizes, versitygw's posix backend
		// sometimes answers a GET racing a replacement with the old size and
		// the new file's bytes: a race in the test server, not in Put.)
		ctx := context.Background()
		s := newStore(t)
		versions := [][]byte{bytes.Repeat([]byte{'a'}, 96<<10), bytes.Repeat([]byte{'b'}, 96<<10)}
		put(t, s, "hot", versions[0])
		done := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		check := func(data []byte) error {
			if !bytes.Equal(data, versions[0]) && !bytes.Equal(data, versions[1]) {
				return fmt.Errorf("read %d bytes that are neither version (first %q)", len(data), data[:min(len(data), 8)])
			}
			return nil
		}
		reader := func(useOpen bool) {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				var data []byte
				if useOpen {
					obj, err := s.Open(ctx, "hot")
					if err != nil {
						errs <- err
						return
					}
					data = make([]byte, obj.Size())
					_, err = obj.ReadAt(data, 0)
					obj.Close()
					// A replaced object may refuse to be read; it must not
					// return a mix.
					if err != nil && !errors.Is(err, store.ErrPreconditionFailed) {
						errs <- err
						return
					}
					if err != nil {
						continue
					}
				} else {
					rc, _, err := s.Get(ctx, "hot")
					if err != nil {
						errs <- err
						return
					}
					data, err = io.ReadAll(rc)
					rc.Close()
					if err != nil {
						errs <- err
						return
					}
				}
				if err := check(data); err != nil {
					errs <- err
					return
				}
			}
		}
		wg.Add(2)
		go reader(false)
		go reader(true)
		for i := range 30 {
			v := versions[(i+1)%2]
			if err := s.Put(ctx, "hot", bytes.NewReader(v), int64(len(v))); err != nil {
				close(done)
				wg.Wait()
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

func testOpen(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	data := randomBytes(7, 10_000)
	open := func(t *testing.T) (store.Store, store.Object) {
		s := newStore(t)
		put(t, s, "segments/ab/seg", data)
		obj, err := s.Open(ctx, "segments/ab/seg")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { obj.Close() })
		if obj.Size() != int64(len(data)) {
			t.Fatalf("Size() = %d; want %d", obj.Size(), len(data))
		}
		return s, obj
	}
	t.Run("OK", func(t *testing.T) {
		_, obj := open(t)
		size := int64(len(data))
		for _, tc := range []struct {
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{0, 100, 100, false},
			{4321, 1000, 1000, false},
			{0, len(data), len(data), false},
			{size - 1, 1, 1, false},
			{size - 5, 10, 5, true},
			{0, len(data) + 1, len(data), true},
			{size, 1, 0, true},
			{size + 100, 10, 0, true},
			{17, 0, 0, false},
		} {
			p := make([]byte, tc.n)
			n, err := obj.ReadAt(p, tc.off)
			if n != tc.wantN || (err == io.EOF) != tc.wantEOF || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(len %d, off %d) = %d, %v; want %d, EOF %t", tc.n, tc.off, n, err, tc.wantN, tc.wantEOF)
			}
			if n > 0 && !bytes.Equal(p[:n], data[tc.off:tc.off+int64(n)]) {
				t.Fatalf("ReadAt(len %d, off %d) returned wrong bytes", tc.n, tc.off)
			}
		}
	})
	t.Run("OKConcurrent", func(t *testing.T) {
		_, obj := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				off := int64(i * 1000)
				p := make([]byte, 1500)
				n, err := obj.ReadAt(p, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					errs <- fmt.Errorf("concurrent ReadAt at %d returned wrong bytes", off)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "empty", nil)
		obj, err := s.Open(ctx, "empty")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if n, err := obj.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt on an empty object = %d, %v; want 0, EOF", n, err)
		}
	})
	t.Run("ErrNotExist", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Open(ctx, "missing")
		wantErr(t, "Open missing", err, store.ErrNotExist)
	})
	t.Run("ErrNegativeOffset", func(t *testing.T) {
		_, obj := open(t)
		if _, err := obj.ReadAt(make([]byte, 1), -1); err == nil || err == io.EOF {
			t.Fatalf("ReadAt at -1: error = %v; want a failure", err)
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		_, obj := open(t)
		obj.Close()
		if _, err := obj.ReadAt(make([]byte, 1), 0); err == nil {
			t.Fatal("ReadAt after Close succeeded")
		}
	})
}

func testLarge(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	data := randomBytes(42, LargeSize)
	t.Run("OK", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "segments/la/large.seg", data)
		wantContent(t, s, "segments/la/large.seg", data)
		info, err := s.Stat(ctx, "segments/la/large.seg")
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != LargeSize {
			t.Fatalf("Stat size %d; want %d", info.Size, LargeSize)
		}
		obj, err := s.Open(ctx, "segments/la/large.seg")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		for _, off := range []int64{0, store.MinPartSize - 50, 2*store.MinPartSize - 1, LargeSize - 100} {
			p := make([]byte, 200)
			n, err := obj.ReadAt(p, off)
			want := data[off:min(off+200, LargeSize)]
			if n != len(want) || !bytes.Equal(p[:n], want) || (n < len(p)) != (err == io.EOF) {
				t.Fatalf("ReadAt(200 bytes at %d) = %d, %v", off, n, err)
			}
		}
	})
	t.Run("OKConditional", func(t *testing.T) {
		s := newStore(t)
		info, err := s.PutIf(ctx, "big", onlyReader{bytes.NewReader(data)}, LargeSize, store.Condition{IfNoneMatch: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.PutIf(ctx, "big", onlyReader{bytes.NewReader(data)}, LargeSize, store.Condition{IfNoneMatch: true})
		wantErr(t, "second create-only of a large object", err, store.ErrPreconditionFailed)
		if _, err := s.PutIf(ctx, "big", onlyReader{bytes.NewReader(data[:LargeSize-1])}, LargeSize-1,
			store.Condition{IfMatch: info.ETag}); err != nil {
			t.Fatalf("compare-and-swap of a large object: %v", err)
		}
		wantContent(t, s, "big", data[:LargeSize-1])
	})
	t.Run("ErrShortReader", func(t *testing.T) {
		s := newStore(t)
		err := s.Put(ctx, "short", onlyReader{bytes.NewReader(data[:LargeSize-10])}, LargeSize)
		if err == nil {
			t.Fatal("Put of a large object from a short reader succeeded")
		}
		wantAbsent(t, s, "short")
		err = s.Put(ctx, "failing", &failingReader{n: LargeSize / 2, err: errReader}, LargeSize)
		wantErr(t, "Put of a large object from a failing reader", err, errReader)
		wantAbsent(t, s, "failing")
	})
}

// BadNames are names every store must reject with ErrInvalidName.
var BadNames = []string{
	"",
	"/abs",
	"..",
	".",
	"../escape",
	"a/../../escape",
	"a/./b",
	"a//b",
	"trailing/",
	`back\slash`,
	`..\escape`,
	"C:/windows",
	"nul\x00byte",
	"new\nline",
	"dot./x",
	"space /x",
	".arkstate-tmp-123",
	"x/.arkstate-lock",
	"leases/NUL",
	"segments/com1.seg",
	"aux",
	"\xff\xfe",
	strings.Repeat("n", 901),
}

// GoodNames are unusual names every store must accept.
var GoodNames = []string{
	"a..b",
	"...x",
	".hidden",
	"console/nully/com10/lpt",
	"sp ace/x",
	"ünï/名前",
	"-dash_under+plus=eq,comma@at",
	strings.Repeat("n", 200) + "/" + strings.Repeat("m", 200),
}

func testNames(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	t.Run("ErrInvalidName", func(t *testing.T) {
		s := newStore(t)
		for _, name := range BadNames {
			quoted := strconv.Quote(name)
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, store.ErrInvalidName) {
					t.Fatalf("%s(%s): error = %v; want ErrInvalidName", op, quoted, err)
				}
				if !strings.Contains(err.Error(), quoted) {
					t.Fatalf("%s(%s): error %q does not name the name", op, quoted, err)
				}
			}
			check("Put", s.Put(ctx, name, strings.NewReader("x"), 1))
			_, err := s.PutIf(ctx, name, strings.NewReader("x"), 1, store.Condition{IfNoneMatch: true})
			check("PutIf", err)
			_, _, err = s.Get(ctx, name)
			check("Get", err)
			_, err = s.Open(ctx, name)
			check("Open", err)
			_, err = s.Stat(ctx, name)
			check("Stat", err)
			check("Delete", s.Delete(ctx, name))
		}
		if got := list(t, s, ""); len(got) != 0 {
			t.Fatalf("rejected names left objects: %q", names(got))
		}
	})
	t.Run("OK", func(t *testing.T) {
		s := newStore(t)
		for _, name := range GoodNames {
			put(t, s, name, []byte(name))
			wantContent(t, s, name, []byte(name))
		}
		want := slices.Sorted(slices.Values(GoodNames))
		if got := names(list(t, s, "")); !slices.Equal(got, want) {
			t.Fatalf("List = %q; want %q", got, want)
		}
	})
}

func testContext(t *testing.T, newStore func(*testing.T) store.Store) {
	t.Run("ErrCanceled", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "exists", []byte("x"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		check := func(op string, err error) {
			t.Helper()
			wantErr(t, op+" with a canceled context", err, context.Canceled)
		}
		check("Put", s.Put(ctx, "new", strings.NewReader("x"), 1))
		_, err := s.PutIf(ctx, "new", strings.NewReader("x"), 1, store.Condition{IfNoneMatch: true})
		check("PutIf", err)
		_, _, err = s.Get(ctx, "exists")
		check("Get", err)
		_, err = s.Open(ctx, "exists")
		check("Open", err)
		_, err = s.Stat(ctx, "exists")
		check("Stat", err)
		check("Delete", s.Delete(ctx, "exists"))
		var listErr error
		for _, err := range s.List(ctx, "") {
			listErr = err
		}
		check("List", listErr)
		wantAbsent(t, s, "new")
		wantContent(t, s, "exists", []byte("x"))
	})
	t.Run("ErrCanceledDuringPut", func(t *testing.T) {
		for _, size := range []int{100_000, LargeSize} {
			s := newStore(t)
			put(t, s, "obj", []byte("old"))
			ctx, cancel := context.WithCancel(context.Background())
			// The reader cancels when half the bytes are read, as a shutdown
			// arriving mid-upload would.
			r := &cancelingReader{r: bytes.NewReader(randomBytes(3, size)), at: size / 2, cancel: cancel}
			err := s.Put(ctx, "obj", r, int64(size))
			cancel()
			wantErr(t, fmt.Sprintf("Put of %d bytes canceled midway", size), err, context.Canceled)
			wantContent(t, s, "obj", []byte("old"))
		}
	})
	t.Run("ErrCanceledOpenObject", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "obj", []byte("content"))
		ctx, cancel := context.WithCancel(context.Background())
		obj, err := s.Open(ctx, "obj")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		cancel()
		_, err = obj.ReadAt(make([]byte, 3), 0)
		wantErr(t, "ReadAt after the Open context ended", err, context.Canceled)
	})
}

type cancelingReader struct {
	r      io.Reader
	read   int
	at     int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.at {
		c.cancel()
	}
	return n, err
}

func testClose(t *testing.T, newStore func(*testing.T) store.Store) {
	t.Run("ErrClosed", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		put(t, s, "x", []byte("x"))
		if s.Location() == "" {
			t.Fatal("Location() is empty")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		wantErr(t, "Put after Close", s.Put(ctx, "y", strings.NewReader("y"), 1), store.ErrClosed)
		_, _, err := s.Get(ctx, "x")
		wantErr(t, "Get after Close", err, store.ErrClosed)
		_, err = s.Stat(ctx, "x")
		wantErr(t, "Stat after Close", err, store.ErrClosed)
		var listErr error
		for _, err := range s.List(ctx, "") {
			listErr = err
		}
		wantErr(t, "List after Close", listErr, store.ErrClosed)
	})
}

// S3Options returns options that reach srv with its root credentials, the
// smallest parts S3 allows (so that LargeSize goes through multipart upload
// and parallel download) and short pauses between retries.
func S3Options(srv *s3test.Server) store.S3Options {
	return store.S3Options{
		Endpoint:           srv.Endpoint,
		Region:             s3test.Region,
		PathStyle:          true,
		AccessKeyID:        srv.AccessKey,
		SecretAccessKey:    srv.SecretKey,
		PartSize:           store.MinPartSize,
		MultipartThreshold: store.MinPartSize,
		Concurrency:        3,
		MaxBackoff:         20 * time.Millisecond,
	}
}

// NewS3 opens the S3 store bucket/prefix with opts and closes it when tb
// ends.
func NewS3(tb testing.TB, bucket, prefix string, opts store.S3Options) *store.S3Store {
	tb.Helper()
	s, err := store.NewS3(context.Background(), bucket, prefix, opts)
	if err != nil {
		tb.Fatalf("NewS3: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// NewDir opens the directory store at root, creating it, and closes it when
// tb ends.
func NewDir(tb testing.TB, root string) *store.DirStore {
	tb.Helper()
	s, err := store.NewDir(root)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
