package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector turns the streams' Status into metrics at scrape time.
type collector Monitor

var (
	streamLabel = []string{"stream"}

	descRecordsIn = prometheus.NewDesc("arkstate_records_in_total",
		"Records read from the stream's input.", streamLabel, nil)
	descRecordsOut = prometheus.NewDesc("arkstate_records_out_total",
		"Records handed to the stream's output.", streamLabel, nil)
	descCheckpoints = prometheus.NewDesc("arkstate_checkpoints_total",
		"Checkpoint attempts by result (completed or failed).", []string{"stream", "result"}, nil)
	descFailuresSince = prometheus.NewDesc("arkstate_checkpoint_failures_since_success",
		"Checkpoints failed since the last one that completed.", streamLabel, nil)
	descLastID = prometheus.NewDesc("arkstate_checkpoint_last_id",
		"Id of the last completed checkpoint.", streamLabel, nil)
	descLastTime = prometheus.NewDesc("arkstate_checkpoint_last_success_timestamp_seconds",
		"Unix time the last completed checkpoint committed.", streamLabel, nil)
	descStartTime = prometheus.NewDesc("arkstate_stream_start_time_seconds",
		"Unix time the stream started; with arkstate_checkpoint_last_success_timestamp_seconds it dates the last checkpoint, or the start when there is none yet.", streamLabel, nil)
	descLastDuration = prometheus.NewDesc("arkstate_checkpoint_last_duration_seconds",
		"Time from barrier to the end of the last checkpoint attempt.", streamLabel, nil)
	descStateBytes = prometheus.NewDesc("arkstate_checkpoint_state_bytes",
		"Size of the segments the last completed checkpoint is made of.", streamLabel, nil)
	descUploaded = prometheus.NewDesc("arkstate_checkpoint_uploaded_bytes_total",
		"Segment bytes written to the checkpoint store.", streamLabel, nil)
	descRestoredFrom = prometheus.NewDesc("arkstate_checkpoint_restored_id",
		"Checkpoint the run resumed from; 0 for a fresh start.", streamLabel, nil)
	descFrozen = prometheus.NewDesc("arkstate_state_frozen_layers",
		"State layers frozen by snapshots and not yet folded into their base.", streamLabel, nil)
	descReplQueued = prometheus.NewDesc("arkstate_hybrid_queued_copies",
		"Copies to the hybrid store's remote side waiting or running.", streamLabel, nil)
	descReplQueuedBytes = prometheus.NewDesc("arkstate_hybrid_queued_bytes",
		"Bytes of the queued copies: how far the remote side lags behind.", streamLabel, nil)
	descReplCopies = prometheus.NewDesc("arkstate_hybrid_copies_total",
		"Copy attempts to the hybrid store's remote side by result (copied or failed; failures are retried).", []string{"stream", "result"}, nil)
	descReplCopiedBytes = prometheus.NewDesc("arkstate_hybrid_copied_bytes_total",
		"Bytes copied to the hybrid store's remote side.", streamLabel, nil)
	descReplRemoteReads = prometheus.NewDesc("arkstate_hybrid_remote_reads_total",
		"Segments found damaged locally and read from the remote copy by a restore.", streamLabel, nil)
	descCommitFailures = prometheus.NewDesc("arkstate_output_commit_failures_in_a_row",
		"Output commits failed in a row since the last that succeeded; while it is not 0 no output becomes visible.", streamLabel, nil)
	descRunning = prometheus.NewDesc("arkstate_stream_running",
		"1 while the stream runs.", streamLabel, nil)
	descStandby = prometheus.NewDesc("arkstate_stream_waiting_for_lease",
		"1 while the stream is a standby waiting for another writer's lease.", streamLabel, nil)
	descHealthy = prometheus.NewDesc("arkstate_stream_healthy",
		"1 when the stream passes the health check served at /healthz.", streamLabel, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecordsIn, descRecordsOut, descCheckpoints, descFailuresSince,
		descLastID, descLastTime, descStartTime, descLastDuration, descStateBytes, descUploaded, descRestoredFrom,
		descRunning, descStandby, descHealthy, descFrozen, descCommitFailures,
		descReplQueued, descReplQueuedBytes, descReplCopies, descReplCopiedBytes, descReplRemoteReads} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Monitor)(c)
	now := m.now()
	for _, s := range m.Statuses() {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{s.Stream}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{s.Stream}, labels...)...)
		}
		counter(descRecordsIn, float64(s.RecordsIn))
		counter(descRecordsOut, float64(s.RecordsOut))
		gauge(descRunning, b2f(s.Running))
		gauge(descStandby, b2f(s.WaitingForLease))
		gauge(descFrozen, float64(s.FrozenLayers))
		gauge(descHealthy, b2f(s.Check(now).Healthy))
		if r := s.Replication; r != nil {
			gauge(descReplQueued, float64(r.Queued))
			gauge(descReplQueuedBytes, float64(r.QueuedBytes))
			counter(descReplCopies, float64(r.Copied), "copied")
			counter(descReplCopies, float64(r.Failed), "failed")
			counter(descReplCopiedBytes, float64(r.CopiedBytes))
			counter(descReplRemoteReads, float64(r.ReadFromRemote))
		}
		if !s.Checkpointing {
			continue
		}
		counter(descCheckpoints, float64(s.CheckpointsCompleted), "completed")
		counter(descCheckpoints, float64(s.CheckpointsFailed), "failed")
		gauge(descFailuresSince, float64(s.FailuresSinceSuccess))
		gauge(descCommitFailures, float64(s.CommitFailures))
		gauge(descLastID, float64(s.LastCheckpointID))
		if !s.LastCheckpointAt.IsZero() {
			gauge(descLastTime, float64(s.LastCheckpointAt.UnixNano())/1e9)
		}
		if !s.StartedAt.IsZero() {
			gauge(descStartTime, float64(s.StartedAt.UnixNano())/1e9)
		}
		gauge(descLastDuration, s.LastCheckpointDuration.Seconds())
		gauge(descStateBytes, float64(s.CheckpointBytes))
		counter(descUploaded, float64(s.BytesUploaded))
		gauge(descRestoredFrom, float64(s.RestoredFrom))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
