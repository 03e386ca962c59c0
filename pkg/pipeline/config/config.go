package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/arkstate/arkstate/pkg/store"
	"github.com/goccy/go-yaml"
)

// Limits and defaults. Each is documented, with its YAML field, in
// docs/CONFIG.md.
const (
	// DefaultKeyGroups is the default number of key groups: Flink's default
	// max parallelism, enough to rescale to 128 subtasks without splitting a
	// group.
	DefaultKeyGroups = 128
	// MaxKeyGroups bounds key_groups; a checkpoint manifest lists key-group
	// ranges, and more groups than this only add overhead.
	MaxKeyGroups = 32768
	// DefaultCheckpointIntervalMS is the default checkpoint interval of
	// ArkFlow's state-management document.
	DefaultCheckpointIntervalMS = 60000
	// MinCheckpointIntervalMS keeps checkpoints from being taken back to
	// back; below it barrier alignment dominates processing.
	MinCheckpointIntervalMS = 10
	// MinLeaseTTLMS is the shortest writer lease: it is renewed every third
	// of it, and a renewal is a store write.
	MinLeaseTTLMS = 1000
	// DefaultRetainedCheckpoints is how many complete checkpoints are kept.
	DefaultRetainedCheckpoints = 5
	// DefaultThreadNum is a stream's default parallelism.
	DefaultThreadNum = 1
	// DefaultSplitPattern splits on runs of white space.
	DefaultSplitPattern = `\s+`
	// DefaultGenerateWords is the vocabulary size of the generate input.
	DefaultGenerateWords = 1000
	// DefaultGenerateWordsPerLine is how many words a generated line holds.
	DefaultGenerateWordsPerLine = 8

	// DefaultBatchSizeBytes is the example batch size of ArkFlow's state-management document
	// (4 MiB).
	DefaultBatchSizeBytes = 4 << 20
	// MaxBatchSizeBytes bounds a batch so one upload cannot need unbounded
	// memory.
	MaxBatchSizeBytes = 1 << 30
	// DefaultCompressionLevel is zstd's default level.
	DefaultCompressionLevel = 3
	// MaxCompressionLevel is zstd's highest level.
	MaxCompressionLevel = 22
	// DefaultCacheSizeBytes is the local LRU cache of an S3 or hybrid
	// backend (64 MiB).
	DefaultCacheSizeBytes = 64 << 20
	// DefaultTxlogSyncIntervalMS is how often the periodic durability
	// policy fsyncs the transaction log.
	DefaultTxlogSyncIntervalMS = 100
	// DefaultTxlogSegmentBytes is the size at which a transaction-log
	// segment is sealed and a new one started (64 MiB).
	DefaultTxlogSegmentBytes = 64 << 20
	// MinTxlogSegmentBytes and MaxTxlogSegmentBytes bound segment_bytes.
	MinTxlogSegmentBytes = 4 << 10
	MaxTxlogSegmentBytes = 1 << 30

	// DefaultMaxConcurrentUploads is how many segment uploads run at once.
	DefaultMaxConcurrentUploads = 4
	// MaxConcurrentUploads bounds max_concurrent_uploads.
	MaxConcurrentUploads = 256

	// maxIDLen bounds stream ids, which become parts of object names.
	maxIDLen = 64
	// maxJobIDLen bounds job ids; a derived id longer than this is shortened
	// with a hash so it stays unique.
	maxJobIDLen = 128
)

// Config is a whole `arkstate run` configuration.
type Config struct {
	// Streams are the pipelines to run; at least one, with unique ids.
	Streams []StreamConfig `yaml:"streams"`
	// State configures the state backend and checkpoints
	// (EnhancedStateConfig of ArkFlow's state-management document).
	State EnhancedStateConfig `yaml:"state"`

	// File is the name the configuration was parsed from, as given to Load
	// or Parse; errors are reported against it.
	File string `yaml:"-"`
	// BaseDir is the directory relative paths in the file were resolved
	// against: the directory of File.
	BaseDir string `yaml:"-"`

	// origins records where each field path got its value (a position in
	// File or an environment variable), so that Validate can point at it.
	origins map[string]origin
}

// origin is where a value came from: a line and column of the file, or an
// environment variable.
type origin struct {
	line, col int
	env       string
}

