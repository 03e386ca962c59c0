package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/golden"
	"github.com/arkstate/arkstate/pkg/monitor"
)

// The CLI's JSON contract (docs/CLI.md, "JSON vocabulary"): every key any
// command prints is in the vocabulary table, with the type the table gives
// it, and every key's name follows the unit rules. cliRun checks every
// JSON output of every test against it; TestJSONContract runs every
// command that has --output and compares its JSON with golden files.

// vocabularyEntry is one key of the vocabulary table.
type vocabularyEntry struct {
	types []string // number, string, time, boolean, array, object, any; "null" where allowed
}

var (
	vocabularyOnce sync.Once
	vocabulary     map[string]vocabularyEntry
	vocabularyErr  error
)

// loadVocabulary reads the vocabulary table from docs/CLI.md: the rows
// between the "## JSON vocabulary" heading and the next "## " heading
// whose first cell names keys in backticks and whose second cell gives
// their type.
func loadVocabulary() (map[string]vocabularyEntry, error) {
	vocabularyOnce.Do(func() {
		data, err := os.ReadFile("../../docs/CLI.md")
		if err != nil {
			vocabularyErr = err
			return
		}
		text := string(data)
		start := strings.Index(text, "\n## JSON vocabulary\n")
		if start < 0 {
			vocabularyErr = fmt.Errorf("docs/CLI.md has no \"## JSON vocabulary\" section")
			return
		}
		section := text[start+1:]
		if end := strings.Index(section[3:], "\n## "); end >= 0 {
			section = section[:end+3]
		}
		vocabulary = map[string]vocabularyEntry{}
		key := regexp.MustCompile("`([a-z0-9_]+)`")
		for _, line := range strings.Split(section, "\n") {
			cells := strings.Split(line, "|")
			if len(cells) < 4 || !strings.HasPrefix(line, "| `") {
				continue
			}
			types := strings.Fields(strings.ReplaceAll(strings.TrimSpace(cells[2]), ",", " "))
			types = slices.DeleteFunc(types, func(s string) bool { return s == "or" })
			for _, m := range key.FindAllStringSubmatch(cells[1], -1) {
				if _, dup := vocabulary[m[1]]; dup {
					vocabularyErr = fmt.Errorf("docs/CLI.md: key %s is in the vocabulary twice", m[1])
					return
				}
				vocabulary[m[1]] = vocabularyEntry{types: types}
			}
		}
		if len(vocabulary) == 0 {
			vocabularyErr = fmt.Errorf("docs/CLI.md: the JSON vocabulary table is empty")
		}
	})
	return vocabulary, vocabularyErr
}

// unitRules are the name rules of the vocabulary: a key's name says what
// its value is.
var unitRules = []struct {
	match func(string) bool
	typ   string
	rule  string
}{
	{isTimeKey, "time", "a time is named time or *_at"},
	{func(k string) bool { return strings.HasSuffix(k, "_bytes") }, "number", "a size is *_bytes"},
	{func(k string) bool { return strings.HasSuffix(k, "_ms") }, "number", "a duration is *_ms"},
	{func(k string) bool { return strings.HasSuffix(k, "_count") }, "number", "a count is *_count"},
	{func(k string) bool { return k == "lsn" || strings.HasSuffix(k, "_lsn") }, "number", "a log position is lsn or *_lsn"},
	{func(k string) bool { return strings.HasSuffix(k, "checkpoint_id") }, "number", "a checkpoint id is *checkpoint_id"},
	{func(k string) bool { return strings.HasSuffix(k, "checkpoint_ids") }, "array", "checkpoint ids are *checkpoint_ids"},
	{func(k string) bool { return strings.HasSuffix(k, "_b64") }, "string", "base64 bytes are *_b64"},
}

func isTimeKey(k string) bool { return k == "time" || strings.HasSuffix(k, "_at") }

// jsonType names v's type in the vocabulary's terms.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return "time"
		}
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// userText are the string keys whose values are the user's (a state key,
// input bytes): one that looks like a time is not a time out of place.
var userText = map[string]bool{"key": true, "map_key": true, "chunk": true}

// vocabularyProblems walks doc and returns what breaks the vocabulary,
// each naming the key's path.
func vocabularyProblems(doc any, path string) []string {
	voc, err := loadVocabulary()
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e, path+"[]")
			}
		case map[string]any:
			for k, e := range v {
				p := path + "." + k
				entry, ok := voc[k]
				got := jsonType(e)
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("%s: key %q is not in the JSON vocabulary of docs/CLI.md (%s)", p, k, got))
				case !typeAllowed(entry.types, got):
					problems = append(problems, fmt.Sprintf("%s: a %s, the vocabulary says %s", p, got, strings.Join(entry.types, " or ")))
				}
				for _, r := range unitRules {
					if r.match(k) && !typeAllowed([]string{r.typ}, got) && got != "null" {
						problems = append(problems, fmt.Sprintf("%s: a %s breaks the rule %q", p, got, r.rule))
					}
				}
				if got == "time" && !isTimeKey(k) && !typeAllowed(entry.types, "any") && !userText[k] {
					problems = append(problems, fmt.Sprintf("%s: a time under a key not named time or *_at", p))
				}
				if ok && !typeAllowed(entry.types, "any") {
					walk(e, p) // a value of type any is user data (a state value, a position): not the vocabulary's
				}
			}
		}
	}
	walk(doc, path)
	return problems
}

