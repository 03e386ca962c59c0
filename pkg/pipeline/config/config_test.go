package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/golden"
	"github.com/arkstate/arkstate/pkg/store"
)

// testdataDir holds the fixtures: valid/*.yaml with their rendered
// configuration in *.golden, invalid/*.yaml with their errors in *.golden.
// A *.env file beside a fixture holds NAME=value lines for ApplyEnv.
var testdataDir = filepath.Join("..", "..", "..", "testdata", "pipelines")

// wordcountYAML is the configuration `arkstate run` documents, verbatim.
const wordcountYAML = `streams:
  - id: wordcount
    input:  {type: file, path: input.txt}            # one record per line: {"line": "..."}
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}                   # emits {"key": <word>, "count": <n>} on every update
    output: {type: file, path: out/}                 # committed part files out/*.jsonl
state:
  enabled: true
  backend_type: local          # memory | local | s3 | hybrid
  path: ./state                # the local store (local, hybrid)
  checkpoint_interval_ms: 200
  retained_checkpoints: 5
  exactly_once: true
  s3_config: {bucket: b, prefix: p, region: us-east-1, endpoint: "http://127.0.0.1:7070", path_style: true, use_ssl: false}
`

func TestParse_Example(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		c, err := Parse([]byte(wordcountYAML), filepath.Join("jobs", "pipeline.yaml"))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if len(c.Streams) != 1 {
			t.Fatalf("streams = %d, want 1", len(c.Streams))
		}
		s := c.Streams[0]
		if s.ID != "wordcount" || s.Input.Type != InputFile || s.Input.File.Path != filepath.Join("jobs", "input.txt") ||
			s.Input.File.Format != FormatLines || s.Input.File.Follow {
			t.Errorf("input = %+v %+v", s.Input, s.Input.File)
		}
		if s.Pipeline.ThreadNum != 2 || len(s.Pipeline.Processors) != 2 {
			t.Fatalf("pipeline = %+v", s.Pipeline)
		}
		split := s.Pipeline.Processors[0]
		if split.Type != ProcessorSplit || *split.Split != (SplitProcessorConfig{Field: "line", Pattern: "[^a-z0-9']+", Lowercase: true, As: "word"}) {
			t.Errorf("split = %+v", split.Split)
		}
		if count := s.Pipeline.Processors[1]; count.Type != ProcessorCount || count.Count.Key != "word" {
			t.Errorf("count = %+v", count.Count)
		}
		if s.Output.Type != OutputFile || s.Output.File.Path != filepath.Join("jobs", "out") {
			t.Errorf("output = %+v %+v", s.Output, s.Output.File)
		}
		st := c.State
		if !st.Enabled || st.BackendType != StateBackendLocal || st.Path != filepath.Join("jobs", "state") ||
			st.CheckpointIntervalMS != 200 || st.RetainedCheckpoints != 5 || !st.ExactlyOnce ||
			st.KeyGroups != DefaultKeyGroups || st.JobID != "wordcount" {
			t.Errorf("state = %+v", st)
		}
		s3 := st.S3Config
		if s3 == nil || s3.Bucket != "b" || s3.Prefix != "p" || s3.Region != "us-east-1" ||
			s3.Endpoint != "http://127.0.0.1:7070" || !s3.PathStyle || s3.UseSSL == nil || *s3.UseSSL || !s3.Options().DisableSSL {
			t.Errorf("s3_config = %+v", s3)
		}
		if st.Performance != DefaultPerformance() {
			t.Errorf("performance = %+v, want the defaults", st.Performance)
		}
		if c.BaseDir != "jobs" || c.File != filepath.Join("jobs", "pipeline.yaml") {
			t.Errorf("File, BaseDir = %q, %q", c.File, c.BaseDir)
		}
	})
	t.Run("OKRoundTrip", func(t *testing.T) {
		// String renders a file that parses to the same configuration.
		c, err := Parse([]byte(wordcountYAML), "pipeline.yaml")
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse([]byte(c.String()), "pipeline.yaml")
		if err != nil {
			t.Fatalf("parse of String(): %v\n%s", err, c)
		}
		if got, want := again.String(), c.String(); got != want {
			t.Errorf("round trip changed the configuration:\n%s\nwant:\n%s", got, want)
		}
	})
}

