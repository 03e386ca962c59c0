package tui

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"go.uber.org/goleak"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/monitor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func report(at time.Time, in, out int64, healthy bool) monitor.Report {
	words := monitor.Status{Stream: "words", Running: true, StartedAt: t0, RecordsIn: in, RecordsOut: out,
		Checkpointing: true, CheckpointInterval: time.Second, CheckpointsCompleted: 12, CheckpointsFailed: 1,
		LastCheckpointID: 14, LastCheckpointAt: at.Add(-1500 * time.Millisecond), LastCheckpointDuration: 42 * time.Millisecond,
		CheckpointBytes: 3 << 20, RestoredFrom: 2}
	done := monitor.Status{Stream: "batch", StartedAt: t0, RecordsIn: 50}
	r := monitor.Report{Time: at, Version: "v1.2.3", Streams: []monitor.Status{done, words},
		Health: monitor.Health{Healthy: healthy, Streams: []monitor.StreamHealth{{Stream: "batch", Healthy: true}, {Stream: "words", Healthy: healthy}}}}
	if !healthy {
		r.Health.Streams[1].Reason = "last checkpoint 14 completed 9s ago (interval 1s); 4 failed since"
	}
	return r
}

func render(s *State) string { return ansi.Strip(Render(s, "http://127.0.0.1:9090", 0)) }

