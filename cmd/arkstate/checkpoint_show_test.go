package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

func TestCheckpointShowCmd(t *testing.T) {
	dir := filepath.Join(inspectFixtures, "good")
	ctx := context.Background()
	s, err := store.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	repo, err := checkpoint.OpenRepo(ctx, s)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		for _, ref := range []string{"latest", "3", "chk-00000000000000000003"} {
			stdout, stderr, code := cliUnchanged(t, dir, nil, "checkpoint", "show", dir, ref, "-o", "json")
			if code != exitOK {
				t.Fatalf("%s: exit %d: %s", ref, code, stderr)
			}
			// The JSON is the manifest's content in the CLI's vocabulary.
			var got struct {
				SchemaVersion int       `json:"schema_version"`
				CheckpointID  uint64    `json:"checkpoint_id"`
				Parent        uint64    `json:"parent_checkpoint_id"`
				CreatedAt     time.Time `json:"created_at"`
				Operators     []struct {
					Operator string `json:"operator"`
					States   []struct {
						State string `json:"state"`
						TTLMS int64  `json:"ttl_ms"`
					} `json:"states"`
					Ranges []struct {
						First  uint32 `json:"first_key_group"`
						Last   uint32 `json:"last_key_group"`
						Layers []struct {
							Hash         string `json:"hash"`
							SizeBytes    int64  `json:"size_bytes"`
							EntryCount   uint64 `json:"entry_count"`
							CheckpointID uint64 `json:"checkpoint_id"`
						} `json:"layers"`
					} `json:"ranges"`
				} `json:"operators"`
			}
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			want, err := repo.Manifest(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got.SchemaVersion != schemaVersion || got.CheckpointID != 3 || got.Parent != want.Parent || !got.CreatedAt.Equal(want.CreatedAt) ||
				len(got.Operators) != len(want.Operators) {
				t.Fatalf("%s: show says %+v", ref, got)
			}
			for i, op := range want.Operators {
				g := got.Operators[i]
				if g.Operator != op.ID || len(g.States) != len(op.States) || len(g.Ranges) != len(op.Ranges) {
					t.Fatalf("%s: operator %d: %+v, manifest %+v", ref, i, g, op)
				}
				for j, st := range op.States {
					if g.States[j].State != st.Name || g.States[j].TTLMS != st.TTLMillis {
						t.Fatalf("%s: state %+v, manifest %+v", ref, g.States[j], st)
					}
				}
				for j, r := range op.Ranges {
					gr := g.Ranges[j]
					if gr.First != r.Start || gr.Last != r.End || len(gr.Layers) != len(r.Layers) {
						t.Fatalf("%s: range %+v, manifest %+v", ref, gr, r)
					}
					for k, l := range r.Layers {
						gl := gr.Layers[k]
						if gl.Hash != l.Hash || gl.SizeBytes != l.Size || gl.EntryCount != l.Entries || gl.CheckpointID != l.Checkpoint {
							t.Fatalf("%s: layer %+v, manifest %+v", ref, gl, l)
						}
					}
				}
			}
		}
		table, _, code := cliUnchanged(t, dir, nil, "checkpoint", "show", dir, "latest")
		for _, want := range []string{"incremental (parent 2)", "operator count: states", "operator dedupe: ranges", "windows", "string/uint64", `{"offset":3000}`} {
			if code != exitOK || !strings.Contains(table, want) {
				t.Fatalf("table lacks %q (exit %d):\n%s", want, code, table)
			}
		}
	})
	t.Run("OKSegments", func(t *testing.T) {
		stdout, _, code := cliUnchanged(t, dir, nil, "checkpoint", "show", dir, "latest", "--segments", "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		inspectGolden(t, "checkpoint-show/good-latest-segments.json", stdout)
		var got struct {
			Segments []checkpoint.SegmentLayout `json:"segments"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Segments) != 12 {
			t.Fatalf("%d segment layouts, want the 12 distinct segments", len(got.Segments))
		}
		for _, l := range got.Segments {
			if l.Error != "" || len(l.Blocks) == 0 || l.Object != format.SegmentPath(l.Hash) {
				t.Fatalf("layout %+v", l)
			}
		}
		table, _, _ := cliUnchanged(t, dir, nil, "checkpoint", "show", dir, "latest", "--segments")
		if strings.Count(table, "\nsegment ") != 12 || !strings.Contains(table, "crc32c") {
			t.Fatalf("table lacks the 12 segment layouts:\n%s", table)
		}
	})
	t.Run("ErrDamagedSegment", func(t *testing.T) {
		bad := filepath.Join(inspectFixtures, "truncated-segment")
		stdout, _, code := cliUnchanged(t, bad, nil, "checkpoint", "show", bad, "latest", "--segments", "-o", "json")
		if code != exitFindings || !strings.Contains(stdout, `"error": "segments/`) {
			t.Fatalf("exit %d, want 1 with the layout's error:\n%s", code, stdout)
		}
	})
	t.Run("ErrDamagedManifest", func(t *testing.T) {
		bad := filepath.Join(inspectFixtures, "manifest-bad-checksum")
		stdout, stderr, code := cliUnchanged(t, bad, nil, "checkpoint", "show", bad, "3")
		if code != exitFindings || stdout != "" || !strings.Contains(stderr, "checksum mismatch") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		for _, args := range [][]string{{dir, "9"}, {dir, "x"}, {dir, "0"}, {dir}, {dir, "latest", "-o", "toml"}} {
			_, stderr, code := cliUnchanged(t, dir, nil, append([]string{"checkpoint", "show"}, args...)...)
			if code != exitUsage || stderr == "" {
				t.Errorf("show %v: exit %d, stderr %q; want 2", args, code, stderr)
			}
		}
	})
}