func TestParse_Testdata(t *testing.T) {
	for _, kind := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join(testdataDir, kind, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no fixtures in %s", filepath.Join(testdataDir, kind))
		}
		for _, file := range files {
			name := strings.TrimSuffix(filepath.Base(file), ".yaml")
			t.Run(kind+"/"+name, func(t *testing.T) {
				got, ok := runFixture(t, file)
				if ok != (kind == "valid") {
					t.Errorf("fixture in %s/ gave:\n%s", kind, got)
				}
				checkGolden(t, strings.TrimSuffix(file, ".yaml")+".golden", got)
				if ok {
					// The rendering is itself a valid file for the same
					// configuration.
					again, err := Parse([]byte(got), "rendered.yaml")
					if err != nil {
						t.Fatalf("parse of the rendering: %v", err)
					}
					if err := again.Validate(); err != nil {
						t.Fatalf("validate of the rendering: %v", err)
					}
					if again.String() != got {
						t.Errorf("rendering does not round-trip:\n%s", again)
					}
				}
			})
		}
	}
}

// runFixture loads file, applies its .env sidecar and validates. It returns
// the rendered configuration when every step passes, else every step's
// errors; each error is checked to carry the sentinels.
func runFixture(t *testing.T, file string) (string, bool) {
	t.Helper()
	// Errors name the file relative to the pipelines directory, so the
	// golden text does not depend on where the test runs.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(testdataDir, file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, filepath.ToSlash(rel))
	if err != nil {
		checkErrors(t, err)
		return err.Error() + "\n", false
	}
	var out []string
	if env := readEnv(t, strings.TrimSuffix(file, ".yaml")+".env"); env != nil {
		if err := ApplyEnv(c, env); err != nil {
			checkErrors(t, err)
			out = append(out, err.Error())
		}
	}
	if err := c.Validate(); err != nil {
		checkErrors(t, err)
		out = append(out, err.Error())
	}
	if len(out) > 0 {
		return strings.Join(out, "\n") + "\n", false
	}
	return c.String(), true
}

func checkErrors(t *testing.T, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error does not match ErrInvalid: %v", err)
	}
	for _, e := range es {
		if e.Kind == nil || !errors.Is(e, e.Kind) {
			t.Errorf("%v: Kind %v", e, e.Kind)
		}
	}
}

func readEnv(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	return env
}

func checkGolden(t *testing.T, file, got string) {
	t.Helper()
	golden.Check(t, file, []byte(got))
}