// StreamConfig is one stream: records flow from Input through the
// processors of Pipeline to Output.
type StreamConfig struct {
	// ID names the stream in checkpoints and metrics: 1 to 64 characters
	// from [A-Za-z0-9_.-], starting with a letter or digit; unique.
	ID       string         `yaml:"id"`
	Input    InputConfig    `yaml:"input"`
	Pipeline PipelineConfig `yaml:"pipeline"`
	Output   OutputConfig   `yaml:"output"`
}

// PipelineConfig is the processing chain of a stream.
type PipelineConfig struct {
	// ThreadNum is the number of subtasks of each keyed stage, 1 to
	// key_groups (default 1).
	ThreadNum int `yaml:"thread_num"`
	// Processors run in order; none passes records straight through.
	Processors []ProcessorConfig `yaml:"processors"`
}

// InputType selects an input.
type InputType string

// Input types.
const (
	InputFile     InputType = "file"
	InputStdin    InputType = "stdin"
	InputGenerate InputType = "generate"
)

var inputTypes = []InputType{InputFile, InputStdin, InputGenerate}

// InputConfig is a tagged union: Type selects which one of the pointers is
// set (Parse always sets it).
type InputConfig struct {
	Type     InputType
	File     *FileInputConfig
	Stdin    *StdinInputConfig
	Generate *GenerateInputConfig
}

// RecordFormat is how a line-oriented input turns lines into records.
type RecordFormat string

// Record formats.
const (
	// FormatLines makes each line the record {"line": "<text>"}.
	FormatLines RecordFormat = "lines"
	// FormatJSONL reads each non-blank line as a JSON object.
	FormatJSONL RecordFormat = "jsonl"
)

var recordFormats = []RecordFormat{FormatLines, FormatJSONL}

// FileInputConfig reads a file, resumable by byte offset.
type FileInputConfig struct {
	// Path is the file; relative to the configuration file's directory.
	Path string `yaml:"path"`
	// Format is lines (default) or jsonl.
	Format RecordFormat `yaml:"format"`
	// Follow keeps reading as the file grows, like tail -f; the input then
	// never ends.
	Follow bool `yaml:"follow"`
}

// StdinInputConfig reads standard input, which cannot be re-read after a
// restart.
type StdinInputConfig struct {
	// Format is lines (default) or jsonl.
	Format RecordFormat `yaml:"format"`
}

// GenerateInputConfig produces deterministic test records
// {"line": "w17 w3 ..."}: WordsPerLine words drawn from the vocabulary
// w0 … w<Words-1> by a generator seeded with Seed, so a restarted pipeline
// regenerates exactly the records after its checkpointed position.
type GenerateInputConfig struct {
	// Seed makes the sequence reproducible.
	Seed int64 `yaml:"seed"`
	// Rate is records per second; 0 produces as fast as possible.
	Rate int `yaml:"rate"`
	// Count is how many records to produce; 0 never ends.
	Count int64 `yaml:"count"`
	// Words is the vocabulary size (default 1000).
	Words int `yaml:"words"`
	// WordsPerLine is how many words a record's line holds (default 8).
	WordsPerLine int `yaml:"words_per_line"`
}

// ProcessorType selects a processor.
type ProcessorType string

// Processor types.
const (
	ProcessorSplit  ProcessorType = "split"
	ProcessorCount  ProcessorType = "count"
	ProcessorFilter ProcessorType = "filter"
	ProcessorMap    ProcessorType = "map"
	ProcessorDedupe ProcessorType = "dedupe"
	ProcessorWindow ProcessorType = "window"
)

var processorTypes = []ProcessorType{ProcessorSplit, ProcessorCount, ProcessorFilter, ProcessorMap, ProcessorDedupe, ProcessorWindow}

// ProcessorConfig is a tagged union: Type selects which one of the pointers
// is set (Parse always sets it).
type ProcessorConfig struct {
	Type   ProcessorType
	Split  *SplitProcessorConfig
	Count  *CountProcessorConfig
	Filter *FilterProcessorConfig
	Map    *MapProcessorConfig
	Dedupe *DedupeProcessorConfig
	Window *WindowProcessorConfig
}

