package state

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"

	"github.com/arkstate/arkstate/pkg/format"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock for TTL tests.
type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64 { return c.t }

func newTestBackend(t testing.TB, opts Options) *Backend {
	t.Helper()
	b, err := NewBackend(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeSegment writes a snapshot to an in-memory segment, releases it as
// persisted and opens the result.
func writeSegment(t testing.TB, s *Snapshot) *format.SegmentReader {
	t.Helper()
	var buf bytes.Buffer
	w := format.NewSegmentWriter(&buf, format.SegmentWriterOptions{})
	if err := s.WriteTo(w); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s.Release(true)
	r, err := format.OpenSegment(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "test.seg")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// fataler is what noErr needs of testing.TB and rapid.T alike.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

func noErr(t fataler, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// SegmentReaderT shortens the segment reader type in test tables.
type SegmentReaderT = format.SegmentReader

// descriptorsForTest describes b's registered states like a manifest would.
func (b *Backend) descriptorsForTest() []format.StateDescriptor {
	var ds []format.StateDescriptor
	for _, i := range b.stateNamesSorted() {
		s := b.states[i]
		ds = append(ds, format.StateDescriptor{Name: s.name, Kind: string(s.kind), Codec: s.codec, TTLMillis: s.ttl.Milliseconds()})
	}
	return ds
}
