package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// EnvPrefix starts every variable ApplyEnv reads.
const EnvPrefix = "ARKFLOW_STATE_"

// EnvVar is one environment variable and the state field it overrides.
type EnvVar struct {
	// Name is the variable, e.g. "ARKFLOW_STATE_S3_BUCKET".
	Name string
	// Field is the field path it sets, e.g. "state.s3_config.bucket".
	Field string
}

// envSetter parses a variable's value into its field. It returns "" or why
// the value is unusable; the message never contains the value of a secret.
type envSetter func(c *Config, value string) string

type envVar struct {
	EnvVar
	set envSetter
}

// envVars is the table ApplyEnv works from, in the order the variables are
// applied and documented.
var envVars = []envVar{
	{EnvVar{"ARKFLOW_STATE_ENABLED", "state.enabled"}, envBool(func(c *Config) *bool { return &c.State.Enabled })},
	{EnvVar{"ARKFLOW_STATE_BACKEND_TYPE", "state.backend_type"}, func(c *Config, v string) string {
		c.State.BackendType = StateBackendType(v)
		return ""
	}},
	{EnvVar{"ARKFLOW_STATE_PATH", "state.path"}, envString(func(c *Config) *string { return &c.State.Path })},
	{EnvVar{"ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS", "state.checkpoint_interval_ms"}, envInt(func(c *Config) *int64 { return &c.State.CheckpointIntervalMS })},
	{EnvVar{"ARKFLOW_STATE_RETAINED_CHECKPOINTS", "state.retained_checkpoints"}, envInt(func(c *Config) *int { return &c.State.RetainedCheckpoints })},
	{EnvVar{"ARKFLOW_STATE_LEASE_TTL_MS", "state.lease_ttl_ms"}, envInt(func(c *Config) *int64 { return &c.State.LeaseTTLMS })},
	{EnvVar{"ARKFLOW_STATE_EXACTLY_ONCE", "state.exactly_once"}, envBool(func(c *Config) *bool { return &c.State.ExactlyOnce })},
	{EnvVar{"ARKFLOW_STATE_KEY_GROUPS", "state.key_groups"}, envInt(func(c *Config) *uint32 { return &c.State.KeyGroups })},
	{EnvVar{"ARKFLOW_STATE_JOB_ID", "state.job_id"}, envString(func(c *Config) *string { return &c.State.JobID })},
	{EnvVar{"ARKFLOW_STATE_S3_BUCKET", "state.s3_config.bucket"}, envString(func(c *Config) *string { return &s3(c).Bucket })},
	{EnvVar{"ARKFLOW_STATE_S3_PREFIX", "state.s3_config.prefix"}, envString(func(c *Config) *string { return &s3(c).Prefix })},
	{EnvVar{"ARKFLOW_STATE_S3_REGION", "state.s3_config.region"}, envString(func(c *Config) *string { return &s3(c).Region })},
	{EnvVar{"ARKFLOW_STATE_S3_ENDPOINT", "state.s3_config.endpoint"}, envString(func(c *Config) *string { return &s3(c).Endpoint })},
	{EnvVar{"ARKFLOW_STATE_S3_PATH_STYLE", "state.s3_config.path_style"}, envBool(func(c *Config) *bool { return &s3(c).PathStyle })},
	{EnvVar{"ARKFLOW_STATE_S3_USE_SSL", "state.s3_config.use_ssl"}, func(c *Config, v string) string {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Sprintf("expected a boolean (true or false), got %q", v)
		}
		s3(c).UseSSL = &b
		return ""
	}},
	{EnvVar{"ARKFLOW_STATE_S3_ACCESS_KEY_ID", "state.s3_config.access_key_id"}, func(c *Config, v string) string {
		s3(c).AccessKeyID = Secret(v)
		return ""
	}},
	{EnvVar{"ARKFLOW_STATE_S3_SECRET_ACCESS_KEY", "state.s3_config.secret_access_key"}, func(c *Config, v string) string {
		s3(c).SecretAccessKey = Secret(v)
		return ""
	}},
	{EnvVar{"ARKFLOW_STATE_ENABLE_BATCHING", "state.performance.enable_batching"}, envBool(func(c *Config) *bool { return &c.State.Performance.EnableBatching })},
	{EnvVar{"ARKFLOW_STATE_ENABLE_COMPRESSION", "state.performance.enable_compression"}, envBool(func(c *Config) *bool { return &c.State.Performance.EnableCompression })},
	{EnvVar{"ARKFLOW_STATE_BATCH_SIZE_BYTES", "state.performance.batch_size_bytes"}, envInt(func(c *Config) *int { return &c.State.Performance.BatchSizeBytes })},
	{EnvVar{"ARKFLOW_STATE_COMPRESSION_LEVEL", "state.performance.compression_level"}, envInt(func(c *Config) *int { return &c.State.Performance.CompressionLevel })},
	{EnvVar{"ARKFLOW_STATE_CACHE_SIZE_BYTES", "state.performance.cache_size_bytes"}, envInt(func(c *Config) *int64 { return &c.State.Performance.CacheSizeBytes })},
	{EnvVar{"ARKFLOW_STATE_MAX_CONCURRENT_UPLOADS", "state.performance.max_concurrent_uploads"}, envInt(func(c *Config) *int { return &c.State.Performance.MaxConcurrentUploads })},
}

