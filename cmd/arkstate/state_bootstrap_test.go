package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/store"
)

// bootstrapSource dumps the standard job and writes its descriptors, as a
// batch job that computed the state would hand them over.
func bootstrapSource(t *testing.T) (dump, statesFile string) {
	t.Helper()
	root, j := checkpointtest.StandardDir(t)
	dump, errOut, code := cliRun(t, "", "state", "dump", root, "latest")
	if code != exitOK || len(stateLines(dump)) != 1617 {
		t.Fatalf("dump: exit %d, stderr %q", code, errOut)
	}
	m, err := j.Repo.Manifest(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m.Operators) // ranges and all: only ids and states are read
	if err != nil {
		t.Fatal(err)
	}
	return dump, stateWrite(t, "states.json", string(b))
}

func sortedLines(s string) []string {
	l := stateLines(s)
	slices.Sort(l)
	return l
}

func sameLines(a, b string) bool { return slices.Equal(sortedLines(a), sortedLines(b)) }

type importReport struct {
	CheckpointID uint64 `json:"checkpoint_id"`
	Created      bool   `json:"created"`
	Entries      int64  `json:"entry_count"`
	Deleted      int64  `json:"deleted_count"`
	Missing      []struct {
		Line int    `json:"line"`
		Key  string `json:"key"`
	} `json:"missing"`
}

func decodeImport(t *testing.T, out string) importReport {
	t.Helper()
	var rep importReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("import report %q: %v", out, err)
	}
	return rep
}

