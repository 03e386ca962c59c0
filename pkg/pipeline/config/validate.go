package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/arkstate/arkstate/pkg/store"
)

// Validate checks the whole configuration and returns an Errors list of
// every problem, or nil. Run it after ApplyEnv: besides the rules Parse
// applies to each value, it checks the rules between fields, which the
// environment may have changed:
//
//   - with state.enabled, backend local needs state.path, s3 needs
//     state.s3_config.bucket, and hybrid needs both;
//   - state.exactly_once and state.txlog.enabled need state.enabled;
//     state.txlog.enabled needs a backend other than memory, and with s3
//     or hybrid state.txlog.dir (for hybrid outside state.path);
//   - an endpoint with a scheme must agree with an explicit use_ssl
//     (state.s3_config and every s3 output);
//   - every stream's thread_num is at most state.key_groups;
//   - state.job_id is set (Parse derives it; a Config built in Go needs it).
//
// A problem is located at the value's line in the file, or at the
// environment variable that set it, or, for a missing value, at the nearest
// enclosing mapping in the file.
func (c *Config) Validate() error {
	l := c.check(true)
	return l.result(c.File)
}

// checker collects the problems of one Config.
type checker struct {
	c    *Config
	errs errorList
}

// fail records a problem at path, located through the Config's origins.
func (k *checker) fail(path string, kind error, format string, args ...any) {
	e := &FieldError{File: k.c.File, Path: path, Kind: kind, Msg: fmt.Sprintf(format, args...)}
	if o, ok := k.c.origins[path]; ok {
		e.Line, e.Column, e.Env = o.line, o.col, o.env
	} else {
		// A value that is not in the file (a default, or missing): point at
		// the nearest enclosing mapping that is.
		for p := path; p != ""; {
			p = parentPath(p)
			if o, ok := k.c.origins[p]; ok && o.env == "" {
				e.Line, e.Column = o.line, o.col
				break
			}
		}
	}
	k.errs.add(e)
}

func (k *checker) required(path, value string) bool {
	if strings.TrimSpace(value) == "" {
		k.fail(path, ErrRequired, "required")
		return false
	}
	return true
}

func (k *checker) atLeast(path string, v, lo int64) {
	if v < lo {
		k.fail(path, ErrBadValue, "must be at least %d, got %d", lo, v)
	}
}

func (k *checker) between(path string, v, lo, hi int64) bool {
	if v < lo || v > hi {
		k.fail(path, ErrBadValue, "must be between %d and %d, got %d", lo, hi, v)
		return false
	}
	return true
}

func checkEnum[T ~string](k *checker, path string, v T, values []T, what string) bool {
	if slices.Contains(values, v) {
		return true
	}
	if v == "" {
		k.fail(path, ErrRequired, "required (one of %s)", strings.Join(names(values), ", "))
	} else {
		k.fail(path, ErrBadValue, "unknown %s %q (known: %s)", what, string(v), strings.Join(names(values), ", "))
	}
	return false
}

// check runs every rule; crossField adds the rules Parse defers to Validate.
func (c *Config) check(crossField bool) *errorList {
	k := &checker{c: c}
	if len(c.Streams) == 0 {
		k.fail("streams", ErrRequired, "at least one stream is required")
	}
	firstID := make(map[string]string)
	for i := range c.Streams {
		path := fmt.Sprintf("streams[%d]", i)
		s := &c.Streams[i]
		if k.required(path+".id", s.ID) {
			if !validID(s.ID) {
				k.fail(path+".id", ErrBadValue, "%q is not a valid id: use 1 to %d letters, digits, '_', '.' or '-', starting with a letter or digit", s.ID, maxIDLen)
			} else if first, dup := firstID[s.ID]; dup {
				k.fail(path+".id", ErrBadValue, "duplicate stream id %q (also %s)", s.ID, first)
			} else {
				firstID[s.ID] = path
			}
		}
		k.checkInput(path+".input", &s.Input)
		tp := path + ".pipeline.thread_num"
		if k.between(tp, int64(s.Pipeline.ThreadNum), 1, MaxKeyGroups) && crossField &&
			c.State.KeyGroups >= 1 && c.State.KeyGroups <= MaxKeyGroups && uint32(s.Pipeline.ThreadNum) > c.State.KeyGroups {
			k.fail(tp, ErrBadValue, "%d subtasks cannot share %d key groups: thread_num must be at most state.key_groups", s.Pipeline.ThreadNum, c.State.KeyGroups)
		}
		for j := range s.Pipeline.Processors {
			k.checkProcessor(fmt.Sprintf("%s.pipeline.processors[%d]", path, j), &s.Pipeline.Processors[j])
		}
		k.checkOutput(path+".output", &s.Output, crossField)
		if crossField {
			k.checkDelivery(path, s, &c.State)
		}
	}
	k.checkState("state", &c.State, crossField)
	return &k.errs
}