// SplitProcessorConfig splits the text in Field at every match of Pattern
// and emits one record {As: piece} per non-empty piece.
type SplitProcessorConfig struct {
	// Field holds the text to split.
	Field string `yaml:"field"`
	// Pattern is a Go regular expression (RE2 syntax) matching the
	// separators (default `\s+`).
	Pattern string `yaml:"pattern"`
	// Lowercase lowercases each piece.
	Lowercase bool `yaml:"lowercase"`
	// As names the output field (default: Field).
	As string `yaml:"as"`
}

// CountProcessorConfig counts records per value of Key and emits
// {"key": <value>, "count": <n>} on every update. Keyed state.
type CountProcessorConfig struct {
	Key string `yaml:"key"`
}

// FilterProcessorConfig keeps the records for which Expr, an expr-lang
// expression over the record's fields, is true. The pipeline compiles it.
type FilterProcessorConfig struct {
	Expr string `yaml:"expr"`
}

// MapProcessorConfig evaluates Expr per record and stores the result in
// field As, or, when As is empty, replaces the record with the result, which
// must then be an object.
type MapProcessorConfig struct {
	Expr string `yaml:"expr"`
	As   string `yaml:"as"`
}

// DedupeProcessorConfig passes a record only the first time its Key value
// is seen within TTLMS milliseconds (0: ever, so state grows with the number
// of distinct keys). Keyed state.
type DedupeProcessorConfig struct {
	Key   string `yaml:"key"`
	TTLMS int64  `yaml:"ttl_ms"`
}

// WindowKind selects how a window processor assigns records to windows.
type WindowKind string

// Window kinds.
const (
	// WindowTumbling: fixed, non-overlapping windows of size_ms.
	WindowTumbling WindowKind = "tumbling"
	// WindowSliding: windows of size_ms starting every slide_ms.
	WindowSliding WindowKind = "sliding"
	// WindowSession: a key's window closes after gap_ms without records.
	WindowSession WindowKind = "session"
)

var windowKinds = []WindowKind{WindowTumbling, WindowSliding, WindowSession}

// Aggregate is what a window computes over its records.
type Aggregate string

// Aggregates. All but count read the numeric field Field.
const (
	AggregateCount Aggregate = "count"
	AggregateSum   Aggregate = "sum"
	AggregateMin   Aggregate = "min"
	AggregateMax   Aggregate = "max"
	AggregateAvg   Aggregate = "avg"
)

var aggregates = []Aggregate{AggregateCount, AggregateSum, AggregateMin, AggregateMax, AggregateAvg}

// WindowProcessorConfig aggregates records per key over event-time windows.
// A window fires when the watermark (the largest event time seen minus
// WatermarkDelayMS) passes its end. Keyed state.
type WindowProcessorConfig struct {
	Kind WindowKind `yaml:"kind"`
	// Key is the field records are grouped by.
	Key string `yaml:"key"`
	// TimeField holds the event time in milliseconds since the epoch.
	TimeField string `yaml:"time_field"`
	// SizeMS is the window length (tumbling, sliding).
	SizeMS int64 `yaml:"size_ms"`
	// SlideMS is the distance between window starts (sliding only),
	// 1..SizeMS.
	SlideMS int64 `yaml:"slide_ms"`
	// GapMS is the inactivity that closes a session (session only).
	GapMS int64 `yaml:"gap_ms"`
	// WatermarkDelayMS is how late a record may arrive and still count.
	WatermarkDelayMS int64 `yaml:"watermark_delay_ms"`
	// Aggregate is count (default), sum, min, max or avg.
	Aggregate Aggregate `yaml:"aggregate"`
	// Field is the numeric field sum, min, max and avg read.
	Field string `yaml:"field"`
}

// OutputType selects an output.
type OutputType string

// Output types.
const (
	OutputStdout OutputType = "stdout"
	OutputFile   OutputType = "file"
	OutputS3     OutputType = "s3"
)

var outputTypes = []OutputType{OutputStdout, OutputFile, OutputS3}

// OutputConfig is a tagged union: Type selects which one of the pointers is
// set (Parse always sets it).
type OutputConfig struct {
	Type   OutputType
	Stdout *StdoutOutputConfig
	File   *FileOutputConfig
	S3     *S3OutputConfig
}

// StdoutOutputConfig writes records as JSON lines to standard output as
// they come: at-least-once, since a restarted pipeline writes again what
// came after its last checkpoint. It has no settings.
type StdoutOutputConfig struct{}