func typeAllowed(types []string, got string) bool {
	for _, t := range types {
		if t == got || t == "any" || (t == "string" && got == "time") {
			return true
		}
	}
	return false
}

// checkJSONOutput checks the JSON a command printed against the
// vocabulary when args ask for JSON: one document, or JSON lines.
func checkJSONOutput(t testing.TB, args []string, stdout string) {
	t.Helper()
	if !asksForJSON(args) || strings.TrimSpace(stdout) == "" {
		return
	}
	docs, err := decodeJSONDocs(stdout)
	if err != nil {
		t.Errorf("JSON contract: %v printed what is not JSON (%v):\n%.400s", args, err, stdout)
		return
	}
	for i, d := range docs {
		for _, p := range vocabularyProblems(d, fmt.Sprintf("%s#%d", strings.Join(args[:min(2, len(args))], " "), i+1)) {
			t.Errorf("JSON contract: %s", p)
		}
	}
}

func asksForJSON(args []string) bool {
	if slices.Contains(args, "--help") || slices.Contains(args, "-h") || (len(args) > 0 && args[0] == "__complete") {
		return false
	}
	for i, a := range args {
		if a == "-o=json" || a == "--output=json" || ((a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json") {
			return true
		}
	}
	// state dump writes JSON lines by default.
	return len(args) >= 2 && args[0] == "state" && args[1] == "dump"
}

// decodeJSONDocs decodes one JSON document or a stream of them.
func decodeJSONDocs(s string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, v)
	}
}

// TestJSONVocabulary_Rules checks the checker: each rule finds what it is
// for, so a test that passes through it can fail.
func TestJSONVocabulary_Rules(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want string
	}{
		{`{"checkpoint": 3}`, `key "checkpoint" is not in the JSON vocabulary`},
		{`{"created_at": 3}`, `a number, the vocabulary says time`},
		{`{"deleted_count": []}`, `rule "a count is *_count"`},
		{`{"name": "2026-12-07T10:00:00Z"}`, `a time under a key not named time or *_at`},
		{`{"checkpoint_ids": [1], "size_bytes": "1 KiB"}`, `a string, the vocabulary says number`},
	} {
		docs, err := decodeJSONDocs(tc.doc)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(vocabularyProblems(docs[0], "doc"), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: problems %q, want one with %q", tc.doc, got, tc.want)
		}
	}
	// Every key of the table follows the unit rules itself.
	voc, err := loadVocabulary()
	if err != nil {
		t.Fatal(err)
	}
	for k, e := range voc {
		for _, r := range unitRules {
			if r.match(k) && !typeAllowed(e.types, r.typ) {
				t.Errorf("docs/CLI.md: %s is %v, breaking %q", k, e.types, r.rule)
			}
		}
	}
}

// contractGoldens is where TestJSONContract keeps each command's JSON.
const contractGoldens = "../../testdata/cli/contract"