// checkDelivery refuses file and s3 output without state on an input that
// never ends: they commit at checkpoints, or at the end of a bounded input,
// so nothing would ever become visible. (stdout with exactly_once is
// allowed, as ArkFlow's state-management document shows it, and `run`
// warns that it stays at-least-once.)
func (k *checker) checkDelivery(path string, s *StreamConfig, st *EnhancedStateConfig) {
	out := s.Output.Type
	unbounded := (s.Input.Type == InputFile && s.Input.File != nil && s.Input.File.Follow) ||
		(s.Input.Type == InputGenerate && s.Input.Generate != nil && s.Input.Generate.Count == 0)
	if !st.Enabled && unbounded && (out == OutputFile || out == OutputS3) {
		k.fail(path+".output", ErrBadValue, "%s output commits at checkpoints or at the end of the input; with state disabled and an input that never ends it would never commit: set state.enabled: true, or use stdout output", out)
	}
}

// validID reports whether id can name a stream: it becomes part of object
// names and metric labels, so the alphabet is small.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || !isAlnum(rune(id[0])) {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool { return !isAlnum(r) && r != '_' && r != '.' && r != '-' }) < 0
}

// validJobID is validID with '+' (which DefaultJobID joins with) and a
// longer limit.
func validJobID(id string) bool {
	if id == "" || len(id) > maxJobIDLen || !isAlnum(rune(id[0])) {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool { return !isAlnum(r) && !strings.ContainsRune("_.-+", r) }) < 0
}