// row finds the table row that starts with name and splits it into cells.
func row(t *testing.T, frame, name string) []string {
	t.Helper()
	for line := range strings.SplitSeq(frame, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no row %q in\n%s", name, frame)
	return nil
}

func TestRender_Streams(t *testing.T) {
	var s State
	s.Observe(report(t0.Add(10*time.Second), 1000, 8000, true), nil)
	first := render(&s)
	if got := row(t, first, "words"); strings.Join(got[:6], " ") != "words running ok - - 1000" {
		t.Fatalf("first frame has no rates yet; got %q\n%s", got, first)
	}
	s.Observe(report(t0.Add(12*time.Second), 5000, 40000, true), nil)
	frame := render(&s)
	for _, want := range []string{"arkstate top  http://127.0.0.1:9090  v1.2.3", "healthy", "q quit"} {
		if !strings.Contains(frame, want) {
			t.Errorf("frame lacks %q:\n%s", want, frame)
		}
	}
	// 4000 records in 2 s; 32000 out; 12 completed, 1 failed; checkpoint 14, 1.5 s old, 42 ms, 3 MiB, restored from 2.
	want := "words running ok 2000 16k 5000 12 (1 failed) 14 1.5s 42ms 3.0 MiB 2"
	if got := strings.Join(row(t, frame, "words"), " "); got != want {
		t.Errorf("words row:\n got %s\nwant %s\n%s", got, want, frame)
	}
	if got := strings.Join(row(t, frame, "batch"), " "); got != "batch finished ok 0 0 50 - - - - - -" {
		t.Errorf("batch row: %s", got)
	}
	standby := report(t0.Add(14*time.Second), 0, 0, true)
	standby.Streams[1] = monitor.Status{Stream: "words", Running: true, WaitingForLease: true, StartedAt: t0}
	s.Observe(standby, nil)
	if got := row(t, render(&s), "words"); got[1] != "standby" || got[2] != "ok" {
		t.Errorf("standby row: %q", got)
	}
}

func TestRender_Replication(t *testing.T) {
	var s State
	r := report(t0, 1, 1, true)
	r.Streams[1].Replication = &monitor.Replication{Queued: 3, QueuedBytes: 2048, Copied: 40, CopiedBytes: 1 << 20, Failed: 2, ReadFromRemote: 1, LastError: "503 Slow Down"}
	s.Observe(r, nil)
	want := "words: remote copy 3 behind (2.0 KiB); 40 copied (1.0 MiB), 2 failed attempts, 1 damaged local segments read remotely; last error: 503 Slow Down"
	if frame := render(&s); !strings.Contains(frame, want) {
		t.Fatalf("frame lacks %q:\n%s", want, frame)
	}
}

func TestRender_Unhealthy(t *testing.T) {
	var s State
	s.Observe(report(t0, 1, 1, false), nil)
	frame := render(&s)
	if !strings.Contains(frame, "UNHEALTHY") || row(t, frame, "words")[2] != "BAD" ||
		!strings.Contains(frame, "words: last checkpoint 14 completed 9s ago (interval 1s); 4 failed since") {
		t.Fatalf("unhealthy frame:\n%s", frame)
	}
}

func TestRender_Errors(t *testing.T) {
	var s State
	s.Observe(monitor.Report{}, errors.New("connection refused"))
	if frame := render(&s); !strings.Contains(frame, "cannot reach the job: connection refused") {
		t.Fatalf("frame before any status:\n%s", frame)
	}
	s.Observe(report(t0, 1, 1, true), nil)
	s.Observe(monitor.Report{}, errors.New("timeout"))
	frame := render(&s)
	if !strings.Contains(frame, "last poll failed: timeout (showing the previous status)") || row(t, frame, "words")[1] != "running" {
		t.Fatalf("frame after a failed poll:\n%s", frame)
	}
	s.CheckpointsErr = errors.New("store unreachable")
	if frame := render(&s); !strings.Contains(frame, "cannot list: store unreachable") {
		t.Fatalf("frame with a store error:\n%s", frame)
	}
}

func TestRender_Checkpoints(t *testing.T) {
	var s State
	s.Observe(report(t0, 1, 1, true), nil)
	s.Checkpoints = []checkpoint.CheckpointSummary{}
	if frame := render(&s); !strings.Contains(frame, "none yet") {
		t.Fatalf("empty store:\n%s", frame)
	}
	for id := uint64(1); id <= 10; id++ {
		c := checkpoint.CheckpointSummary{ID: id, Kind: "incremental", Parent: id - 1, CreatedAt: t0, Status: checkpoint.StatusOK, Keys: 7, LogicalBytes: 2048}
		if id == 1 {
			c.Kind, c.KeysExact = "full", true
		}
		if id == 10 {
			c = checkpoint.CheckpointSummary{ID: 10, Status: checkpoint.StatusDamaged}
		}
		s.Checkpoints = append(s.Checkpoints, c)
	}
	frame := render(&s)
	if got := strings.Join(row(t, frame, "9"), " "); !strings.HasPrefix(got, "9 incremental 8 ") || !strings.HasSuffix(got, "2.0 KiB ≤7 ok") {
		t.Errorf("checkpoint 9 row: %s", got)
	}
	if got := row(t, frame, "10"); got[len(got)-1] != checkpoint.StatusDamaged {
		t.Errorf("damaged checkpoint row: %q", got)
	}
	if strings.Contains(frame, "\n 2 ") || !strings.Contains(frame, "and 2 older (arkstate checkpoint ls)") {
		t.Errorf("only the newest %d should show:\n%s", maxCheckpointRows, frame)
	}
}

// The model polls the server, reschedules from each answer, and quits on q.
func TestModel_PollsAndQuits(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Write([]byte(`{"time":"2026-11-27T10:00:00Z","version":"v9","health":{"healthy":true,"streams":[]},"streams":[{"stream":"s","running":true,"in_record_count":3}]}`))
	}))
	defer srv.Close()
	m := New(Options{Addr: srv.URL, Interval: time.Hour, Checkpoints: func(context.Context) ([]checkpoint.CheckpointSummary, error) {
		return []checkpoint.CheckpointSummary{{ID: 4, Kind: "full", Status: checkpoint.StatusOK}}, nil
	}})
	for _, msg := range runBatch(m.Init()) {
		m, _ = m.Update(msg)
	}
	frame := ansi.Strip(m.View().Content)
	if hits != 1 || !strings.Contains(frame, "v9") || row(t, frame, "s")[5] != "3" || row(t, frame, "4")[1] != "full" {
		t.Fatalf("after the first poll (%d requests):\n%s", hits, frame)
	}
	// A second poll while one is in flight is not started.
	mm := m.(*model)
	mm.fetching = true
	if cmd := mm.poll(); len(runBatch(cmd)) != 1 {
		t.Fatal("poll started a second status request while one was in flight")
	}
	mm.fetching = false
	// r polls at once, but the answer does not start a second schedule of
	// polls beside the one already pending.
	if !mm.ticking {
		t.Fatal("no next poll scheduled after the first answer")
	}
	_, cmd := m.Update(tea.KeyPressMsg{Code: 'r', Text: "r"})
	for _, msg := range runBatch(cmd) {
		if _, next := m.Update(msg); next != nil {
			t.Fatalf("the answer to r scheduled another poll (%T)", msg)
		}
	}
	if hits != 2 {
		t.Fatalf("%d requests after r, want 2", hits)
	}
	if _, cmd := m.Update(tea.KeyPressMsg{Code: 'q', Text: "q"}); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("q does not quit")
	}
}

// runBatch runs a command and, for a batch, each of its commands.
func runBatch(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range b {
			out = append(out, runBatch(c)...)
		}
		return out
	}
	return []tea.Msg{msg}
}
