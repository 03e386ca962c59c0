package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

func stateWrite(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func stateLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestStateDump(t *testing.T) {
	root, _ := checkpointtest.StandardDir(t)
	t.Run("OK", func(t *testing.T) {
		before := fmt.Sprint(checkpointtest.TreeHashes(t, root))
		out, errOut, code := cliRun(t, "", "state", "dump", root, "latest")
		if code != exitOK || errOut != "" {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		lines := stateLines(out)
		if len(lines) != 1617 {
			t.Fatalf("%d lines, want 1617", len(lines))
		}
		for _, l := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["operator"] == nil || rec["state"] == nil || rec["key"] == nil || rec["value"] == nil {
				t.Fatalf("line %s: %v", l, err)
			}
		}
		if !strings.Contains(out, `{"operator":"count","state":"windows","key":"word-00000","map_key":"w002","value":0}`+"\n") {
			t.Fatal("no map-state line for word-00000")
		}
		if fmt.Sprint(checkpointtest.TreeHashes(t, root)) != before {
			t.Fatal("state dump changed the store")
		}
		// The same checkpoint by number and by directory name, and -o json.
		for _, args := range [][]string{{"3"}, {"chk-00000000000000000003"}, {"latest", "-o", "json"}} {
			again, _, _ := cliRun(t, "", append([]string{"state", "dump", root}, args...)...)
			if again != out {
				t.Fatalf("dump %v differs from dump latest", args)
			}
		}
	})
	t.Run("OKFilters", func(t *testing.T) {
		all, _, _ := cliRun(t, "", "state", "dump", root, "latest")
		cases := []struct {
			args []string
			keep func(string) bool
		}{
			{[]string{"--operator", "dedupe"}, func(l string) bool { return strings.Contains(l, `"operator":"dedupe"`) }},
			{[]string{"--state", "windows"}, func(l string) bool { return strings.Contains(l, `"state":"windows"`) }},
			{[]string{"--key", "word-00552"}, func(l string) bool { return strings.Contains(l, `"key":"word-00552"`) }},
			{[]string{"--operator", "count", "--state", "count", "--key", "word-00001"}, func(l string) bool {
				return strings.Contains(l, `"state":"count","key":"word-00001"`)
			}},
		}
		for _, tc := range cases {
			var want strings.Builder
			for _, l := range stateLines(all) {
				if tc.keep(l) {
					want.WriteString(l + "\n")
				}
			}
			got, errOut, code := cliRun(t, "", append([]string{"state", "dump", root, "latest"}, tc.args...)...)
			if code != exitOK || got != want.String() || got == "" {
				t.Fatalf("dump %v: exit %d %q\ngot  %q\nwant %q", tc.args, code, errOut, got, want.String())
			}
		}
	})
	errCases := []struct {
		name string
		args []string
	}{
		{"ErrUnknownCheckpoint", []string{"state", "dump", root, "9"}},
		{"ErrBadReference", []string{"state", "dump", root, "nine"}},
		{"ErrUnknownOperator", []string{"state", "dump", root, "latest", "--operator", "nope"}},
		{"ErrUnknownState", []string{"state", "dump", root, "latest", "--state", "nope"}},
		{"ErrYAML", []string{"state", "dump", root, "latest", "-o", "yaml"}},
		{"ErrNotAStore", []string{"state", "dump", t.TempDir(), "latest"}},
		{"ErrArgs", []string{"state", "dump", root}},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprint(checkpointtest.TreeHashes(t, root))
			out, errOut, code := cliRun(t, "", tc.args...)
			if code != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout, one line on stderr", code, out, errOut)
			}
			if fmt.Sprint(checkpointtest.TreeHashes(t, root)) != before {
				t.Fatal("a failed dump changed the store")
			}
		})
	}
}