func isAlnum(r rune) bool {
	return r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

func (k *checker) checkInput(path string, in *InputConfig) {
	if in.Type == "" && in.File == nil && in.Stdin == nil && in.Generate == nil {
		k.fail(path, ErrRequired, "required")
		return
	}
	if !checkEnum(k, path+".type", in.Type, inputTypes, "input type") {
		return
	}
	switch in.Type {
	case InputFile:
		if k.variantSet(path, in.Type, in.File != nil) {
			k.required(path+".path", in.File.Path)
			checkEnum(k, path+".format", in.File.Format, recordFormats, "format")
		}
	case InputStdin:
		if k.variantSet(path, in.Type, in.Stdin != nil) {
			checkEnum(k, path+".format", in.Stdin.Format, recordFormats, "format")
		}
	case InputGenerate:
		if g := in.Generate; k.variantSet(path, in.Type, g != nil) {
			k.atLeast(path+".rate", int64(g.Rate), 0)
			k.atLeast(path+".count", g.Count, 0)
			k.atLeast(path+".words", int64(g.Words), 1)
			k.atLeast(path+".words_per_line", int64(g.WordsPerLine), 1)
		}
	}
}

// variantSet reports whether a union's selected variant is present; only a
// Config built in Go can lack it.
func (k *checker) variantSet(path string, typ any, ok bool) bool {
	if !ok {
		k.fail(path, ErrRequired, "type is %q but its settings are nil", typ)
	}
	return ok
}

func (k *checker) checkProcessor(path string, p *ProcessorConfig) {
	if !checkEnum(k, path+".type", p.Type, processorTypes, "processor type") {
		return
	}
	switch p.Type {
	case ProcessorSplit:
		if s := p.Split; k.variantSet(path, p.Type, s != nil) {
			k.required(path+".field", s.Field)
			if _, err := regexp.Compile(s.Pattern); err != nil {
				k.fail(path+".pattern", ErrBadValue, "not a valid regular expression: %v", err)
			} else if s.Pattern == "" {
				k.fail(path+".pattern", ErrRequired, "required (it matches the separators)")
			}
			k.required(path+".as", s.As)
		}
	case ProcessorCount:
		if c := p.Count; k.variantSet(path, p.Type, c != nil) {
			k.required(path+".key", c.Key)
		}
	case ProcessorFilter:
		if f := p.Filter; k.variantSet(path, p.Type, f != nil) {
			k.required(path+".expr", f.Expr)
		}
	case ProcessorMap:
		if m := p.Map; k.variantSet(path, p.Type, m != nil) {
			k.required(path+".expr", m.Expr)
		}
	case ProcessorDedupe:
		if d := p.Dedupe; k.variantSet(path, p.Type, d != nil) {
			k.required(path+".key", d.Key)
			k.atLeast(path+".ttl_ms", d.TTLMS, 0)
		}
	case ProcessorWindow:
		if w := p.Window; k.variantSet(path, p.Type, w != nil) {
			k.checkWindow(path, w)
		}
	}
}

func (k *checker) checkWindow(path string, w *WindowProcessorConfig) {
	k.required(path+".key", w.Key)
	k.required(path+".time_field", w.TimeField)
	k.atLeast(path+".watermark_delay_ms", w.WatermarkDelayMS, 0)
	if checkEnum(k, path+".aggregate", w.Aggregate, aggregates, "aggregate") {
		if w.Aggregate == AggregateCount {
			if w.Field != "" {
				k.fail(path+".field", ErrBadValue, "count does not read a field; remove it or choose sum, min, max or avg")
			}
		} else if w.Field == "" {
			k.fail(path+".field", ErrRequired, "required by aggregate %q", w.Aggregate)
		}
	}
	if !checkEnum(k, path+".kind", w.Kind, windowKinds, "window kind") {
		return
	}
	needPositive := func(name string, v int64) {
		if v == 0 {
			k.fail(path+"."+name, ErrRequired, "required by %s windows", w.Kind)
		} else {
			k.atLeast(path+"."+name, v, 1)
		}
	}
	forbid := func(name string, v int64, instead string) {
		if v != 0 {
			k.fail(path+"."+name, ErrBadValue, "does not apply to %s windows%s", w.Kind, instead)
		}
	}
	switch w.Kind {
	case WindowTumbling:
		needPositive("size_ms", w.SizeMS)
		forbid("slide_ms", w.SlideMS, "; use kind: sliding")
		forbid("gap_ms", w.GapMS, "; use kind: session")
	case WindowSliding:
		needPositive("size_ms", w.SizeMS)
		needPositive("slide_ms", w.SlideMS)
		if w.SizeMS > 0 && w.SlideMS > w.SizeMS {
			k.fail(path+".slide_ms", ErrBadValue, "must be at most size_ms (%d), got %d; records between windows would be dropped", w.SizeMS, w.SlideMS)
		}
		forbid("gap_ms", w.GapMS, "; use kind: session")
	case WindowSession:
		needPositive("gap_ms", w.GapMS)
		forbid("size_ms", w.SizeMS, "; a session lasts until gap_ms passes without records")
		forbid("slide_ms", w.SlideMS, "")
	}
}

func (k *checker) checkOutput(path string, out *OutputConfig, crossField bool) {
	if out.Type == "" && out.Stdout == nil && out.File == nil && out.S3 == nil {
		k.fail(path, ErrRequired, "required")
		return
	}
	if !checkEnum(k, path+".type", out.Type, outputTypes, "output type") {
		return
	}
	switch out.Type {
	case OutputStdout:
		// No settings; a nil Stdout is as good as an empty one.
	case OutputFile:
		if k.variantSet(path, out.Type, out.File != nil) {
			k.required(path+".path", out.File.Path)
		}
	case OutputS3:
		if s := out.S3; k.variantSet(path, out.Type, s != nil) {
			if k.required(path+".bucket", s.Bucket) {
				k.checkBucket(path+".bucket", s.Bucket)
			}
			k.checkS3Connection(path, &s.S3Connection, crossField)
		}
	}
}

func (k *checker) checkBucket(path, bucket string) {
	if strings.ContainsAny(bucket, "/ \t\r\n") {
		k.fail(path, ErrBadValue, "%q is not a bucket name: put the key prefix in prefix", bucket)
	}
}

// checkS3Connection checks an S3Connection embedded at path: the endpoint
// as the store will read it and, between fields, that use_ssl does not
// contradict the endpoint's scheme. (Keys without their pair are refused by
// the store when it opens.)
func (k *checker) checkS3Connection(path string, c *S3Connection, crossField bool) {
	if c.Endpoint != "" {
		var bad *store.EndpointError
		if _, err := store.NormalizeEndpoint(c.Endpoint, false); errors.As(err, &bad) {
			if bad.Credentials {
				k.fail(path+".endpoint", ErrBadValue, "must not carry credentials; use access_key_id and secret_access_key")
			} else {
				k.fail(path+".endpoint", ErrBadValue, "%s", bad.Problem)
			}
		}
	}
	if !crossField {
		return
	}
	if c.UseSSL != nil {
		if scheme, _, ok := strings.Cut(c.Endpoint, "://"); ok && strings.EqualFold(scheme, "https") != *c.UseSSL {
			k.fail(path+".use_ssl", ErrBadValue, "is %t but the endpoint scheme is %s; drop one of them", *c.UseSSL, scheme)
		}
	}
}

func (k *checker) checkState(path string, s *EnhancedStateConfig, crossField bool) {
	backendOK := checkEnum(k, path+".backend_type", s.BackendType, backendTypes, "backend type")
	k.atLeast(path+".checkpoint_interval_ms", s.CheckpointIntervalMS, MinCheckpointIntervalMS)
	k.atLeast(path+".retained_checkpoints", int64(s.RetainedCheckpoints), 1)
	if s.LeaseTTLMS != 0 {
		k.atLeast(path+".lease_ttl_ms", s.LeaseTTLMS, MinLeaseTTLMS)
	}
	k.between(path+".key_groups", int64(s.KeyGroups), 1, MaxKeyGroups)
	if s.JobID != "" && !validJobID(s.JobID) {
		k.fail(path+".job_id", ErrBadValue, "%q is not a valid job id: use 1 to %d letters, digits, '_', '.', '-' or '+', starting with a letter or digit", s.JobID, maxJobIDLen)
	}
	if s3 := s.S3Config; s3 != nil {
		sp := path + ".s3_config"
		if s3.Bucket != "" {
			k.checkBucket(sp+".bucket", s3.Bucket)
		}
		k.checkS3Connection(sp, &s3.S3Connection, crossField)
	}
	tp := path + ".txlog"
	checkEnum(k, tp+".durability", s.Txlog.Durability, durabilities, "durability")
	k.atLeast(tp+".sync_interval_ms", s.Txlog.SyncIntervalMS, 1)
	k.between(tp+".segment_bytes", s.Txlog.SegmentBytes, MinTxlogSegmentBytes, MaxTxlogSegmentBytes)
	k.atLeast(tp+".retention_ms", s.Txlog.RetentionMS, 0)
	pp := path + ".performance"
	perf := &s.Performance
	k.between(pp+".batch_size_bytes", int64(perf.BatchSizeBytes), 1, MaxBatchSizeBytes)
	k.between(pp+".compression_level", int64(perf.CompressionLevel), 1, MaxCompressionLevel)
	k.atLeast(pp+".cache_size_bytes", perf.CacheSizeBytes, 0)
	k.between(pp+".max_concurrent_uploads", int64(perf.MaxConcurrentUploads), 1, MaxConcurrentUploads)

	if !crossField {
		return
	}
	if s.JobID == "" {
		k.fail(path+".job_id", ErrRequired, "required (DefaultJobID derives one from the stream ids)")
	}
	if s.ExactlyOnce && !s.Enabled {
		k.fail(path+".exactly_once", ErrBadValue, "needs enabled: true; exactly-once rests on checkpoints")
	}
	if s.Txlog.Enabled && !s.Enabled {
		k.fail(path+".txlog.enabled", ErrBadValue, "needs state.enabled: true; the log is replayed onto checkpoints")
	}
	if !s.Enabled || !backendOK {
		return
	}
	if s.Txlog.Enabled {
		switch s.BackendType {
		case StateBackendMemory:
			k.fail(path+".txlog.enabled", ErrBadValue, "needs a backend that outlives the process (local, s3 or hybrid), not %s", s.BackendType)
		case StateBackendS3, StateBackendHybrid:
			if strings.TrimSpace(s.Txlog.Dir) == "" {
				k.fail(path+".txlog.dir", ErrRequired, "required when backend_type is %q: the local directory the log is written in before its sealed segments are copied to the store", s.BackendType)
			}
		}
		if s.BackendType == StateBackendHybrid && s.Txlog.Dir != "" && s.Path != "" && within(s.Txlog.Dir, s.Path) {
			k.fail(path+".txlog.dir", ErrBadValue, "%q is inside path %q, the hybrid store's own directory; give the log a directory of its own", s.Txlog.Dir, s.Path)
		}
	}
	if s.BackendType == StateBackendLocal || s.BackendType == StateBackendHybrid {
		if strings.TrimSpace(s.Path) == "" {
			k.fail(path+".path", ErrRequired, "required when backend_type is %q", s.BackendType)
		}
	}
	if s.BackendType == StateBackendS3 || s.BackendType == StateBackendHybrid {
		if s.S3Config == nil || strings.TrimSpace(s.S3Config.Bucket) == "" {
			k.fail(path+".s3_config.bucket", ErrRequired, "required when backend_type is %q", s.BackendType)
		}
	}
}

// within reports whether dir is root or lies under it.
func within(dir, root string) bool {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(dir))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
