package monitor

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestStatus_Check(t *testing.T) {
	running := Status{Stream: "s", Running: true, StartedAt: t0, Checkpointing: true, CheckpointInterval: time.Second}
	for _, c := range []struct {
		name   string
		s      Status
		now    time.Time
		ok     bool
		reason string
	}{
		{"FreshStart", running, t0.Add(2 * time.Second), true, ""},
		{"NoCheckpointYet", running, t0.Add(4 * time.Second), false, "no checkpoint completed since start 4s ago (interval 1s); 0 failed since"},
		{"RecentCheckpoint", with(running, func(s *Status) { s.LastCheckpointAt, s.LastCheckpointID = t0.Add(9*time.Second), 9 }), t0.Add(10 * time.Second), true, ""},
		{"StaleCheckpoint", with(running, func(s *Status) {
			s.LastCheckpointAt, s.LastCheckpointID, s.FailuresSinceSuccess = t0.Add(2*time.Second), 2, 5
		}), t0.Add(10 * time.Second), false, "last checkpoint 2 completed 8s ago (interval 1s); 5 failed since"},
		{"NoState", Status{Stream: "s", Running: true, StartedAt: t0}, t0.Add(time.Hour), true, ""},
		{"Stopped", with(running, func(s *Status) { s.Running, s.Err = false, "lease lost" }), t0, false, "stopped: lease lost"},
		{"Finished", with(running, func(s *Status) { s.Running = false }), t0.Add(time.Hour), true, ""},
		{"NotStarted", Status{Stream: "s"}, t0, false, "not started"},
		{"Standby", with(running, func(s *Status) { s.WaitingForLease = true }), t0.Add(time.Hour), true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := c.s.Check(c.now)
			if h.Healthy != c.ok || h.Reason != c.reason {
				t.Fatalf("Check = %v %q, want %v %q", h.Healthy, h.Reason, c.ok, c.reason)
			}
		})
	}
}

func with(s Status, f func(*Status)) Status { f(&s); return s }