// FileOutputConfig writes committed part files <Path>/*.jsonl; pending
// files stay invisible until their checkpoint completes.
type FileOutputConfig struct {
	// Path is a directory; relative to the configuration file's directory.
	Path string `yaml:"path"`
}

// S3OutputConfig writes committed objects under Prefix in Bucket through
// multipart uploads completed when their checkpoint completes. It reaches
// S3 as the state backend does, with the same keys.
type S3OutputConfig struct {
	Bucket       string `yaml:"bucket"`
	Prefix       string `yaml:"prefix"`
	S3Connection `yaml:",inline"`
}

// StateBackendType selects where keyed state lives and checkpoints go.
type StateBackendType string

// State backends.
const (
	// StateBackendMemory keeps checkpoints in memory: fast, lost on exit.
	StateBackendMemory StateBackendType = "memory"
	// StateBackendLocal writes checkpoints to the directory Path.
	StateBackendLocal StateBackendType = "local"
	// StateBackendS3 writes checkpoints to S3.
	StateBackendS3 StateBackendType = "s3"
	// StateBackendHybrid writes checkpoints to Path and uploads them to S3.
	StateBackendHybrid StateBackendType = "hybrid"
)

var backendTypes = []StateBackendType{StateBackendMemory, StateBackendLocal, StateBackendS3, StateBackendHybrid}

// EnhancedStateConfig is the `state` block of ArkFlow's state-management
// document. A field's env tag names the ARKFLOW_STATE_* variable that
// overrides it (ApplyEnv); the tags are the one list of the variables.
type EnhancedStateConfig struct {
	// Enabled turns on checkpointing; without it state lives only in
	// memory and a restart starts from nothing (default false).
	Enabled bool `yaml:"enabled" env:"ARKFLOW_STATE_ENABLED"`
	// BackendType is memory (default), local, s3 or hybrid.
	BackendType StateBackendType `yaml:"backend_type" env:"ARKFLOW_STATE_BACKEND_TYPE"`
	// Path is the local store directory (local, hybrid); relative to the
	// configuration file's directory.
	Path string `yaml:"path" env:"ARKFLOW_STATE_PATH"`
	// CheckpointIntervalMS is the time between checkpoints, at least 10
	// (default 60000).
	CheckpointIntervalMS int64 `yaml:"checkpoint_interval_ms" env:"ARKFLOW_STATE_CHECKPOINT_INTERVAL_MS"`
	// RetainedCheckpoints is how many complete checkpoints are kept, at
	// least 1 (default 5).
	RetainedCheckpoints int `yaml:"retained_checkpoints" env:"ARKFLOW_STATE_RETAINED_CHECKPOINTS"`
	// LeaseTTLMS is how long the store's writer lease lasts without
	// renewal, at least MinLeaseTTLMS; 0 (the default) means the larger of
	// 30 s and three checkpoint intervals. A standby takes over a frozen or
	// unreachable writer after it.
	LeaseTTLMS int64 `yaml:"lease_ttl_ms" env:"ARKFLOW_STATE_LEASE_TTL_MS"`
	// ExactlyOnce makes outputs two-phase commit with checkpoints; it needs
	// Enabled (default false).
	ExactlyOnce bool `yaml:"exactly_once" env:"ARKFLOW_STATE_EXACTLY_ONCE"`
	// KeyGroups is the number of key groups keyed state is split into, 1 to
	// 32768, fixed for the life of a job (default 128).
	KeyGroups uint32 `yaml:"key_groups" env:"ARKFLOW_STATE_KEY_GROUPS"`
	// JobID names the job in the store (default: DefaultJobID of the
	// stream ids).
	JobID string `yaml:"job_id" env:"ARKFLOW_STATE_JOB_ID"`
	// S3Config is required by the s3 and hybrid backends.
	S3Config *S3StateBackendConfig `yaml:"s3_config,omitempty"`
	// Performance tunes batching, compression and caching.
	Performance PerformanceConfig `yaml:"performance"`
	// Txlog configures the transaction log.
	Txlog TxlogConfig `yaml:"txlog"`
}

// Durability is when the transaction log fsyncs what it appends.
type Durability string

// Durability policies.
const (
	// DurabilityPerEntry fsyncs every record on its own.
	DurabilityPerEntry Durability = "per_entry"
	// DurabilityGroupCommit fsyncs once for every record that arrived
	// while the previous fsync ran (the default).
	DurabilityGroupCommit Durability = "group_commit"
	// DurabilityPeriodic fsyncs every sync_interval_ms; a power loss can
	// lose the last interval (a process crash loses nothing written).
	DurabilityPeriodic Durability = "periodic"
)

