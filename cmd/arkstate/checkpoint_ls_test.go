package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
)

func TestCheckpointLsCmd(t *testing.T) {
	for _, c := range inspectCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			dir := filepath.Join(inspectFixtures, c.Name)
			stdout, stderr, code := cliUnchanged(t, dir, nil, "checkpoint", "ls", dir, "-o", "json")
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q: ls lists damage, it does not fail on it", code, stderr)
			}
			inspectGolden(t, "checkpoint-ls/"+c.Name+".json", stdout)
			var res checkpointLsResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatal(err)
			}
			// ls reads manifests only: damage in one shows as a damaged
			// row, damage in a segment not at all.
			var damaged []uint64
			for _, s := range res.Checkpoints {
				if s.Status != checkpoint.StatusOK {
					damaged = append(damaged, s.ID)
					if s.Error == "" {
						t.Fatalf("damaged row %+v without an error", s)
					}
				}
			}
			// What an unreadable manifest does not tell is absent, never a
			// zero that reads as real.
			var raw struct {
				Checkpoints []map[string]any `json:"checkpoints"`
			}
			if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
				t.Fatal(err)
			}
			for _, r := range raw.Checkpoints {
				if _, known := r["kind"]; known || r["status"] == checkpoint.StatusOK {
					continue
				}
				for _, unknown := range []string{"keys", "keys_exact", "layers", "segments", "logical_bytes", "stored_bytes", "exclusive_bytes", "shared_bytes", "operators"} {
					if v, ok := r[unknown]; ok {
						t.Fatalf("checkpoint %v, whose manifest cannot be read, reports %s = %v", r["id"], unknown, v)
					}
				}
			}
			wantDamaged := c.Name == "manifest-bad-checksum" || c.Name == "missing-parent"
			if wantDamaged != (len(damaged) == 1 && damaged[0] == c.Checkpoint) || (!wantDamaged && len(damaged) > 0) {
				t.Fatalf("damaged rows %v", damaged)
			}

			table, _, code := cliUnchanged(t, dir, nil, "checkpoint", "ls", dir)
			if code != exitOK || !strings.Contains(table, "EXCLUSIVE") || strings.Count(table, "\n") < len(res.Checkpoints)+1 || strings.ContainsAny(table, "│┌─") {
				t.Fatalf("table (exit %d):\n%s", code, table)
			}
			for _, id := range damaged {
				if !strings.Contains(table, "checkpoint "+jsonNumber(id)+": ") {
					t.Fatalf("table does not explain damaged checkpoint %d:\n%s", id, table)
				}
			}
		})
	}
}

func jsonNumber(id uint64) string {
	b, _ := json.Marshal(id)
	return string(b)
}

func TestCheckpointLsCmd_Sizes(t *testing.T) {
	dir := filepath.Join(inspectFixtures, "good")
	stdout, _, code := cliUnchanged(t, dir, nil, "checkpoint", "ls", dir, "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var res checkpointLsResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	// Checkpoint 3 alone references its deltas; 1's bases are shared by all.
	c1, c3 := res.Checkpoints[0], res.Checkpoints[2]
	if c1.ExclusiveBytes != 0 || c1.SharedBytes != c1.StoredBytes || c3.ExclusiveBytes == 0 ||
		c3.ExclusiveBytes+c3.SharedBytes != c3.StoredBytes || c3.StoredBytes > c3.LogicalBytes || c3.Segments != 12 {
		t.Fatalf("sizes %+v / %+v", c1, c3)
	}
	if !c1.KeysExact || c3.KeysExact || c3.Keys < c1.Keys {
		t.Fatalf("keys %+v / %+v", c1, c3)
	}
}

func TestCheckpointLsCmd_ErrUsage(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{{empty}, {}, {empty, "extra"}, {filepath.Join(inspectFixtures, "good"), "-o", "csv"}} {
		_, stderr, code := cliRun(t, "", append([]string{"checkpoint", "ls"}, args...)...)
		if code != exitUsage || stderr == "" {
			t.Errorf("ls %v: exit %d, stderr %q; want 2", args, code, stderr)
		}
	}
}