// testMonitor serves two streams, one of whose counters the test moves.
func testMonitor(t *testing.T) (*httptest.Server, *atomic.Int64, *Monitor) {
	m := New("v-test")
	m.now = func() time.Time { return t0.Add(10 * time.Second) }
	var in atomic.Int64
	m.Add("words", func() Status {
		return Status{Running: true, StartedAt: t0, RecordsIn: in.Load(), RecordsOut: 7,
			Checkpointing: true, CheckpointInterval: time.Second, CheckpointsCompleted: 9, CheckpointsFailed: 2,
			LastCheckpointID: 11, LastCheckpointAt: t0.Add(9 * time.Second), LastCheckpointDuration: 250 * time.Millisecond,
			CheckpointBytes: 4096, BytesUploaded: 1 << 20, RestoredFrom: 3,
			Replication: &Replication{Queued: 2, QueuedBytes: 512, Copied: 30, CopiedBytes: 9000, Failed: 1, ReadFromRemote: 1}}
	})
	m.Add("clicks", func() Status {
		return Status{Running: true, StartedAt: t0, Checkpointing: true, CheckpointInterval: time.Second,
			CheckpointsFailed: 6, FailuresSinceSuccess: 6}
	})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv, &in, m
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHandler_Metrics(t *testing.T) {
	srv, in, m := testMonitor(t)
	in.Store(41)
	m.ObserveCheckpoint("words", 30*time.Millisecond, nil)
	m.ObserveCheckpoint("words", 2*time.Second, nil)
	m.ObserveCheckpoint("words", time.Second, errors.New("store down"))
	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Fatalf("no metric %s in\n%s", name, body)
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
		t.Fatalf("no %s%v in\n%s", name, labels, body)
		return 0
	}
	words := map[string]string{"stream": "words"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"arkstate_records_in_total", words, 41},
		{"arkstate_records_out_total", words, 7},
		{"arkstate_checkpoints_total", map[string]string{"stream": "words", "result": "completed"}, 9},
		{"arkstate_checkpoints_total", map[string]string{"stream": "words", "result": "failed"}, 2},
		{"arkstate_checkpoint_last_id", words, 11},
		{"arkstate_checkpoint_last_success_timestamp_seconds", words, float64(t0.Unix() + 9)},
		{"arkstate_checkpoint_last_duration_seconds", words, 0.25},
		{"arkstate_checkpoint_state_bytes", words, 4096},
		{"arkstate_checkpoint_uploaded_bytes_total", words, 1 << 20},
		{"arkstate_checkpoint_restored_id", words, 3},
		{"arkstate_stream_healthy", words, 1},
		{"arkstate_stream_healthy", map[string]string{"stream": "clicks"}, 0},
		{"arkstate_checkpoint_failures_since_success", map[string]string{"stream": "clicks"}, 6},
		{"arkstate_hybrid_queued_copies", words, 2},
		{"arkstate_hybrid_queued_bytes", words, 512},
		{"arkstate_hybrid_copies_total", map[string]string{"stream": "words", "result": "copied"}, 30},
		{"arkstate_hybrid_copies_total", map[string]string{"stream": "words", "result": "failed"}, 1},
		{"arkstate_hybrid_copied_bytes_total", words, 9000},
		{"arkstate_hybrid_remote_reads_total", words, 1},
		// Dates a stream that never checkpointed, for the alert on
		// checkpoint age (docs/OPERATIONS.md).
		{"arkstate_stream_start_time_seconds", map[string]string{"stream": "clicks"}, float64(t0.Unix())},
		{"arkstate_build_info", map[string]string{"version": "v-test"}, 1},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := families["arkstate_checkpoint_duration_seconds"]
	if h == nil || len(h.GetMetric()) != 2 {
		t.Fatalf("checkpoint duration histogram: %v", h)
	}
	for _, m := range h.GetMetric() {
		result := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" {
				result = l.GetValue()
			}
		}
		want := map[string]uint64{"completed": 2, "failed": 1}[result]
		if got := m.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("%s checkpoints observed: %d, want %d", result, got, want)
		}
	}
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("the Go runtime's metrics are missing")
	}
	for _, l := range families["arkstate_build_info"].GetMetric()[0].GetLabel() {
		if l.GetName() == "goversion" && !strings.HasPrefix(l.GetValue(), "go") {
			t.Errorf("arkstate_build_info goversion %q", l.GetValue())
		}
	}
	// OpenMetrics to a scraper that asks for it.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	om, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(string(om), "# EOF\n") {
		t.Errorf("OpenMetrics requested, got %q ending %q", ct, om[max(0, len(om)-20):])
	}
	// Counters come from the source on every scrape.
	in.Store(42)
	_, body = get(t, srv.URL+"/metrics")
	if !strings.Contains(body, `arkstate_records_in_total{stream="words"} 42`) {
		t.Errorf("second scrape does not show the new count:\n%s", body)
	}
}

func TestHandler_Healthz(t *testing.T) {
	srv, _, m := testMonitor(t)
	code, body := get(t, srv.URL+"/healthz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("GET /healthz with a stale stream: %d, want 503\n%s", code, body)
	}
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	if h.Healthy || len(h.Streams) != 2 || h.Streams[0].Stream != "clicks" || h.Streams[0].Healthy ||
		!strings.Contains(h.Streams[0].Reason, "6 failed since") || !h.Streams[1].Healthy {
		t.Fatalf("health = %+v", h)
	}
	m.Add("clicks", func() Status { return Status{Running: true, StartedAt: t0} })
	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz with healthy streams: %d\n%s", code, body)
	}
}

func TestHandler_Status(t *testing.T) {
	srv, in, _ := testMonitor(t)
	in.Store(5)
	code, body := get(t, srv.URL+"/status")
	if code != http.StatusOK {
		t.Fatalf("GET /status: %d", code)
	}
	var r Report
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.Version != "v-test" || len(r.Streams) != 2 || r.Streams[1].Stream != "words" || r.Streams[1].RecordsIn != 5 ||
		r.Streams[1].CheckpointInterval != time.Second || !r.Streams[1].LastCheckpointAt.Equal(t0.Add(9*time.Second)) {
		t.Fatalf("report = %+v\n%s", r, body)
	}
}

func TestHandler_NoStreamsIsUnhealthy(t *testing.T) {
	srv := httptest.NewServer(New("").Handler())
	defer srv.Close()
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("GET /healthz with no streams: %d, want 503", code)
	}
	if code, _ := get(t, srv.URL+"/nope"); code != http.StatusNotFound {
		t.Fatalf("GET /nope: %d, want 404", code)
	}
}