func TestStateImport(t *testing.T) {
	t.Run("OKRoundTrip", func(t *testing.T) {
		root, j := checkpointtest.StandardDir(t)
		a, _, _ := cliRun(t, "", "state", "dump", root, "latest")
		file := stateWrite(t, "a.jsonl", a)
		out, errOut, code := cliRun(t, "", "state", "import", root, "--from", file)
		if code != exitOK || !strings.Contains(out, "checkpoint:") || !strings.Contains(out, " 4\n") || !strings.Contains(out, "1617") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		b, _, _ := cliRun(t, "", "state", "dump", root, "latest")
		if a != b {
			t.Fatal("dump after import differs from the dump imported")
		}
		// The restored engine state is the original's.
		ctx := context.Background()
		m, err := j.Repo.Manifest(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		be, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Repo.RestoreBackend(ctx, m, "count", be); err != nil {
			t.Fatal(err)
		}
		counts, err := state.NewValue(be, state.Descriptor[uint64]{Name: "count"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 660 {
			w := checkpointtest.Word(i)
			got, gotOK, err := counts.Get(w)
			want, wantOK := j.Count(t, w)
			if err != nil || got != want || gotOK != wantOK {
				t.Fatalf("%s: restored %d/%t (%v), live job %d/%t", w, got, gotOK, err, want, wantOK)
			}
		}
	})
	t.Run("OKJSONIncrementalStdin", func(t *testing.T) {
		root, _ := checkpointtest.StandardDir(t)
		lines := `{"operator":"count","state":"count","key":"word-00001","value":77}` + "\n"
		out, errOut, code := cliRun(t, lines, "state", "import", root, "--from", "-", "--incremental", "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep["checkpoint_id"] != 4.0 || rep["entry_count"] != 1.0 || rep["kind"] != "incremental" || rep["parent_checkpoint_id"] != 3.0 || rep["written_segment_count"] != 1.0 {
			t.Fatalf("report %v", rep)
		}
		got, _, _ := cliRun(t, "", "state", "dump", root, "latest", "--key", "word-00001", "--state", "count")
		if got != lines {
			t.Fatalf("dump after the upsert: %q", got)
		}
	})
	t.Run("OKStatesIntoEmptyStore", func(t *testing.T) {
		root, _ := checkpointtest.StandardDir(t)
		a, _, _ := cliRun(t, "", "state", "dump", root, "latest", "--operator", "dedupe")
		empty := t.TempDir()
		s, err := store.NewDir(empty)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := checkpoint.InitRepo(context.Background(), s, checkpointtest.JobID, checkpointtest.KeyGroups); err != nil {
			t.Fatal(err)
		}
		states := stateWrite(t, "states.json", `[{"id":"dedupe","states":[{"name":"seen","kind":"list","codec":"string","ttl_millis":0}]}]`)
		out, errOut, code := cliRun(t, "", "state", "import", empty, "--from", stateWrite(t, "a.jsonl", a), "--states", states, "-o", "json")
		if code != exitOK || !strings.Contains(out, `"checkpoint_id": 1`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		b, _, _ := cliRun(t, "", "state", "dump", empty, "latest")
		if len(stateLines(b)) != 217 || len(b) != len(a) {
			t.Fatalf("dump of the new store has %d lines (%d bytes), want 217 (%d bytes)", len(stateLines(b)), len(b), len(a))
		}
	})
	t.Run("OKS3", func(t *testing.T) {
		srv, err := s3test.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop() })
		bucket := srv.NewBucket(t)
		s, err := store.NewS3(context.Background(), bucket, "job", store.S3Options{
			Endpoint: srv.Endpoint, Region: s3test.Region, PathStyle: true, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
			MaxBackoff: 20 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		checkpointtest.Standard(t, s)
		setAWSEnv(t, srv.AccessKey, srv.SecretKey)
		addr := "s3://" + bucket + "/job"
		flags := []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style", "--s3-region", s3test.Region}
		a, errOut, code := cliRun(t, "", append([]string{"state", "dump", addr, "latest"}, flags...)...)
		if code != exitOK || len(stateLines(a)) != 1617 {
			t.Fatalf("dump: exit %d, %d lines, stderr %q", code, len(stateLines(a)), errOut)
		}
		out, errOut, code := cliRun(t, "", append([]string{"state", "import", addr, "--from", stateWrite(t, "a.jsonl", a), "-o", "json"}, flags...)...)
		if code != exitOK || !strings.Contains(out, `"checkpoint_id": 4`) {
			t.Fatalf("import: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		b, _, _ := cliRun(t, "", append([]string{"state", "dump", addr, "latest"}, flags...)...)
		if a != b {
			t.Fatal("dump after import differs from the dump imported")
		}
	})

	good := `{"operator":"count","state":"count","key":"a","value":1}`
	errCases := []struct {
		name   string
		input  string
		args   []string
		stderr string
	}{
		{name: "ErrMalformedLine", input: good + "\n" + good[:20] + "\n", stderr: "in.jsonl:2: "},
		{name: "ErrBadField", input: good + "\n" + `{"operator":"count","state":"count","key":"b","value":-5}` + "\n", stderr: `in.jsonl:2: field "value"`},
		{name: "ErrUnknownOperator", input: `{"operator":"nope","state":"count","key":"a","value":1}`, stderr: `in.jsonl:1: field "operator"`},
		{name: "ErrUnknownState", input: `{"operator":"count","state":"nope","key":"a","value":1}`, stderr: `in.jsonl:1: field "state"`},
		{name: "ErrConflictingStates", input: good, args: []string{"--incremental", "--states", "CONFLICT"}, stderr: "conflicting"},
		{name: "ErrBadStatesFile", input: good, args: []string{"--states", "BAD"}, stderr: "states.json"},
		{name: "ErrNoFrom", args: []string{"--from", ""}, stderr: "--from"},
		{name: "ErrMissingFile", args: []string{"--from", "/nonexistent/in.jsonl"}, stderr: "--from"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			root, _ := checkpointtest.StandardDir(t)
			before := fmt.Sprint(checkpointtest.TreeHashes(t, root))
			in := stateWrite(t, "in.jsonl", tc.input)
			args := []string{"state", "import", root, "--from", in}
			for _, a := range tc.args {
				switch a {
				case "CONFLICT":
					a = stateWrite(t, "states.json", `[{"id":"count","states":[{"name":"count","kind":"value","codec":"int32","ttl_millis":0}]}]`)
				case "BAD":
					a = stateWrite(t, "states.json", `{"not":"an array"}`)
				}
				args = append(args, a)
			}
			out, errOut, code := cliRun(t, "", args...)
			if code != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and one line containing %q", code, out, errOut, tc.stderr)
			}
			if fmt.Sprint(checkpointtest.TreeHashes(t, root)) != before {
				t.Fatal("a failed import changed the store")
			}
		})
	}
}

// state import --dry-run checks every line and says what it would commit,
// and writes nothing: not into a store, and not a new one.
func TestStateImport_DryRun(t *testing.T) {
	dir, _ := checkpointtest.StandardDir(t)
	dump, stderr, code := cliRun(t, "", "state", "dump", dir, "latest")
	if code != exitOK {
		t.Fatalf("dump: exit %d\n%s", code, stderr)
	}
	lines := stateWrite(t, "all.jsonl", dump)
	ids := openDirRepo(t, dir)
	latest, err := ids.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := cliUnchanged(t, dir, nil, "state", "import", dir, "--from", lines, "--dry-run", "-o", "json")
	var rep stateImportReport
	if err := json.Unmarshal([]byte(stdout), &rep); code != exitOK || err != nil || !rep.DryRun || rep.CheckpointID != latest+1 || rep.Entries == 0 || rep.Created {
		t.Fatalf("import --dry-run: exit %d, %v, %+v\n%s%s", code, err, rep, stdout, stderr)
	}
	bad := stateWrite(t, "bad.jsonl", dump+`{"operator":"count","state":"n","key":"x","value":"not a number"}`+"\n")
	if _, stderr, code := cliUnchanged(t, dir, nil, "state", "import", dir, "--from", bad, "--dry-run"); code != exitUsage || !strings.Contains(stderr, "bad.jsonl:") {
		t.Fatalf("import --dry-run of a bad line: exit %d\n%s", code, stderr)
	}
	parent := t.TempDir()
	fresh := filepath.Join(parent, "new-store")
	states := stateWrite(t, "states.json", `[{"id":"dedupe","states":[{"name":"seen","kind":"list","codec":"string","ttl_millis":0}]}]`)
	one := stateWrite(t, "one.jsonl", `{"operator":"dedupe","state":"seen","key":"k","value":["a"]}`+"\n")
	if stdout, stderr, code := cliUnchanged(t, parent, nil, "state", "import", fresh, "--from", one, "--job-id", "j", "--states", states, "--dry-run"); code != exitOK || !strings.Contains(stdout, "would be created") {
		t.Fatalf("import --dry-run into a new store: exit %d\n%s%s", code, stdout, stderr)
	}
}
