package store_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// TestHybridStore_NoLayout runs the conformance suite against a hybrid
// store that knows no layout: every name is copied alike. (The checkpoint
// layout's rules are tested with checkpoints in pkg/checkpoint.)
func TestHybridStore_NoLayout(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		h := store.NewHybridWithOptions(store.NewMem("local"), store.NewMem("remote"), store.HybridOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
		t.Cleanup(func() { h.Close() })
		return h
	})
}

// A layout's rules decide where a name lives and which copies are refused.
func TestHybridStore_Layout(t *testing.T) {
	ctx := context.Background()
	local, remote := store.NewMem("local"), store.NewMem("remote")
	layout := store.HybridLayout{
		RemoteOnly: func(name string) bool { return strings.HasPrefix(name, "shared/") },
		ContentCheck: func(name string, size int64, r io.Reader) io.Reader {
			if !strings.HasPrefix(name, "checked/") {
				return nil
			}
			return &mustSay{r: r, want: strings.TrimPrefix(name, "checked/")}
		},
	}
	h := store.NewHybridWithOptions(local, remote, store.HybridOptions{Layout: layout, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	defer h.Close()
	put := func(name, body string) {
		t.Helper()
		if err := h.Put(ctx, name, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	put("shared/lease", "x")
	put("checked/good", "good")
	put("checked/bad", "not what the name says")
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Stat(ctx, "shared/lease"); err == nil {
		t.Error("a remote-only name was written to the local store")
	}
	for name, want := range map[string]bool{"shared/lease": true, "checked/good": true, "checked/bad": false} {
		if _, err := remote.Stat(ctx, name); (err == nil) != want {
			t.Errorf("remote has %s: %v; want %v", name, err == nil, want)
		}
	}
	// The start-up scan may find the bad object too and refuse it again.
	if st := h.Stats(); st.DamagedLocal == 0 || st.Copied == 0 {
		t.Errorf("Stats() = %+v; want the damaged copy refused and the good one copied (the remote-only name is never copied)", st)
	}
}

// mustSay fails at the end of r unless r said want.
type mustSay struct {
	r    io.Reader
	want string
	got  strings.Builder
}

func (m *mustSay) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.got.Write(p[:n])
	if err == io.EOF && m.got.String() != m.want {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}