var durabilities = []Durability{DurabilityPerEntry, DurabilityGroupCommit, DurabilityPeriodic}

// TxlogConfig is the state block's transaction log: every epoch's state
// changes, source positions and two-phase-commit events, appended as they
// happen, so that state can be restored to any moment between checkpoints
// and a non-replayable input (stdin) loses nothing it read.
type TxlogConfig struct {
	// Enabled turns the log on; it needs state.enabled (default false).
	Enabled bool `yaml:"enabled" env:"ARKFLOW_STATE_TXLOG_ENABLED"`
	// Durability is per_entry, group_commit (default) or periodic.
	Durability Durability `yaml:"durability" env:"ARKFLOW_STATE_TXLOG_DURABILITY"`
	// SyncIntervalMS is the periodic policy's fsync period, at least 1
	// (default 100).
	SyncIntervalMS int64 `yaml:"sync_interval_ms" env:"ARKFLOW_STATE_TXLOG_SYNC_INTERVAL_MS"`
	// SegmentBytes is the size at which a segment is sealed and copied to
	// the store, 4 KiB to 1 GiB (default 64 MiB).
	SegmentBytes int64 `yaml:"segment_bytes" env:"ARKFLOW_STATE_TXLOG_SEGMENT_BYTES"`
	// RetentionMS is the point-in-time window: the log is kept for at
	// least this long behind the newest record, and always from the
	// oldest retained checkpoint on (default 0: that checkpoint only).
	RetentionMS int64 `yaml:"retention_ms" env:"ARKFLOW_STATE_TXLOG_RETENTION_MS"`
	// Dir is the directory the log is written in; relative to the
	// configuration file's directory. Its sealed segments are copied to
	// the store under txlog/<stream>/ before each checkpoint commits.
	// Default for local: the store's own directory (path), where the
	// segments are the store's objects; required for s3 and hybrid.
	Dir string `yaml:"dir" env:"ARKFLOW_STATE_TXLOG_DIR"`
}

// S3StateBackendConfig is where the s3 and hybrid backends put checkpoints.
type S3StateBackendConfig struct {
	Bucket string `yaml:"bucket" env:"ARKFLOW_STATE_S3_BUCKET"`
	// Prefix is prepended to every object name.
	Prefix       string `yaml:"prefix" env:"ARKFLOW_STATE_S3_PREFIX"`
	S3Connection `yaml:",inline"`
}

// S3Connection is how arkstate reaches S3, the same wherever it does: the
// state backend's s3_config and the s3 output embed it, so both take the
// same keys, and Options turns it into the store's options in one way. Its
// variables (env tags) apply to state.s3_config only.
type S3Connection struct {
	// Region signs requests; empty takes it from the AWS configuration.
	Region string `yaml:"region" env:"ARKFLOW_STATE_S3_REGION"`
	// Endpoint is an S3-compatible server, "http://host:port" or
	// "host:port"; empty means AWS.
	Endpoint string `yaml:"endpoint" env:"ARKFLOW_STATE_S3_ENDPOINT"`
	// PathStyle addresses buckets as endpoint/bucket, as most S3-compatible
	// servers need.
	PathStyle bool `yaml:"path_style" env:"ARKFLOW_STATE_S3_PATH_STYLE"`
	// UseSSL selects https for an Endpoint without a scheme; nil means true,
	// as in ArkFlow's state-management document.
	UseSSL *bool `yaml:"use_ssl,omitempty" env:"ARKFLOW_STATE_S3_USE_SSL"`
	// AccessKeyID and SecretAccessKey replace the AWS credential chain when
	// set. They are never printed.
	AccessKeyID     Secret `yaml:"access_key_id,omitempty" env:"ARKFLOW_STATE_S3_ACCESS_KEY_ID"`
	SecretAccessKey Secret `yaml:"secret_access_key,omitempty" env:"ARKFLOW_STATE_S3_SECRET_ACCESS_KEY"`
}

