package txlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

var zeroTime time.Time

func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) != "" {
		// The crash helper is killed, never returns, and must not run the
		// leak check.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// mutation returns a valid mutation record whose key and value derive from
// i, so that a replayed record can be checked against its number.
func mutation(i int) *format.Record {
	return &format.Record{
		Type:     format.RecordMutation,
		Epoch:    uint64(i/10 + 1),
		Operator: "count",
		State:    "n",
		KeyGroup: uint32(i % 128),
		Key:      fmt.Appendf(nil, "key-%d", i),
		Value:    fmt.Appendf(nil, "value-%d-%0*d", i, i%50, 0),
	}
}

// checkMutation fails unless rec is mutation(i) with LSN lsn.
func checkMutation(t testing.TB, rec *format.Record, i int, lsn uint64) {
	t.Helper()
	want := mutation(i)
	if rec.LSN != lsn || rec.Type != want.Type || string(rec.Key) != string(want.Key) ||
		string(rec.Value) != string(want.Value) || rec.KeyGroup != want.KeyGroup || rec.Epoch != want.Epoch {
		t.Fatalf("record lsn %d: got %+v, want mutation(%d)", lsn, rec, i)
	}
}

func openLog(t testing.TB, dir, stream string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, stream, opts)
	if err != nil {
		t.Fatalf("Open(%s, %q): %v", dir, stream, err)
	}
	return l
}

func closeLog(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// appendN appends mutation(from) .. mutation(from+n-1) and checks that they
// get consecutive LSNs starting at firstLSN.
func appendN(t testing.TB, l *Log, from, n int, firstLSN uint64) {
	t.Helper()
	for i := range n {
		lsn, err := l.Append(mutation(from + i))
		if err != nil {
			t.Fatalf("Append(%d): %v", from+i, err)
		}
		if lsn != firstLSN+uint64(i) {
			t.Fatalf("Append(%d) = LSN %d, want %d", from+i, lsn, firstLSN+uint64(i))
		}
	}
}

func dirStore(t testing.TB, dir string) store.Store {
	t.Helper()
	s, err := store.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// replayAll returns clones of every record Replay yields.
func replayAll(t testing.TB, s store.Store, stream string, from, to uint64) ([]*format.Record, error) {
	t.Helper()
	var recs []*format.Record
	err := Replay(context.Background(), s, stream, from, to, zeroTime, func(r *format.Record) error {
		recs = append(recs, r.Clone())
		return nil
	})
	return recs, err
}

// segmentPaths returns the stream's segment files, oldest first.
func segmentPaths(t testing.TB, dir, stream string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "txlog", stream, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// recordOffsets returns the file offset of every record in a segment file.
func recordOffsets(t testing.TB, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sr, err := NewSegmentReader(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for {
		off := sr.Offset()
		if _, err := sr.Next(); err != nil {
			break
		}
		offs = append(offs, off)
	}
	return offs
}
