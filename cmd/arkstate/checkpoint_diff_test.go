package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
)

// Helpers shared by the tests of diff, restore, prune and gc.

// opsFixture copies a store of testdata/checkpoints into a temporary
// directory, so a command that writes cannot change the fixture.
func opsFixture(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("../../testdata/checkpoints", name))); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckpointDiffCmd(t *testing.T) {
	dir, _ := checkpointtest.StandardDir(t)

	t.Run("OK", func(t *testing.T) {
		stdout, stderr, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "diff", dir, "1", "latest")
		if code != exitOK || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		for _, want := range []string{"checkpoint 1 -> 3: 383 keys differ (227 added, 10 removed, 146 changed)", "windows", "dedupe"} {
			if !strings.Contains(stdout, want) {
				t.Fatalf("output lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("OKJSON", func(t *testing.T) {
		stdout, stderr, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "diff", dir, "2", "3", "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var sum checkpoint.DiffSummary
		if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.A != 2 || sum.B != 3 || sum.Added != 167 || sum.Removed != 10 || sum.Changed != 66 || len(sum.Operators) != 2 ||
			sum.Operators[0].States[0].State != "count" || sum.Operators[0].States[0].Removed != 10 {
			t.Fatalf("summary %+v", sum)
		}
	})

	t.Run("OKKeysJSONLines", func(t *testing.T) {
		stdout, stderr, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "diff", dir, "1", "2", "--keys", "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var keys []diffKeyLine
		var summary map[string]any
		sc := bufio.NewScanner(strings.NewReader(stdout))
		for sc.Scan() {
			var probe struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			switch probe.Type {
			case "key":
				var k diffKeyLine
				if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			case "summary":
				if err := json.Unmarshal(sc.Bytes(), &summary); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("line of type %q", probe.Type)
			}
		}
		if len(keys) != 140 || summary == nil || summary["changed_count"] != float64(80) || summary["added_count"] != float64(60) {
			t.Fatalf("%d keys, summary %v", len(keys), summary)
		}
		for _, k := range keys {
			switch k.State {
			case "windows":
				if k.Change != "added" || k.MapKey != "w002" || !strings.HasPrefix(k.Key, "word-") || k.NewSize != 8 {
					t.Fatalf("map key line %+v", k)
				}
			case "count":
				if k.Change != "changed" || base64.StdEncoding.EncodeToString([]byte(k.Key)) != k.StoredKeyB64 || k.OldSize != 8 {
					t.Fatalf("value key line %+v", k)
				}
			}
		}
	})

	t.Run("OKKeysTable", func(t *testing.T) {
		stdout, _, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "diff", dir, "2", "3", "--keys")
		if code != exitOK || !strings.Contains(stdout, "removed  count/count") || !strings.Contains(stdout, "[w003]") {
			t.Fatalf("exit %d:\n%s", code, stdout)
		}
	})

	t.Run("OKIdentical", func(t *testing.T) {
		stdout, _, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "diff", dir, "3", "chk-00000000000000000003", "--exit-code")
		if code != exitOK || !strings.Contains(stdout, "hold the same state") || !strings.Contains(stdout, "4 skipped as identical") {
			t.Fatalf("exit %d:\n%s", code, stdout)
		}
	})

	t.Run("ErrExitCode", func(t *testing.T) {
		stdout, stderr, code := cliUnchanged(t, dir, leaseFiles, "checkpoint", "diff", dir, "2", "3", "--exit-code", "-o", "json")
		if code != exitFindings || stderr != "" || !strings.Contains(stdout, `"changed_count": 66`) {
			t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
		}
	})

	t.Run("ErrUsage", func(t *testing.T) {
		for _, args := range [][]string{
			{"checkpoint", "diff", dir, "1"},
			{"checkpoint", "diff", dir, "1", "x"},
			{"checkpoint", "diff", dir, "1", "9"},
			{"checkpoint", "diff", dir, "1", "2", "-o", "xml"},
		} {
			if _, stderr, code := cliUnchanged(t, dir, leaseFiles, args...); code != exitUsage || strings.Count(stderr, "\n") != 1 {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	})

	t.Run("ErrDamaged", func(t *testing.T) {
		fx := opsFixture(t, "flipped-block-bit")
		_, stderr, code := cliUnchanged(t, fx, leaseFiles, "checkpoint", "diff", fx, "2", "3")
		if code != exitFindings || !strings.Contains(stderr, "segments/fb/fbdaa110") || !strings.Contains(stderr, "checkpoint 3") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}
