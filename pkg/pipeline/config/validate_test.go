package config

import (
	"errors"
	"strings"
	"testing"
)

// built is a valid Config made in Go, without Parse.
func built() *Config {
	c := Default()
	c.Streams = []StreamConfig{{
		ID:       "s",
		Input:    InputConfig{Type: InputFile, File: &FileInputConfig{Path: "in.txt", Format: FormatJSONL}},
		Pipeline: PipelineConfig{ThreadNum: 1, Processors: []ProcessorConfig{{Type: ProcessorCount, Count: &CountProcessorConfig{Key: "k"}}}},
		Output:   OutputConfig{Type: OutputStdout},
	}}
	c.State.JobID = "job"
	return c
}

func TestConfig_Validate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		if err := built().Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OKBackends", func(t *testing.T) {
		for _, tc := range []struct {
			backend StateBackendType
			path    string
			bucket  string
			enabled bool
		}{
			{StateBackendMemory, "", "", true},
			{StateBackendLocal, "/state", "", true},
			{StateBackendS3, "", "b", true},
			{StateBackendHybrid, "/state", "b", true},
			// Without enabled the backend is not used, so nothing is required.
			{StateBackendHybrid, "", "", false},
		} {
			c := built()
			c.State.Enabled, c.State.BackendType, c.State.Path = tc.enabled, tc.backend, tc.path
			if tc.bucket != "" {
				c.State.S3Config = &S3StateBackendConfig{Bucket: tc.bucket}
			}
			if err := c.Validate(); err != nil {
				t.Errorf("%+v: %v", tc, err)
			}
		}
	})
	for _, tc := range []struct {
		name   string
		modify func(c *Config)
		want   string
		kind   error
	}{
		{"ErrNoStreams", func(c *Config) { c.Streams = nil }, "streams: at least one stream is required", ErrRequired},
		{"ErrNoJobID", func(c *Config) { c.State.JobID = "" }, "state.job_id: required (DefaultJobID derives one from the stream ids)", ErrRequired},
		{"ErrVariantNil", func(c *Config) { c.Streams[0].Input.File = nil }, `streams[0].input: type is "file" but its settings are nil`, ErrRequired},
		{"ErrInputMissing", func(c *Config) { c.Streams[0].Input = InputConfig{} }, "streams[0].input: required", ErrRequired},
		{"ErrOutputMissing", func(c *Config) { c.Streams[0].Output = OutputConfig{} }, "streams[0].output: required", ErrRequired},
		{"ErrFormatEmpty", func(c *Config) { c.Streams[0].Input.File.Format = "" }, "streams[0].input.format: required (one of lines, jsonl)", ErrRequired},
		{"ErrProcessorType", func(c *Config) { c.Streams[0].Pipeline.Processors[0].Type = "sort" },
			`streams[0].pipeline.processors[0].type: unknown processor type "sort" (known: split, count, filter, map, dedupe, window)`, ErrBadValue},
		{"ErrThreadNumZero", func(c *Config) { c.Streams[0].Pipeline.ThreadNum = 0 },
			"streams[0].pipeline.thread_num: must be between 1 and 32768, got 0", ErrBadValue},
		{"ErrThreadNumOverKeyGroups", func(c *Config) { c.State.KeyGroups = 4; c.Streams[0].Pipeline.ThreadNum = 5 },
			"streams[0].pipeline.thread_num: 5 subtasks cannot share 4 key groups: thread_num must be at most state.key_groups", ErrBadValue},
		{"ErrLocalNoPath", func(c *Config) { c.State.Enabled, c.State.BackendType = true, StateBackendLocal },
			`state.path: required when backend_type is "local"`, ErrRequired},
		{"ErrS3NoBucket", func(c *Config) {
			c.State.Enabled, c.State.BackendType, c.State.S3Config = true, StateBackendS3, &S3StateBackendConfig{S3Connection: S3Connection{Region: "r"}}
		}, `state.s3_config.bucket: required when backend_type is "s3"`, ErrRequired},
		{"ErrHybridNoBucket", func(c *Config) { c.State.Enabled, c.State.BackendType, c.State.Path = true, StateBackendHybrid, "/x" },
			`state.s3_config.bucket: required when backend_type is "hybrid"`, ErrRequired},
		{"ErrExactlyOnceDisabled", func(c *Config) { c.State.ExactlyOnce = true },
			"state.exactly_once: needs enabled: true; exactly-once rests on checkpoints", ErrBadValue},
		{"ErrUseSSLConflict", func(c *Config) {
			yes := true
			c.State.S3Config = &S3StateBackendConfig{Bucket: "b", S3Connection: S3Connection{Endpoint: "http://h:1", UseSSL: &yes}}
		}, "state.s3_config.use_ssl: is true but the endpoint scheme is http; drop one of them", ErrBadValue},
		{"ErrKeyGroups", func(c *Config) { c.State.KeyGroups = MaxKeyGroups + 1 }, "state.key_groups: must be between 1 and 32768, got 32769", ErrBadValue},
		{"ErrPattern", func(c *Config) {
			c.Streams[0].Pipeline.Processors[0] = ProcessorConfig{Type: ProcessorSplit, Split: &SplitProcessorConfig{Field: "f", Pattern: "(", As: "w"}}
		}, "streams[0].pipeline.processors[0].pattern: not a valid regular expression: error parsing regexp: missing closing ): `(`", ErrBadValue},
		{"ErrWindowSession", func(c *Config) {
			c.Streams[0].Pipeline.Processors[0] = ProcessorConfig{Type: ProcessorWindow, Window: &WindowProcessorConfig{
				Kind: WindowSession, Key: "k", TimeField: "ts", Aggregate: AggregateCount}}
		}, "streams[0].pipeline.processors[0].gap_ms: required by session windows", ErrRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := built()
			tc.modify(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate passed, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("err =\n%v\nwant\n%s", err, tc.want)
			}
			if !errors.Is(err, tc.kind) || !errors.Is(err, ErrInvalid) {
				t.Errorf("err does not match %v and ErrInvalid", tc.kind)
			}
			var es Errors
			if errors.As(err, &es) && (es[0].Line != 0 || es[0].File != "") {
				t.Errorf("a Config built in Go has no file position: %+v", es[0])
			}
		})
	}
	t.Run("ErrAllReported", func(t *testing.T) {
		c := built()
		c.Streams = append(c.Streams, c.Streams[0])
		c.State.CheckpointIntervalMS = 1
		c.State.RetainedCheckpoints = 0
		err := c.Validate()
		var es Errors
		if !errors.As(err, &es) || len(es) != 3 {
			t.Fatalf("err = %v, want 3 problems", err)
		}
		if !strings.Contains(err.Error(), `streams[1].id: duplicate stream id "s" (also streams[0])`) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"wordcount": true, "a": true, "A-1_b.c": true, "0x": true, strings.Repeat("a", maxIDLen): true,
		"": false, "-a": false, ".a": false, "a/b": false, "a b": false, "é": false, "a+b": false,
		strings.Repeat("a", maxIDLen+1): false,
	} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %t, want %t", id, got, want)
		}
	}
	if !validJobID("a+b") || validJobID("+a") || validJobID(strings.Repeat("a", maxJobIDLen+1)) {
		t.Error("validJobID")
	}
}
