package config

import (
	"errors"
	"strings"
	"testing"
)

const minimalYAML = "streams: [{id: s, input: {type: stdin}, output: {type: stdout}}]\n"

func parseMinimal(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte(minimalYAML), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestApplyEnv(t *testing.T) {
	t.Run("OKEveryVariable", func(t *testing.T) {
		c := parseMinimal(t)
		env := []string{
			"ARKFLOW_STATE_ENABLED=true",
			"ARKFLOW_STATE_BACKEND_TYPE=local",
			"ARKFLOW_STATE_PATH=rel/state",
			"ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS=1500",
			"ARKFLOW_STATE_RETAINED_CHECKPOINTS=9",
			"ARKFLOW_STATE_LEASE_TTL_MS=4000",
			"ARKFLOW_STATE_EXACTLY_ONCE=TRUE",
			"ARKFLOW_STATE_KEY_GROUPS=512",
			"ARKFLOW_STATE_JOB_ID=job-7",
			"ARKFLOW_STATE_S3_BUCKET=bkt",
			"ARKFLOW_STATE_S3_PREFIX=pre/fix",
			"ARKFLOW_STATE_S3_REGION=eu-central-1",
			"ARKFLOW_STATE_S3_ENDPOINT=localhost:9000",
			"ARKFLOW_STATE_S3_PATH_STYLE=1",
			"ARKFLOW_STATE_S3_USE_SSL=false",
			"ARKFLOW_STATE_S3_ACCESS_KEY_ID=AKID",
			"ARKFLOW_STATE_S3_SECRET_ACCESS_KEY=SECRET",
			"ARKFLOW_STATE_ENABLE_BATCHING=false",
			"ARKFLOW_STATE_ENABLE_COMPRESSION=f",
			"ARKFLOW_STATE_BATCH_SIZE_BYTES=1024",
			"ARKFLOW_STATE_COMPRESSION_LEVEL=7",
			"ARKFLOW_STATE_CACHE_SIZE_BYTES=0",
			"ARKFLOW_STATE_MAX_CONCURRENT_UPLOADS=12",
			"ARKFLOW_STATE_TXLOG_ENABLED=true",
			"ARKFLOW_STATE_TXLOG_DURABILITY=periodic",
			"ARKFLOW_STATE_TXLOG_SYNC_INTERVAL_MS=250",
			"ARKFLOW_STATE_TXLOG_SEGMENT_BYTES=1048576",
			"ARKFLOW_STATE_TXLOG_RETENTION_MS=3600000",
			"ARKFLOW_STATE_TXLOG_DIR=/var/spool/arkstate-txlog",
		}
		if len(env) != len(EnvVars()) {
			t.Fatalf("test sets %d variables, EnvVars lists %d: cover the new ones", len(env), len(EnvVars()))
		}
		if err := ApplyEnv(c, env); err != nil {
			t.Fatal(err)
		}
		no := false
		want := EnhancedStateConfig{
			Enabled: true, BackendType: StateBackendLocal, Path: "rel/state", CheckpointIntervalMS: 1500,
			RetainedCheckpoints: 9, LeaseTTLMS: 4000, ExactlyOnce: true, KeyGroups: 512, JobID: "job-7",
			S3Config: &S3StateBackendConfig{Bucket: "bkt", Prefix: "pre/fix", S3Connection: S3Connection{Region: "eu-central-1",
				Endpoint: "localhost:9000", PathStyle: true, UseSSL: &no, AccessKeyID: "AKID", SecretAccessKey: "SECRET"}},
			Performance: PerformanceConfig{BatchSizeBytes: 1024, CompressionLevel: 7, MaxConcurrentUploads: 12},
			Txlog:       TxlogConfig{Enabled: true, Durability: DurabilityPeriodic, SyncIntervalMS: 250, SegmentBytes: 1 << 20, RetentionMS: 3600000, Dir: "/var/spool/arkstate-txlog"},
		}
		got := c.State
		if *got.S3Config.UseSSL != *want.S3Config.UseSSL || *got.S3Config != (S3StateBackendConfig{
			Bucket: "bkt", Prefix: "pre/fix", S3Connection: S3Connection{Region: "eu-central-1", Endpoint: "localhost:9000", PathStyle: true,
				UseSSL: got.S3Config.UseSSL, AccessKeyID: "AKID", SecretAccessKey: "SECRET"}}) {
			t.Errorf("s3_config = %+v", *got.S3Config)
		}
		got.S3Config, want.S3Config = nil, nil
		if got != want {
			t.Errorf("state =\n%+v\nwant\n%+v", got, want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("OKIgnoresOthersAndEmpty", func(t *testing.T) {
		c := parseMinimal(t)
		before := c.String()
		err := ApplyEnv(c, []string{"HOME=/root", "ARKFLOW_OTHER=1", "ARKFLOW_STATE_PATH=", "ARKFLOW_STATE_KEY_GROUPS=", "malformed", "=x"})
		if err != nil {
			t.Fatal(err)
		}
		if c.String() != before {
			t.Errorf("configuration changed:\n%s", c)
		}
		if c.State.S3Config != nil {
			t.Errorf("s3_config created without an S3 variable")
		}
	})
	t.Run("OKLastWins", func(t *testing.T) {
		c := parseMinimal(t)
		if err := ApplyEnv(c, []string{"ARKFLOW_STATE_KEY_GROUPS=16", "ARKFLOW_STATE_KEY_GROUPS=32"}); err != nil {
			t.Fatal(err)
		}
		if c.State.KeyGroups != 32 {
			t.Errorf("key_groups = %d, want 32", c.State.KeyGroups)
		}
	})
	t.Run("OKOverridesFile", func(t *testing.T) {
		c, err := Parse([]byte(wordcountYAML), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := ApplyEnv(c, []string{"ARKFLOW_STATE_BACKEND_TYPE=s3", "ARKFLOW_STATE_S3_BUCKET=other"}); err != nil {
			t.Fatal(err)
		}
		s3 := c.State.S3Config
		if c.State.BackendType != StateBackendS3 || s3.Bucket != "other" || s3.Prefix != "p" || s3.Endpoint != "http://127.0.0.1:7070" {
			t.Errorf("state = %+v, s3 = %+v", c.State, s3)
		}
	})
	t.Run("ErrBadValueNamesVariable", func(t *testing.T) {
		c := parseMinimal(t)
		err := ApplyEnv(c, []string{"ARKFLOW_STATE_KEY_GROUPS=lots", "ARKFLOW_STATE_EXACTLY_ONCE=sure",
			"ARKFLOW_STATE_KEY_GROUPS=-1", "ARKFLOW_STATE_RETAINED_CHECKPOINTS=3"})
		var es Errors
		if !errors.As(err, &es) || !errors.Is(err, ErrWrongType) {
			t.Fatalf("err = %v", err)
		}
		want := "ARKFLOW_STATE_EXACTLY_ONCE: state.exactly_once: expected a boolean (true or false), got \"sure\"\n" +
			"ARKFLOW_STATE_KEY_GROUPS: state.key_groups: -1 is out of range"
		if err.Error() != want {
			t.Errorf("err =\n%v\nwant\n%s", err, want)
		}
		if c.State.KeyGroups != DefaultKeyGroups || c.State.ExactlyOnce {
			t.Errorf("bad values were applied: %+v", c.State)
		}
		if c.State.RetainedCheckpoints != 3 {
			t.Errorf("the good variable was not applied: retained = %d", c.State.RetainedCheckpoints)
		}
	})
	t.Run("ErrUnknownVariable", func(t *testing.T) {
		c := parseMinimal(t)
		err := ApplyEnv(c, []string{"ARKFLOW_STATE_S3_BUKET=b", "ARKFLOW_STATE_ZZZZZZZZZZZZZZZZZZZZ=1"})
		if !errors.Is(err, ErrUnknownField) {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "ARKFLOW_STATE_S3_BUKET: unknown variable; did you mean ARKFLOW_STATE_S3_BUCKET?") {
			t.Errorf("no suggestion: %v", err)
		}
		if strings.Contains(err.Error(), "ZZZ: unknown variable; did you mean") {
			t.Errorf("suggestion for a name nothing like a known one: %v", err)
		}
	})
	t.Run("ErrValidateNamesVariable", func(t *testing.T) {
		c := parseMinimal(t)
		if err := ApplyEnv(c, []string{"ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS=5", "ARKFLOW_STATE_ENABLED=true",
			"ARKFLOW_STATE_BACKEND_TYPE=s3"}); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		var es Errors
		if !errors.As(err, &es) || len(es) != 2 {
			t.Fatalf("err = %v, want two problems", err)
		}
		// The file has no state block: the missing bucket is reported at the
		// top of the file.
		if e := es[0]; e.Env != "" || e.Line != 1 || e.Path != "state.s3_config.bucket" || !errors.Is(e, ErrRequired) {
			t.Errorf("first = %+v", e)
		}
		if e := es[1]; e.Env != "ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS" || e.Error() !=
			"ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS: state.checkpoint_interval_ms: must be at least 10, got 5" {
			t.Errorf("second = %v", e)
		}
	})
	t.Run("ErrSecretNeverInMessage", func(t *testing.T) {
		c := parseMinimal(t)
		err := ApplyEnv(c, []string{"ARKFLOW_STATE_S3_SECRET_ACCESS_KEYS=hunter2", "ARKFLOW_STATE_S3_SECRET_ACCESS_KEY=hunter3"})
		if err == nil || strings.Contains(err.Error(), "hunter") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"S3_BUKET", "S3_BUCKET", 1}, {"same", "same", 0},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