// EnvVars lists the variables ApplyEnv reads, in the order it applies them.
func EnvVars() []EnvVar {
	out := make([]EnvVar, len(envVars))
	for i, v := range envVars {
		out[i] = v.EnvVar
	}
	return out
}

// ApplyEnv overrides the state block with the ARKFLOW_STATE_* variables in
// environ ("NAME=value" strings, as os.Environ returns them; the last of
// repeated names wins). A variable with an empty value is ignored, so an
// unset shell variable passed through by a container runtime changes
// nothing. Values are parsed here and range-checked by Validate, which
// names the variable. Paths from the environment are used as given
// (relative to the working directory), not resolved against the file.
//
// Every usable variable is applied; the error lists each variable that is
// unknown (a typo would otherwise be silently ignored) or does not parse.
func ApplyEnv(cfg *Config, environ []string) error {
	values := make(map[string]string)
	var unknown []string
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if !slices.ContainsFunc(envVars, func(v envVar) bool { return v.Name == name }) {
			if !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
			continue
		}
		values[name] = value
	}
	var errs errorList
	for _, v := range envVars {
		value, ok := values[v.Name]
		if !ok || value == "" {
			continue
		}
		if why := v.set(cfg, value); why != "" {
			errs.add(&FieldError{File: cfg.File, Env: v.Name, Path: v.Field, Kind: ErrWrongType, Msg: why})
			continue
		}
		if cfg.origins == nil {
			cfg.origins = make(map[string]origin)
		}
		cfg.origins[v.Field] = origin{env: v.Name}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		msg := "unknown variable"
		if s := suggestEnv(name); s != "" {
			msg += "; did you mean " + s + "?"
		}
		errs.add(&FieldError{File: cfg.File, Env: name, Kind: ErrUnknownField, Msg: msg + " (docs/CONFIG.md lists them)"})
	}
	return errs.result(cfg.File)
}

// s3 returns the S3 settings, creating them for the first S3 variable.
func s3(c *Config) *S3StateBackendConfig {
	if c.State.S3Config == nil {
		c.State.S3Config = &S3StateBackendConfig{}
	}
	return c.State.S3Config
}

func envString(field func(*Config) *string) envSetter {
	return func(c *Config, v string) string {
		*field(c) = v
		return ""
	}
}

func envBool(field func(*Config) *bool) envSetter {
	return func(c *Config, v string) string {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Sprintf("expected a boolean (true or false), got %q", v)
		}
		*field(c) = b
		return ""
	}
}

func envInt[T int | int64 | uint32](field func(*Config) *T) envSetter {
	return func(c *Config, v string) string {
		i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Sprintf("%s is out of range", v)
		}
		if err != nil {
			return fmt.Sprintf("expected an integer, got %q", v)
		}
		if int64(T(i)) != i {
			return fmt.Sprintf("%d is out of range", i)
		}
		*field(c) = T(i)
		return ""
	}
}

// suggestEnv returns the known variable closest to name, if it is close
// enough to be a typo.
func suggestEnv(name string) string {
	best, bestDist := "", math.MaxInt
	for _, v := range envVars {
		if d := editDistance(name, v.Name); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	if bestDist <= 3 {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