// Options returns the store options c names. The endpoint goes as written:
// store.NormalizeEndpoint, the one place that works out a scheme, adds
// https or (use_ssl: false) http to an endpoint without one.
func (c S3Connection) Options() store.S3Options {
	return store.S3Options{
		Endpoint:        c.Endpoint,
		Region:          c.Region,
		PathStyle:       c.PathStyle,
		DisableSSL:      c.UseSSL != nil && !*c.UseSSL,
		AccessKeyID:     c.AccessKeyID.Reveal(),
		SecretAccessKey: c.SecretAccessKey.Reveal(),
	}
}

// PerformanceConfig is the performance block of ArkFlow's state-management document. Every field is parsed
// and validated so that ArkFlow's files load; CompressionLevel and
// MaxConcurrentUploads take effect, and the pipeline's Manager logs a warning
// for the others when they differ from their defaults (docs/CONFIG.md says
// why each has nothing to act on).
type PerformanceConfig struct {
	// EnableBatching (default true) has no effect: a checkpoint writes one
	// segment per operator and key-group range.
	EnableBatching bool `yaml:"enable_batching" env:"ARKFLOW_STATE_ENABLE_BATCHING"`
	// EnableCompression (default true) has no effect: segments are always
	// zstd-compressed.
	EnableCompression bool `yaml:"enable_compression" env:"ARKFLOW_STATE_ENABLE_COMPRESSION"`
	// BatchSizeBytes, 1 byte to 1 GiB (default 4 MiB), has no effect, as
	// EnableBatching.
	BatchSizeBytes int `yaml:"batch_size_bytes" env:"ARKFLOW_STATE_BATCH_SIZE_BYTES"`
	// CompressionLevel is the segments' zstd level, 1 to 22 (default 3).
	CompressionLevel int `yaml:"compression_level" env:"ARKFLOW_STATE_COMPRESSION_LEVEL"`
	// CacheSizeBytes (default 64 MiB; 0 is allowed) has no effect: restores
	// read segments straight from the store.
	CacheSizeBytes int64 `yaml:"cache_size_bytes" env:"ARKFLOW_STATE_CACHE_SIZE_BYTES"`
	// MaxConcurrentUploads bounds parallel uploads, 1 to 256 (default 4).
	MaxConcurrentUploads int `yaml:"max_concurrent_uploads" env:"ARKFLOW_STATE_MAX_CONCURRENT_UPLOADS"`
}

// Default returns a configuration with no streams and the default state
// block, the values Parse starts from.
func Default() *Config {
	return &Config{State: DefaultState()}
}

// DefaultState returns the defaults of ArkFlow's state-management document: disabled, memory backend, a
// checkpoint a minute, five retained, at-least-once, 128 key groups.
func DefaultState() EnhancedStateConfig {
	return EnhancedStateConfig{
		BackendType:          StateBackendMemory,
		CheckpointIntervalMS: DefaultCheckpointIntervalMS,
		RetainedCheckpoints:  DefaultRetainedCheckpoints,
		KeyGroups:            DefaultKeyGroups,
		Performance:          DefaultPerformance(),
		Txlog:                DefaultTxlog(),
	}
}

// DefaultTxlog returns the transaction log off, group commit, a 100 ms
// periodic interval, 64 MiB segments and no window beyond the oldest
// retained checkpoint.
func DefaultTxlog() TxlogConfig {
	return TxlogConfig{
		Durability:     DurabilityGroupCommit,
		SyncIntervalMS: DefaultTxlogSyncIntervalMS,
		SegmentBytes:   DefaultTxlogSegmentBytes,
	}
}

// DefaultPerformance returns batching and compression on, 4 MiB batches,
// zstd level 3, a 64 MiB cache and 4 concurrent uploads.
func DefaultPerformance() PerformanceConfig {
	return PerformanceConfig{
		EnableBatching:       true,
		EnableCompression:    true,
		BatchSizeBytes:       DefaultBatchSizeBytes,
		CompressionLevel:     DefaultCompressionLevel,
		CacheSizeBytes:       DefaultCacheSizeBytes,
		MaxConcurrentUploads: DefaultMaxConcurrentUploads,
	}
}

// DefaultJobID derives a job id from stream ids: the ids sorted and joined
// with "+", so reordering streams in the file keeps the job (and its
// checkpoints). A result longer than 128 characters keeps its first 111
// characters and appends "-" and 16 hex digits of the SHA-256 of the whole.
func DefaultJobID(streamIDs []string) string {
	ids := slices.Clone(streamIDs)
	slices.Sort(ids)
	id := strings.Join(ids, "+")
	if len(id) <= maxJobIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:maxJobIDLen-17] + "-" + hex.EncodeToString(sum[:8])
}

