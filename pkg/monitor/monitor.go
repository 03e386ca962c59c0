package monitor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	promversion "github.com/prometheus/common/version"
)

// Status is one stream's state at the moment it is asked for.
type Status struct {
	Stream string `json:"stream"`
	// Running is false before the stream starts and after it ends.
	Running   bool      `json:"running"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Err is why the stream stopped, if it stopped on an error.
	Err string `json:"error,omitempty"`
	// WaitingForLease is true for a standby waiting for another writer to
	// release the store's lease: healthy, and not yet processing.
	WaitingForLease bool `json:"waiting_for_lease,omitempty"`

	RecordsIn  int64 `json:"in_record_count"`
	RecordsOut int64 `json:"out_record_count"`

	// Checkpointing is false when the stream runs without state; the
	// checkpoint fields are then zero and health does not look at them.
	Checkpointing        bool          `json:"checkpointing"`
	CheckpointInterval   time.Duration `json:"-"` // checkpoint_interval_ms
	CheckpointsCompleted int64         `json:"completed_checkpoint_count"`
	CheckpointsFailed    int64         `json:"failed_checkpoint_count"`
	// FailuresSinceSuccess counts the checkpoints failed since the last one
	// that completed.
	FailuresSinceSuccess int64  `json:"failed_since_success_count"`
	LastCheckpointID     uint64 `json:"last_checkpoint_id,omitempty"`
	// LastCheckpointAt is when the last completed checkpoint committed.
	LastCheckpointAt time.Time `json:"last_checkpoint_at,omitzero"`
	// LastCheckpointDuration is from the barrier's injection to the end of
	// the last checkpoint attempt, completed or not.
	LastCheckpointDuration time.Duration `json:"-"` // last_checkpoint_duration_ms
	// CheckpointBytes is the size of the segments the last completed
	// checkpoint is made of: what a restore would read.
	CheckpointBytes int64 `json:"checkpoint_bytes"`
	// BytesUploaded counts segment bytes written to the store by this run.
	BytesUploaded int64 `json:"uploaded_bytes"`
	// RestoredFrom is the checkpoint the run resumed from, 0 for none.
	RestoredFrom uint64 `json:"restored_from_checkpoint_id,omitempty"`
	// CommitFailures counts output commits failed in a row (0 once one
	// succeeds), and LastCommitError says why the last one failed. While
	// it is not 0 no output becomes visible.
	CommitFailures  int64  `json:"commit_failure_count,omitempty"`
	LastCommitError string `json:"last_commit_error,omitempty"`
	// FrozenLayers counts the state layers frozen by snapshots and not yet
	// folded into their base, over all subtasks. Reads walk them, so it
	// should stay small: folding happens as records are written and while
	// the stream is idle.
	FrozenLayers int `json:"frozen_layer_count"`
	// Replication describes the copies a hybrid store makes to its remote
	// side; nil for other stores.
	Replication *Replication `json:"replication,omitempty"`
}

// statusJSON is Status's JSON form: durations in milliseconds, the unit
// of every duration in the CLI's JSON (docs/CLI.md), where time.Duration
// would write nanoseconds.
type statusJSON struct {
	statusFields
	CheckpointIntervalMS     int64   `json:"checkpoint_interval_ms,omitempty"`
	LastCheckpointDurationMS float64 `json:"last_checkpoint_duration_ms,omitempty"`
}

// statusFields is Status without its methods, so that statusJSON does not
// inherit MarshalJSON.
type statusFields Status

// MarshalJSON writes s with its durations in milliseconds.
func (s Status) MarshalJSON() ([]byte, error) {
	return json.Marshal(statusJSON{
		statusFields:             statusFields(s),
		CheckpointIntervalMS:     s.CheckpointInterval.Milliseconds(),
		LastCheckpointDurationMS: float64(s.LastCheckpointDuration.Microseconds()) / 1000,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Status) UnmarshalJSON(b []byte) error {
	var v statusJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Status(v.statusFields)
	s.CheckpointInterval = time.Duration(v.CheckpointIntervalMS) * time.Millisecond
	s.LastCheckpointDuration = time.Duration(v.LastCheckpointDurationMS * float64(time.Millisecond))
	return nil
}

// Replication is a hybrid store's background copying to its remote side.
type Replication struct {
	// Queued copies wait or run, QueuedBytes in all: how far the remote
	// copy lags behind the local one.
	Queued      int   `json:"queued_count"`
	QueuedBytes int64 `json:"queued_bytes"`
	Copied      int64 `json:"copied_count"`
	CopiedBytes int64 `json:"copied_bytes"`
	// Failed counts failed copy attempts; each is retried.
	Failed int64 `json:"failed_count"`
	// ReadFromRemote counts segments found damaged locally and read from
	// the remote copy by a restore.
	ReadFromRemote int64  `json:"read_from_remote_count"`
	LastError      string `json:"last_error,omitempty"`
}

// StaleAfter is how many checkpoint intervals may pass without a completed
// checkpoint before a stream is reported unhealthy: one failure is retried
// at the next interval, so only a run of them is worth waking someone for.
const StaleAfter = 3

// StreamHealth is the verdict on one stream.
type StreamHealth struct {
	Stream  string `json:"stream"`
	Healthy bool   `json:"healthy"`
	// Reason says what is wrong; empty when healthy.
	Reason string `json:"reason,omitempty"`
}

// Health is the verdict on the whole process: healthy when every stream is.
type Health struct {
	Healthy bool           `json:"healthy"`
	Streams []StreamHealth `json:"streams"`
}

// Check judges s at time now.
func (s Status) Check(now time.Time) StreamHealth {
	h := StreamHealth{Stream: s.Stream, Healthy: true}
	switch {
	case s.Err != "":
		h.Healthy, h.Reason = false, "stopped: "+s.Err
	case !s.Running && s.StartedAt.IsZero():
		h.Healthy, h.Reason = false, "not started"
	case s.WaitingForLease:
		// A standby: nothing is expected of it until it takes over.
	case s.Running && s.CommitFailures > 0:
		h.Healthy = false
		h.Reason = fmt.Sprintf("output commit failed %d times in a row; no output is visible until one succeeds: %s",
			s.CommitFailures, s.LastCommitError)
	case s.Running && s.Checkpointing && s.CheckpointInterval > 0:
		since := s.LastCheckpointAt
		if since.IsZero() {
			since = s.StartedAt
		}
		if age := now.Sub(since); age > StaleAfter*s.CheckpointInterval {
			what := "no checkpoint completed since start"
			if !s.LastCheckpointAt.IsZero() {
				what = fmt.Sprintf("last checkpoint %d completed", s.LastCheckpointID)
			}
			h.Healthy = false
			h.Reason = fmt.Sprintf("%s %s ago (interval %s); %d failed since",
				what, age.Round(time.Millisecond), s.CheckpointInterval, s.FailuresSinceSuccess)
		}
	}
	return h
}

// SchemaVersion is the version of the JSON vocabulary of /status and of
// every arkstate command's JSON (docs/CLI.md, "JSON vocabulary"). It
// changes when a field is renamed or removed or changes its meaning; new
// fields do not change it, since readers ignore fields they do not know.
const SchemaVersion = 2

// Report is the JSON document served at /status.
type Report struct {
	SchemaVersion int       `json:"schema_version,omitempty"` // always set in a report Monitor serves
	Time          time.Time `json:"time"`
	Version       string    `json:"version,omitempty"`
	Health        Health    `json:"health"`
	Streams       []Status  `json:"streams"`
}

// Monitor collects the Status of registered streams and serves them.
type Monitor struct {
	version string
	now     func() time.Time

	mu      sync.Mutex
	sources map[string]func() Status

	registry  *prometheus.Registry
	durations *prometheus.HistogramVec
}

// New returns a monitor whose reports carry version. Its registry also
// exports the Go runtime's and the process's standard metrics.
func New(version string) *Monitor {
	m := &Monitor{version: version, now: time.Now, sources: map[string]func() Status{}}
	m.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "arkstate_checkpoint_duration_seconds",
		Help: "Time from barrier to the end of each checkpoint attempt, by result (completed or failed).",
		// 5 ms to 81.92 s: from a small local job to a large state on a slow S3.
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 15),
	}, []string{"stream", "result"})
	if promversion.Version == "" {
		// arkstate_build_info's version label; the revision comes from
		// the binary's VCS stamp.
		promversion.Version = version
	}
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(
		versioncollector.NewCollector("arkstate"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		(*collector)(m),
		m.durations,
	)
	return m
}

// ObserveCheckpoint records one checkpoint attempt of stream in the duration
// histogram; err is nil for a completed checkpoint.
func (m *Monitor) ObserveCheckpoint(stream string, d time.Duration, err error) {
	result := "completed"
	if err != nil {
		result = "failed"
	}
	m.durations.WithLabelValues(stream, result).Observe(d.Seconds())
}

// Add registers stream's status function, replacing any earlier one. The
// function is called on every scrape and must be safe for concurrent use.
func (m *Monitor) Add(stream string, status func() Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources[stream] = status
}

// Registry is the monitor's Prometheus registry, for a library user who
// wants to add metrics of their own.
func (m *Monitor) Registry() *prometheus.Registry { return m.registry }

// Statuses asks every stream for its status, in stream order.
func (m *Monitor) Statuses() []Status {
	m.mu.Lock()
	names := make([]string, 0, len(m.sources))
	for name := range m.sources {
		names = append(names, name)
	}
	slices.Sort(names)
	fns := make([]func() Status, len(names))
	for i, name := range names {
		fns[i] = m.sources[name]
	}
	m.mu.Unlock()
	out := make([]Status, len(fns))
	for i, f := range fns {
		out[i] = f()
		out[i].Stream = names[i]
	}
	return out
}

// Report gathers every stream's status and the health verdict.
func (m *Monitor) Report() Report {
	now := m.now()
	r := Report{SchemaVersion: SchemaVersion, Time: now.UTC(), Version: m.version, Streams: m.Statuses()}
	r.Health = health(r.Streams, now)
	return r
}

func health(streams []Status, now time.Time) Health {
	h := Health{Healthy: len(streams) > 0, Streams: make([]StreamHealth, 0, len(streams))}
	for _, s := range streams {
		sh := s.Check(now)
		h.Healthy = h.Healthy && sh.Healthy
		h.Streams = append(h.Streams, sh)
	}
	return h
}

// Handler serves /metrics (Prometheus text format), /healthz (200 when
// healthy, 503 with the reasons otherwise, as JSON) and /status (the Report
// as JSON).
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		h := health(m.Statuses(), m.now())
		code := http.StatusOK
		if !h.Healthy {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, h)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, m.Report())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, strings.Join([]string{"arkstate", "/metrics", "/healthz", "/status"}, "\n"))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to tell it
}
