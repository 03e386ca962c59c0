package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/pipeline/config"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// Manager owns a job's checkpoint store as the `state` block configures it
// (EnhancedStateManager of ArkFlow's state-management document): it opens the backend, checks that the
// store belongs to this job, and hands runners their checkpoint options.
type Manager struct {
	cfg   config.EnhancedStateConfig
	store store.Store
	repo  *checkpoint.Repo
	log   *slog.Logger
}

// ErrTxlogBackend refuses a transaction log that could keep nothing: on
// the memory backend, or on s3 or hybrid without state.txlog.dir.
var ErrTxlogBackend = errors.New("the transaction log needs a store that outlives the process and, for s3 and hybrid, state.txlog.dir")

// NewManager opens the store for jobID. With state disabled it returns a
// manager without a store: pipelines then run without checkpoints.
func NewManager(ctx context.Context, cfg config.EnhancedStateConfig, jobID string, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: log}
	if !cfg.Enabled {
		return m, nil
	}
	if cfg.Txlog.Enabled && (cfg.BackendType == config.StateBackendMemory ||
		cfg.BackendType != config.StateBackendLocal && cfg.Txlog.Dir == "") {
		return nil, fmt.Errorf("state.txlog.enabled with backend_type %s: %w", cfg.BackendType, ErrTxlogBackend)
	}
	s, err := openBackend(ctx, cfg, jobID, log)
	if err != nil {
		return nil, err
	}
	if cfg.BackendType == config.StateBackendMemory {
		log.Warn("state backend is memory: checkpoints are lost when the process exits")
	}
	warnIgnoredPerformance(cfg.Performance, log)
	repo, err := checkpoint.InitRepo(ctx, s, jobID, cfg.KeyGroups)
	if err != nil {
		s.Close()
		return nil, err
	}
	m.store, m.repo = s, repo
	return m, nil
}

// openBackend opens the store the backend type names, through the same
// factory as the CLI (checkpoint.Open), so that the address StoreAddress
// returns opens the same store in `arkstate checkpoint ...`.
func openBackend(ctx context.Context, cfg config.EnhancedStateConfig, jobID string, log *slog.Logger) (store.Store, error) {
	address, opts, err := StoreAddress(cfg, jobID)
	if err != nil {
		return nil, err
	}
	opts.Hybrid.Logger = log
	return checkpoint.Open(ctx, address, opts)
}

// StoreAddress returns the store address the state block names, as the CLI
// takes it (a path, s3://bucket/prefix or hybrid:///dir?remote=s3://...),
// and the options an address cannot carry: the S3 endpoint, region and
// credentials.
func StoreAddress(cfg config.EnhancedStateConfig, jobID string) (string, store.OpenOptions, error) {
	var opts store.OpenOptions
	s3Address := func() (string, error) {
		s3 := cfg.S3Config
		if s3 == nil {
			return "", fmt.Errorf("state: backend_type %s needs s3_config", cfg.BackendType)
		}
		opts.S3 = s3.Options()
		opts.S3.Concurrency = cfg.Performance.MaxConcurrentUploads
		u := url.URL{Scheme: "s3", Host: s3.Bucket}
		if p := strings.Trim(s3.Prefix, "/"); p != "" {
			u.Path = "/" + p
		}
		return u.String(), nil
	}
	switch cfg.BackendType {
	case config.StateBackendMemory:
		return "mem://" + url.PathEscape(jobID), opts, nil
	case config.StateBackendLocal:
		return cfg.Path, opts, nil
	case config.StateBackendS3:
		a, err := s3Address()
		return a, opts, err
	case config.StateBackendHybrid:
		remote, err := s3Address()
		if err != nil {
			return "", opts, err
		}
		a, err := store.HybridAddress(cfg.Path, remote)
		return a, opts, err
	}
	return "", opts, fmt.Errorf("state: unknown backend_type %q", cfg.BackendType)
}

// Repo returns the checkpoint store, nil when state is disabled.
func (m *Manager) Repo() *checkpoint.Repo { return m.repo }

// Options returns the runner options the configuration asks for.
func (m *Manager) Options(owner string) Options {
	if m.repo == nil {
		return Options{Logger: m.log}
	}
	interval := time.Duration(m.cfg.CheckpointIntervalMS) * time.Millisecond
	opts := Options{
		Repo:     m.repo,
		Interval: interval,
		Retained: m.cfg.RetainedCheckpoints,
		Segment:  format.SegmentWriterOptions{Level: zstd.EncoderLevelFromZstd(m.cfg.Performance.CompressionLevel)},
		Logger:   m.log,
		Owner:    owner,
		LeaseTTL: m.leaseTTL(interval),
	}
	if x := m.cfg.Txlog; x.Enabled {
		opts.Txlog = &TxlogOptions{
			Dir:   x.Dir,
			Store: m.store,
			Log: txlog.Options{
				Sync:        syncPolicies[x.Durability],
				Interval:    time.Duration(x.SyncIntervalMS) * time.Millisecond,
				SegmentSize: x.SegmentBytes,
			},
			Retention: time.Duration(x.RetentionMS) * time.Millisecond,
		}
		if m.cfg.BackendType == config.StateBackendLocal && (x.Dir == "" || sameDir(x.Dir, m.cfg.Path)) {
			// A local store's root: the segments are its txlog/ objects.
			opts.Txlog.Dir, opts.Txlog.Store = m.cfg.Path, nil
		}
	}
	return opts
}

// syncPolicies maps the configuration's durability to the log's policy.
var syncPolicies = map[config.Durability]txlog.SyncPolicy{
	config.DurabilityPerEntry:    txlog.SyncEach,
	config.DurabilityGroupCommit: txlog.SyncGroup,
	config.DurabilityPeriodic:    txlog.SyncInterval,
}

// leaseTTL is the configured lease TTL, or the larger of 30 s and three
// checkpoint intervals.
func (m *Manager) leaseTTL(interval time.Duration) time.Duration {
	if m.cfg.LeaseTTLMS > 0 {
		return time.Duration(m.cfg.LeaseTTLMS) * time.Millisecond
	}
	return max(30*time.Second, 3*interval)
}

// HealthStatus reports whether the store answers.
func (m *Manager) HealthStatus(ctx context.Context) error {
	if m.repo == nil {
		return nil
	}
	_, err := m.repo.IDs(ctx)
	return err
}

// Close releases the store.
func (m *Manager) Close() error {
	if m.store == nil {
		return nil
	}
	return m.store.Close()
}

// warnIgnoredPerformance says which performance settings of ArkFlow's state-management document were
// changed from their defaults but have no effect here, rather than letting a
// user believe they took: segments are always zstd-compressed (the format
// checksums and indexes compressed blocks), a checkpoint already writes one
// segment per operator and key-group range, so there is nothing smaller to
// batch, and there is no read cache to size.
func warnIgnoredPerformance(p config.PerformanceConfig, log *slog.Logger) {
	d := config.DefaultPerformance()
	if !p.EnableCompression {
		log.Warn("state.performance.enable_compression: false has no effect; segments are always zstd-compressed (compression_level 1 is the fastest)")
	}
	if p.EnableBatching != d.EnableBatching || p.BatchSizeBytes != d.BatchSizeBytes {
		log.Warn("state.performance.enable_batching and batch_size_bytes have no effect; each checkpoint writes one segment per operator and key-group range")
	}
	if p.CacheSizeBytes != d.CacheSizeBytes {
		log.Warn("state.performance.cache_size_bytes has no effect; restores read segments straight from the store")
	}
}

// sameDir reports whether a and b name the same directory, as far as their
// absolute, cleaned paths tell.
func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