// String renders the configuration as YAML with every default filled in and
// secrets replaced by "[redacted]": safe to log, and itself a valid file.
func (c *Config) String() string {
	b, err := yaml.MarshalWithOptions(c, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		// Every field is a plain value or implements MarshalYAML without
		// failing, so this is unreachable; say so rather than hide it.
		return fmt.Sprintf("config: cannot render: %v", err)
	}
	return string(b)
}

// Secret is a credential. It prints, formats and marshals as "[redacted]"
// (or nothing when empty) so that no log line or rendered configuration
// shows it; Reveal returns the value for the code that uses it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer without the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer without the value, for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format implements fmt.Formatter so that every verb (%x included) prints
// the redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// MarshalYAML implements yaml.InterfaceMarshaler without the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText implements encoding.TextMarshaler without the value, which
// also covers encoding/json.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML renders the input as the file writes it: type plus the
// selected variant's fields.
func (c InputConfig) MarshalYAML() (any, error) {
	type typ struct {
		Type InputType `yaml:"type"`
	}
	switch {
	case c.Type == InputFile && c.File != nil:
		return struct {
			typ              `yaml:",inline"`
			*FileInputConfig `yaml:",inline"`
		}{typ{c.Type}, c.File}, nil
	case c.Type == InputStdin && c.Stdin != nil:
		return struct {
			typ               `yaml:",inline"`
			*StdinInputConfig `yaml:",inline"`
		}{typ{c.Type}, c.Stdin}, nil
	case c.Type == InputGenerate && c.Generate != nil:
		return struct {
			typ                  `yaml:",inline"`
			*GenerateInputConfig `yaml:",inline"`
		}{typ{c.Type}, c.Generate}, nil
	}
	return typ{c.Type}, nil
}

// MarshalYAML renders the processor as the file writes it: type plus the
// selected variant's fields.
func (c ProcessorConfig) MarshalYAML() (any, error) {
	type typ struct {
		Type ProcessorType `yaml:"type"`
	}
	switch {
	case c.Type == ProcessorSplit && c.Split != nil:
		return struct {
			typ                   `yaml:",inline"`
			*SplitProcessorConfig `yaml:",inline"`
		}{typ{c.Type}, c.Split}, nil
	case c.Type == ProcessorCount && c.Count != nil:
		return struct {
			typ                   `yaml:",inline"`
			*CountProcessorConfig `yaml:",inline"`
		}{typ{c.Type}, c.Count}, nil
	case c.Type == ProcessorFilter && c.Filter != nil:
		return struct {
			typ                    `yaml:",inline"`
			*FilterProcessorConfig `yaml:",inline"`
		}{typ{c.Type}, c.Filter}, nil
	case c.Type == ProcessorMap && c.Map != nil:
		return struct {
			typ                 `yaml:",inline"`
			*MapProcessorConfig `yaml:",inline"`
		}{typ{c.Type}, c.Map}, nil
	case c.Type == ProcessorDedupe && c.Dedupe != nil:
		return struct {
			typ                    `yaml:",inline"`
			*DedupeProcessorConfig `yaml:",inline"`
		}{typ{c.Type}, c.Dedupe}, nil
	case c.Type == ProcessorWindow && c.Window != nil:
		return struct {
			typ                    `yaml:",inline"`
			*WindowProcessorConfig `yaml:",inline"`
		}{typ{c.Type}, c.Window}, nil
	}
	return typ{c.Type}, nil
}

// MarshalYAML renders the output as the file writes it: type plus the
// selected variant's fields.
func (c OutputConfig) MarshalYAML() (any, error) {
	type typ struct {
		Type OutputType `yaml:"type"`
	}
	switch {
	case c.Type == OutputFile && c.File != nil:
		return struct {
			typ               `yaml:",inline"`
			*FileOutputConfig `yaml:",inline"`
		}{typ{c.Type}, c.File}, nil
	case c.Type == OutputS3 && c.S3 != nil:
		return struct {
			typ             `yaml:",inline"`
			*S3OutputConfig `yaml:",inline"`
		}{typ{c.Type}, c.S3}, nil
	}
	return typ{c.Type}, nil
}
