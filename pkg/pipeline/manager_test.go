package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/pipeline/config"
	"github.com/arkstate/arkstate/pkg/store"
)

// The performance block's zstd level reaches the segment writer, and the
// settings of ArkFlow's state-management document that have no effect here say so in the log instead of
// being silently dropped.
func TestManager_Performance(t *testing.T) {
	for _, c := range []struct {
		level int
		want  zstd.EncoderLevel
	}{{1, zstd.SpeedFastest}, {3, zstd.SpeedDefault}, {7, zstd.SpeedBetterCompression}, {19, zstd.SpeedBestCompression}} {
		cfg := config.DefaultState()
		cfg.Enabled, cfg.BackendType, cfg.Path = true, config.StateBackendLocal, filepath.Join(t.TempDir(), "state")
		cfg.Performance.CompressionLevel = c.level
		var logged bytes.Buffer
		m, err := NewManager(context.Background(), cfg, "job", slog.New(slog.NewTextHandler(&logged, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Options("me").Segment.Level; got != c.want {
			t.Errorf("compression_level %d: segment level %v, want %v", c.level, got, c.want)
		}
		if logged.Len() != 0 {
			t.Errorf("default settings logged: %s", logged.String())
		}
		m.Close()
	}

	cfg := config.DefaultState()
	cfg.Enabled, cfg.BackendType, cfg.Path = true, config.StateBackendLocal, filepath.Join(t.TempDir(), "state")
	cfg.Performance.EnableCompression = false
	cfg.Performance.BatchSizeBytes = 1 << 20
	cfg.Performance.CacheSizeBytes = 0
	var logged bytes.Buffer
	m, err := NewManager(context.Background(), cfg, "job", slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, want := range []string{"enable_compression: false has no effect", "batch_size_bytes have no effect", "cache_size_bytes has no effect"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logged.String())
		}
	}
}

// Options.Segment is what the checkpoints' segments are written with.
func TestRunner_SegmentOptions(t *testing.T) {
	dir := t.TempDir()
	writeWords(t, filepath.Join(dir, "input.txt"), 2000, 300, 4)
	repo := openRepo(t, dir)
	r, err := NewRunner(wordCountSpec(t, dir, 1), Options{Repo: repo, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r.opts.Segment.BlockSize = 256
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := repo.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := repo.Manifest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range m.Operators {
		for _, rs := range op.Ranges {
			for _, ref := range rs.Layers {
				seg, _, err := repo.OpenSegment(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				// 300 words in 256-byte blocks: many blocks, where the default would make one.
				if info := seg.Info(); info.Blocks < 4 || info.RawSize/int64(info.Blocks) > 300 {
					t.Errorf("segment %s: %d blocks for %d raw bytes; BlockSize 256 was not used", ref.Hash[:8], info.Blocks, info.RawSize)
				}
			}
		}
	}
}

// A runner over a hybrid store reports its copying to the remote side.
func TestRunner_StatusReplication(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeWords(t, filepath.Join(dir, "input.txt"), 1000, 100, 6)
	local, err := store.NewDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	h := store.NewHybridWithOptions(local, store.NewMem("remote"), store.HybridOptions{Layout: checkpoint.HybridLayout()})
	defer h.Close()
	repo, err := checkpoint.InitRepo(ctx, h, "wordcount", 128)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(wordCountSpec(t, dir, 1), Options{Repo: repo, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	if st.Replication == nil || st.Replication.Queued != 0 || st.Replication.Copied == 0 || st.Replication.CopiedBytes == 0 {
		t.Fatalf("replication after Flush: %+v", st.Replication)
	}
	if plain := (&Runner{opts: Options{Repo: openRepo(t, t.TempDir())}}).Status(); plain.Replication != nil {
		t.Fatalf("a directory store reports replication: %+v", plain.Replication)
	}
}