// TestJSONContract runs every command that prints JSON on the testdata
// stores (the good checkpoint store and a transaction-log fixture) and
// compares the JSON with testdata/cli/contract/, after cliRun checked it
// against the vocabulary. A command with --output that this test does not
// run fails it, so a new command cannot drift from the contract unseen.
// Regenerate with: go test ./cmd/arkstate -run TestJSONContract -rewrite
func TestJSONContract(t *testing.T) {
	good := copyFixtureStore(t, filepath.Join(inspectFixtures, "good"))
	logDir, _ := txlogFixture(t, 22) // three epochs, the last one's transaction pending
	restored := filepath.Join(t.TempDir(), "restored")
	dump := filepath.Join(t.TempDir(), "dump.jsonl")
	if err := os.WriteFile(dump, []byte(`{"operator":"count","state":"count","key":"word-00001","value":99}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A real monitor serving /status for top, with one stream's status.
	mon := monitor.New("v-contract")
	started := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	mon.Add("words", func() monitor.Status {
		return monitor.Status{Stream: "words", Running: true, StartedAt: started, RecordsIn: 1000, RecordsOut: 990,
			Checkpointing: true, CheckpointInterval: 200000 * time.Hour, CheckpointsCompleted: 3, LastCheckpointID: 3,
			LastCheckpointAt: started.Add(time.Minute), LastCheckpointDuration: 1500 * time.Microsecond, CheckpointBytes: 4096,
			BytesUploaded: 8192, RestoredFrom: 2, Replication: &monitor.Replication{Queued: 1, QueuedBytes: 10}}
	})
	srv := httptest.NewServer(mon.Handler())
	defer srv.Close()

	// Paths that differ from run to run are written as these names.
	paths := strings.NewReplacer(good, "$GOOD", logDir, "$TXLOG", restored, "$RESTORED", dump, "$DUMP")

	cases := []struct {
		name string
		args []string
		vary []string // keys whose values change from run to run
	}{
		{"checkpoint-ls", []string{"checkpoint", "ls", good}, nil},
		{"checkpoint-show", []string{"checkpoint", "show", good, "latest"}, nil},
		{"checkpoint-diff", []string{"checkpoint", "diff", good, "1", "latest"}, nil},
		{"checkpoint-diff-keys", []string{"checkpoint", "diff", good, "2", "3", "--keys"}, nil},
		{"checkpoint-verify", []string{"checkpoint", "verify", good, "--all", "--deep"}, nil},
		{"checkpoint-restore", []string{"checkpoint", "restore", good, "latest", "--to", restored}, nil},
		{"checkpoint-prune", []string{"checkpoint", "prune", good, "--keep-last", "1", "--dry-run"}, nil},
		{"checkpoint-gc", []string{"checkpoint", "gc", good, "--dry-run"}, nil},
		{"top", []string{"top", "--addr", srv.URL, "--once", "--store", good}, []string{"time"}},
		{"state-dump", []string{"state", "dump", good, "1", "--state", "count", "--key", "word-00001"}, nil},
		{"state-import", []string{"state", "import", good, "--from", dump, "--dry-run"}, nil},
		{"txlog-ls", []string{"txlog", "ls", logDir}, nil},
		{"txlog-ls-pending", []string{"txlog", "ls", logDir, "--pending"}, []string{"age_ms"}},
		{"txlog-verify", []string{"txlog", "verify", logDir}, nil},
		{"txlog-replay", []string{"txlog", "replay", logDir, "--stream", "main", "--from-lsn", "1", "--to", "8"}, nil},
		{"version", []string{"version"}, nil},
	}
	volatile := map[string]bool{"version": true} // depends on the build
	ran := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(slices.Clone(tc.args), "-o", "json")
			stdout, stderr, code := cliRun(t, "", args...)
			if code != exitOK && code != exitFindings {
				t.Fatalf("%v: exit %d: %s", args, code, stderr)
			}
			docs, err := decodeJSONDocs(stdout)
			if err != nil || len(docs) == 0 {
				t.Fatalf("%v: not JSON (%v):\n%s", args, err, stdout)
			}
			for _, d := range docs {
				if m, ok := d.(map[string]any); ok && isDocument(tc.args) && m["schema_version"] != json.Number(fmt.Sprint(schemaVersion)) {
					t.Errorf("%v: schema_version %v, want %d", args, m["schema_version"], schemaVersion)
				}
			}
			if !volatile[tc.name] {
				golden.Check(t, filepath.Join(contractGoldens, tc.name+".json"), []byte(normalizeContract(paths.Replace(stdout), tc.vary)))
			}
		})
		ran[strings.Join(tc.args[:min(2, len(tc.args))], " ")] = true
		if tc.args[0] == "version" || tc.args[0] == "top" {
			ran[tc.args[0]] = true
		}
	}
	var missing []string
	var visit func(c *cobra.Command, path string)
	visit = func(c *cobra.Command, path string) {
		if c.Flags().Lookup("output") != nil && c.Runnable() && !ran[path] {
			missing = append(missing, path)
		}
		for _, sub := range c.Commands() {
			p := sub.Name()
			if path != "" {
				p = path + " " + sub.Name()
			}
			visit(sub, p)
		}
	}
	visit(newRootCmd(), "")
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("commands with --output that TestJSONContract does not run: %v", missing)
	}
}

// isDocument reports whether the command prints one document rather than
// a stream of records (state dump, diff --keys and txlog replay print
// lines; diff --keys ends with its summary document).
func isDocument(args []string) bool {
	switch {
	case args[0] == "state" && args[1] == "dump", args[0] == "txlog" && args[1] == "replay":
		return false
	case slices.Contains(args, "--keys"):
		return false
	}
	return true
}

// normalizeContract replaces the values of the keys vary names, which
// change from run to run, with fixed text.
func normalizeContract(s string, vary []string) string {
	if len(vary) == 0 {
		return s
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	re := regexp.MustCompile(`"(` + strings.Join(vary, "|") + `)": ?("[^"]*"|[0-9.]+)`)
	for sc.Scan() {
		out.WriteString(re.ReplaceAllString(sc.Text(), `"$1": "<varies>"`))
		out.WriteByte('\n')
	}
	return out.String()
}

// copyFixtureStore copies a testdata store into a temporary directory.
func copyFixtureStore(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}
