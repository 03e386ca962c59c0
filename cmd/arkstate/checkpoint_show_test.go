package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

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
			// The JSON is the manifest's own fields.
			var got format.Manifest
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			want, err := repo.Manifest(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			gotBytes, err := format.EncodeManifest(&got)
			if err != nil {
				t.Fatal(err)
			}
			wantBytes, err := format.EncodeManifest(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotBytes, wantBytes) {
				t.Fatalf("%s: show decodes to\n%s\nthe manifest is\n%s", ref, gotBytes, wantBytes)
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