func TestParse(t *testing.T) {
	t.Run("OKDefaults", func(t *testing.T) {
		c, err := Parse([]byte("streams: [{id: s, input: {type: generate}, output: {type: stdout}}]\n"), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if c.State != withJobID(DefaultState(), "s") {
			t.Errorf("state = %+v, want the defaults", c.State)
		}
		g := c.Streams[0].Input.Generate
		if *g != (GenerateInputConfig{Words: DefaultGenerateWords, WordsPerLine: DefaultGenerateWordsPerLine}) {
			t.Errorf("generate = %+v", g)
		}
		if c.Streams[0].Pipeline.ThreadNum != DefaultThreadNum || c.Streams[0].Output.Stdout == nil {
			t.Errorf("stream = %+v", c.Streams[0])
		}
	})
	t.Run("OKSplitDefaults", func(t *testing.T) {
		c, err := Parse([]byte("streams: [{id: s, input: {type: stdin}, pipeline: {processors: [{type: split, field: text}]}, output: {type: stdout}}]\n"), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if got := *c.Streams[0].Pipeline.Processors[0].Split; got != (SplitProcessorConfig{Field: "text", Pattern: DefaultSplitPattern, As: "text"}) {
			t.Errorf("split = %+v", got)
		}
	})
	t.Run("OKAbsolutePathsKept", func(t *testing.T) {
		abs := filepath.Join(t.TempDir(), "in.txt")
		src := fmt.Sprintf("streams: [{id: s, input: {type: file, path: %q}, output: {type: stdout}}]\n", abs)
		c, err := Parse([]byte(src), filepath.Join("a", "b", "p.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Streams[0].Input.File.Path; got != abs {
			t.Errorf("path = %q, want %q", got, abs)
		}
	})
	t.Run("ErrUnknownFieldLocated", func(t *testing.T) {
		src := "streams:\n  - id: s\n    input: {type: stdin}\n    pipeline:\n      processors:\n        - {type: split, field: line}\n        - {type: count, keyy: word}\n    output: {type: stdout}\n"
		_, err := Parse([]byte(src), "pipeline.yaml")
		if !errors.Is(err, ErrUnknownField) {
			t.Fatalf("err = %v, want ErrUnknownField", err)
		}
		var es Errors
		errors.As(err, &es)
		want := `pipeline.yaml:7:25: streams[0].pipeline.processors[1]: unknown field "keyy" (known: key)`
		if es[0].Error() != want {
			t.Errorf("first error = %q, want %q", es[0].Error(), want)
		}
		if e := es[0]; e.File != "pipeline.yaml" || e.Line != 7 || e.Column != 25 || e.Path != "streams[0].pipeline.processors[1]" {
			t.Errorf("error fields = %+v", e)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		data := bytes.Repeat([]byte("#\n"), MaxFileSize/2+1)
		_, err := Parse(data, "big.yaml")
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ErrManyProblemsTruncated", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("streams: [{id: s, input: {type: stdin}, output: {type: stdout}}]\nstate:\n")
		for i := range 3 * maxErrors {
			fmt.Fprintf(&b, "  unknown%d: 1\n", i)
		}
		_, err := Parse([]byte(b.String()), "p.yaml")
		var es Errors
		if !errors.As(err, &es) || len(es) != maxErrors+1 {
			t.Fatalf("got %d errors, want %d", len(es), maxErrors+1)
		}
		if last := es[len(es)-1].Error(); last != "p.yaml: 200 more problems not shown" {
			t.Errorf("last = %q", last)
		}
	})
}

func withJobID(s EnhancedStateConfig, id string) EnhancedStateConfig {
	s.JobID = id
	return s
}

func TestLoad(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "pipeline.yaml")
		if err := os.WriteFile(file, []byte(wordcountYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if c.BaseDir != dir || c.State.Path != filepath.Join(dir, "state") ||
			c.Streams[0].Input.File.Path != filepath.Join(dir, "input.txt") ||
			c.Streams[0].Output.File.Path != filepath.Join(dir, "out") {
			t.Errorf("paths not resolved against %s: base %q state %q input %q output %q", dir, c.BaseDir,
				c.State.Path, c.Streams[0].Input.File.Path, c.Streams[0].Output.File.Path)
		}
	})
	t.Run("ErrNotExist", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
		if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v, want a not-exist error that is not ErrInvalid", err)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "big.yaml")
		if err := os.WriteFile(file, bytes.Repeat([]byte(" "), MaxFileSize+1), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(file); !errors.Is(err, ErrSyntax) {
			t.Errorf("err = %v, want ErrSyntax", err)
		}
	})
}

func TestConfig_String(t *testing.T) {
	t.Run("OKSecretsRedacted", func(t *testing.T) {
		src := wordcountYAML + "    # credentials\n"
		src = strings.Replace(src, "use_ssl: false}", "use_ssl: false, access_key_id: AKIDSECRET1, secret_access_key: SECRETVALUE2}", 1)
		c, err := Parse([]byte(src), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := ApplyEnv(c, []string{"ARKFLOW_STATE_S3_SECRET_ACCESS_KEY=ENVSECRET3"}); err != nil {
			t.Fatal(err)
		}
		s3 := c.State.S3Config
		if s3.AccessKeyID.Reveal() != "AKIDSECRET1" || s3.SecretAccessKey.Reveal() != "ENVSECRET3" {
			t.Fatalf("secrets not stored: %q", s3.AccessKeyID.Reveal())
		}
		renderings := map[string]string{
			"String": c.String(),
			"%v":     fmt.Sprintf("%v", c),
			"%+v":    fmt.Sprintf("%+v", *c),
			"%#v":    fmt.Sprintf("%#v", *s3),
			"%s":     fmt.Sprintf("%s %s", s3.AccessKeyID, s3.SecretAccessKey),
			"%x":     fmt.Sprintf("%x %q", s3.AccessKeyID, s3.SecretAccessKey),
		}
		text, _ := s3.AccessKeyID.MarshalText()
		renderings["MarshalText"] = string(text)
		for how, out := range renderings {
			for _, secret := range []string{"AKIDSECRET1", "ENVSECRET3", "414b4944"} {
				if strings.Contains(out, secret) {
					t.Errorf("%s shows a secret: %s", how, out)
				}
			}
		}
		if !strings.Contains(c.String(), "secret_access_key: '[redacted]'") && !strings.Contains(c.String(), `secret_access_key: "[redacted]"`) {
			t.Errorf("String does not mark the redacted secret:\n%s", c)
		}
	})
	t.Run("OKEmptySecretOmitted", func(t *testing.T) {
		c, err := Parse([]byte(wordcountYAML), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if out := c.String(); strings.Contains(out, "access_key") || strings.Contains(out, "redacted") {
			t.Errorf("empty secrets rendered:\n%s", out)
		}
	})
}

func TestDefaultJobID(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			ids  []string
			want string
		}{
			{[]string{"wordcount"}, "wordcount"},
			{[]string{"zeta", "alpha", "mid"}, "alpha+mid+zeta"},
		} {
			if got := DefaultJobID(tc.ids); got != tc.want {
				t.Errorf("DefaultJobID(%q) = %q, want %q", tc.ids, got, tc.want)
			}
		}
	})
	t.Run("OKLongIsHashed", func(t *testing.T) {
		var a, b []string
		for i := range 10 {
			a = append(a, fmt.Sprintf("stream-number-%02d", i))
			b = append(b, fmt.Sprintf("stream-number-%02d", i))
		}
		b[9] = "stream-number-99"
		ja, jb := DefaultJobID(a), DefaultJobID(b)
		if len(ja) != maxJobIDLen || !validJobID(ja) {
			t.Errorf("DefaultJobID = %q (%d chars), want a valid id of %d chars", ja, len(ja), maxJobIDLen)
		}
		if ja == jb || ja[:100] != jb[:100] {
			t.Errorf("ids differing at the end: %q and %q, want the same prefix and different hashes", ja, jb)
		}
	})
}

// The endpoint a connection reaches: its scheme, else use_ssl, else https.
func TestS3Connection_Options(t *testing.T) {
	f, tr := false, true
	for _, tc := range []struct {
		endpoint string
		useSSL   *bool
		want     string
	}{
		{"", nil, ""},
		{"127.0.0.1:7070", nil, "https://127.0.0.1:7070"},
		{"127.0.0.1:7070", &f, "http://127.0.0.1:7070"},
		{"127.0.0.1:7070", &tr, "https://127.0.0.1:7070"},
		{"http://127.0.0.1:7070", nil, "http://127.0.0.1:7070"},
		{"HTTPS://s3.example.com/", nil, "https://s3.example.com"},
	} {
		o := S3Connection{Endpoint: tc.endpoint, UseSSL: tc.useSSL, AccessKeyID: "AK", SecretAccessKey: "SK"}.Options()
		got, err := store.NormalizeEndpoint(o.Endpoint, o.DisableSSL)
		if err != nil || got != tc.want {
			t.Errorf("%q use_ssl %v: endpoint %q, %v; want %q", tc.endpoint, tc.useSSL, got, err, tc.want)
		}
		if o.AccessKeyID != "AK" || o.SecretAccessKey != "SK" {
			t.Errorf("Options() lost the keys: %v", o)
		}
	}
}

// BenchmarkParse measures a typical file and the worst case the decoding
// budget allows (an exponential alias expansion cut off at maxSteps).
func BenchmarkParse(b *testing.B) {
	bomb, err := os.ReadFile(filepath.Join(testdataDir, "invalid", "alias_bomb.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{{"wordcount", []byte(wordcountYAML)}, {"alias_bomb", bomb}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				_, _ = Parse(bc.data, "p.yaml")
			}
		})
	}
}