// TestStateImport_Bootstrap creates stores from an import (a directory that
// does not exist, an empty one, an empty S3 prefix), then deletes entries
// from them with delete lines, and checks what each step refuses.
func TestStateImport_Bootstrap(t *testing.T) {
	dump, states := bootstrapSource(t)
	from := stateWrite(t, "state.jsonl", dump)
	create := []string{"--job-id", checkpointtest.JobID, "--key-groups", "128", "--states", states, "-o", "json"}

	srv, err := s3test.Start(context.Background())
	if err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	setAWSEnv(t, srv.AccessKey, srv.SecretKey)
	bucket := srv.NewBucket(t)
	s3flags := []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style"}

	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
		flags []string
	}{
		{"MissingDir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "a", "new", "store") }, nil},
		{"EmptyDir", func(t *testing.T) string { return t.TempDir() }, nil},
		{"EmptyS3Prefix", func(t *testing.T) string { return "s3://" + bucket + "/" + strings.ReplaceAll(t.Name(), "/", "-") }, s3flags},
		{"Hybrid", func(t *testing.T) string {
			a, err := store.HybridAddress(filepath.Join(t.TempDir(), "local"), "s3://"+bucket+"/hybrid")
			if err != nil {
				t.Fatal(err)
			}
			return a
		}, s3flags},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.store(t)
			run := func(stdin string, args ...string) (stdout, stderr string, code int) {
				return cliRun(t, stdin, append(args, tc.flags...)...)
			}
			out, errOut, code := run("", append([]string{"state", "import", store, "--from", from}, create...)...)
			if code != exitOK {
				t.Fatalf("bootstrap import: exit %d, stderr %q", code, errOut)
			}
			if rep := decodeImport(t, out); !rep.Created || rep.CheckpointID != 1 || rep.Entries != 1617 {
				t.Fatalf("report %+v", rep)
			}
			// A new store has one key-group range per operator, so the
			// dump's order differs from the source's; its lines do not.
			if got, errOut, code := run("", "state", "dump", store, "latest"); code != exitOK || !sameLines(got, dump) {
				g, w := sortedLines(got), sortedLines(dump)
				for i := range min(len(g), len(w)) {
					if g[i] != w[i] {
						t.Fatalf("dump of the created store: exit %d, stderr %q; line %d is\n%s\nwant\n%s", code, errOut, i+1, g[i], w[i])
					}
				}
				t.Fatalf("dump of the created store: exit %d, stderr %q; %d lines, want %d", code, errOut, len(g), len(w))
			}
			if out, errOut, code := run("", "checkpoint", "verify", store, "--all", "--deep"); code != exitOK {
				t.Fatalf("verify of the created store: exit %d\n%s%s", code, out, errOut)
			}
			// A second bootstrap into the now existing store is an ordinary
			// import; --job-id is checked against the store.
			_, errOut, code = run("", []string{"state", "import", store, "--from", from, "--job-id", "other-job"}...)
			if code != exitUsage || !strings.Contains(errOut, `belongs to job "`+checkpointtest.JobID+`"`) {
				t.Fatalf("import with another --job-id: exit %d, stderr %q", code, errOut)
			}

			// Deletes: an existing value entry, a missing key, a map entry.
			var window struct {
				Key    string `json:"key"`
				MapKey string `json:"map_key"`
			}
			for _, l := range stateLines(dump) {
				if strings.Contains(l, `"state":"windows"`) {
					if err := json.Unmarshal([]byte(l), &window); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			windowLine := `"state":"windows","key":"` + window.Key + `","map_key":"` + window.MapKey + `",`
			deletes := `{"operator":"count","state":"count","key":"word-00001","deleted":true}
{"operator":"count","state":"count","key":"never-seen","deleted":true}
{"operator":"count",` + windowLine + `"deleted":true}
`
			out, errOut, code = run(deletes, "state", "import", store, "--from", "-", "--incremental", "-o", "json")
			if code != exitOK {
				t.Fatalf("delete import: exit %d, stderr %q", code, errOut)
			}
			rep := decodeImport(t, out)
			if rep.Created || rep.CheckpointID != 2 || rep.Deleted != 2 || len(rep.Missing) != 1 || rep.Missing[0].Line != 2 || rep.Missing[0].Key != "never-seen" {
				t.Fatalf("delete report %+v", rep)
			}
			if !strings.Contains(errOut, `<stdin>:2: operator "count" state "count" key "never-seen": no such entry`) {
				t.Fatalf("the missing entry is not reported on stderr: %q", errOut)
			}
			after, _, _ := run("", "state", "dump", store, "latest")
			var wantLines []string
			for _, l := range stateLines(dump) {
				if strings.Contains(l, `"state":"count","key":"word-00001",`) ||
					strings.Contains(l, windowLine) {
					continue
				}
				wantLines = append(wantLines, l)
			}
			if len(wantLines) != 1615 {
				t.Fatalf("fixture: %d lines left after removing the two deleted entries, want 1615", len(wantLines))
			}
			if !sameLines(after, strings.Join(wantLines, "\n")) {
				t.Fatalf("dump after the deletes has %d lines, want %d", len(stateLines(after)), len(wantLines))
			}
			if tc.name == "Hybrid" {
				// Every write reached the remote copy: the S3 prefix alone
				// dumps the same.
				remote, _, _ := cliRun(t, "", append([]string{"state", "dump", "s3://" + bucket + "/hybrid", "latest"}, s3flags...)...)
				if !sameLines(remote, after) {
					t.Fatalf("the remote side of the hybrid store dumps %d lines, the hybrid store %d", len(stateLines(remote)), len(stateLines(after)))
				}
			}
		})
	}

	t.Run("ErrNothingWritten", func(t *testing.T) {
		good := `{"operator":"count","state":"count","key":"a","value":1}`
		for _, tc := range []struct {
			name, input, stderr string
			args                []string
		}{
			{name: "NoJobID", input: good, args: []string{"--states", states}, stderr: "--job-id"},
			{name: "NoStates", input: good, args: []string{"--job-id", "j"}, stderr: "--states"},
			{name: "Incremental", input: good, args: []string{"--job-id", "j", "--states", states, "--incremental"}, stderr: "incremental"},
			{name: "BadLine", input: good + "\n" + `{"operator":"count","state":"count","key":"b","value":-5}`, args: []string{"--job-id", "j", "--states", states}, stderr: `in.jsonl:2: field "value"`},
			{name: "UnknownOperator", input: `{"operator":"nope","state":"count","key":"a","value":1}`, args: []string{"--job-id", "j", "--states", states}, stderr: `in.jsonl:1: field "operator"`},
			{name: "DeleteInFullImport", input: `{"operator":"count","state":"count","key":"a","deleted":true}`, args: []string{"--job-id", "j", "--states", states}, stderr: `in.jsonl:1: field "deleted"`},
			{name: "BadKeyGroups", input: good, args: []string{"--job-id", "j", "--states", states, "--key-groups", "0"}, stderr: "--key-groups 0"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				parent := t.TempDir()
				store := filepath.Join(parent, "store")
				in := stateWrite(t, "in.jsonl", tc.input)
				out, errOut, code := cliRun(t, "", append([]string{"state", "import", store, "--from", in}, tc.args...)...)
				if code != exitUsage || out != "" || !strings.Contains(errOut, tc.stderr) {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", code, out, errOut, tc.stderr)
				}
				if _, err := os.Stat(store); !os.IsNotExist(err) {
					t.Fatalf("a refused import created %s: %v", store, err)
				}
				// The same into an empty S3 prefix leaves it empty.
				addr := "s3://" + bucket + "/refused-" + tc.name
				if _, errOut, code := cliRun(t, "", append(append([]string{"state", "import", addr, "--from", in}, tc.args...), s3flags...)...); code != exitUsage {
					t.Fatalf("into S3: exit %d, stderr %q", code, errOut)
				}
				if out, _, code := cliRun(t, "", append([]string{"checkpoint", "ls", addr}, s3flags...)...); code != exitUsage {
					t.Fatalf("a refused import made %s a store: exit %d, %s", addr, code, out)
				}
			})
		}
		t.Run("NotEmptyDir", func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := fmt.Sprint(checkpointtest.TreeHashes(t, dir))
			_, errOut, code := cliRun(t, "", append([]string{"state", "import", dir, "--from", from}, create...)...)
			if code != exitUsage || !strings.Contains(errOut, "not empty") {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if fmt.Sprint(checkpointtest.TreeHashes(t, dir)) != before {
				t.Fatal("a refused import changed the directory")
			}
		})
	})
}

// TestExamples_WordCountFromImport starts the word count from a store that
// state import created: the imported count is where the job's counting of
// that word begins.
func TestExamples_WordCountFromImport(t *testing.T) {
	dir := copyExample(t, "word_count")
	states := stateWrite(t, "states.json", `[{"id":"wordcount/1-count","states":[{"name":"count","kind":"value","codec":"uint64"}]}]`)
	in := stateWrite(t, "in.jsonl", `{"operator":"wordcount/1-count","state":"count","key":"exactly","value":1000}`+"\n")
	_, errOut, code := cliRun(t, "", "state", "import", filepath.Join(dir, "state"), "--from", in,
		"--job-id", "wordcount", "--key-groups", "128", "--states", states)
	if code != exitOK {
		t.Fatalf("bootstrap import: exit %d, stderr %q", code, errOut)
	}
	runExample(t, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "out", "part-*.jsonl"))
	counts := map[string][]uint64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			var rec struct {
				Key   string `json:"key"`
				Count uint64 `json:"count"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			counts[rec.Key] = append(counts[rec.Key], rec.Count)
		}
	}
	for k, cs := range counts {
		slices.Sort(cs)
		first := uint64(1)
		if k == "exactly" {
			first = 1001
		}
		for i, c := range cs {
			if c != first+uint64(i) {
				t.Fatalf("%q: committed counts %v..., want them to run from %d", k, cs[:min(5, len(cs))], first)
			}
		}
	}
	if len(counts["exactly"]) == 0 {
		t.Fatal("the input has no \"exactly\"; the test shows nothing")
	}
}

// The "operators" of checkpoint show's JSON are a --states file as they
// are: a store dumped, and imported with its own descriptors into a new
// directory, holds the same entries.
func TestStateImport_StatesFromShow(t *testing.T) {
	good := copyFixtureStore(t, filepath.Join(inspectFixtures, "good"))
	show, stderr, code := cliRun(t, "", "checkpoint", "show", good, "latest", "-o", "json")
	var doc struct {
		Operators json.RawMessage `json:"operators"`
	}
	if code != exitOK || json.Unmarshal([]byte(show), &doc) != nil {
		t.Fatalf("show: exit %d: %s", code, stderr)
	}
	states := stateWrite(t, "states.json", string(doc.Operators))
	dump, stderr, code := cliRun(t, "", "state", "dump", good, "latest")
	if code != exitOK {
		t.Fatalf("dump: exit %d: %s", code, stderr)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, stderr, code := cliRun(t, "", "state", "import", fresh, "--from", stateWrite(t, "state.jsonl", dump),
		"--job-id", checkpointtest.JobID, "--key-groups", "128", "--states", states); code != exitOK {
		t.Fatalf("import with show's operators as --states: exit %d: %s", code, stderr)
	}
	again, _, _ := cliRun(t, "", "state", "dump", fresh, "latest")
	if !sameLines(dump, again) {
		t.Fatalf("the new store's dump differs from the source's")
	}
}
