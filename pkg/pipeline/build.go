package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/arkstate/arkstate/pkg/pipeline/config"
)

// BuildSpec turns one configured stream into a runnable Spec. stdin and
// stdout serve the stdin input and stdout output. A file input must be
// readable and a file output directory writable, so that a bad
// configuration fails before anything runs.
func BuildSpec(ctx context.Context, cfg *config.Config, s config.StreamConfig, stdin io.Reader, stdout io.Writer) (Spec, error) {
	spec := Spec{ID: s.ID, Parallelism: s.Pipeline.ThreadNum, KeyGroups: cfg.State.KeyGroups}
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s: stream %s: %s", cfg.File, s.ID, fmt.Sprintf(format, args...))
	}
	switch s.Input.Type {
	case config.InputFile:
		in := s.Input.File
		f, err := os.Open(in.Path)
		if err != nil {
			return Spec{}, errf("input: %v", err)
		}
		f.Close()
		spec.Input = &FileInput{Path: in.Path, JSON: in.Format == config.FormatJSONL, Follow: in.Follow}
	case config.InputStdin:
		spec.Input = &StdinInput{Reader: stdin, JSON: s.Input.Stdin.Format == config.FormatJSONL}
	case config.InputGenerate:
		g := s.Input.Generate
		spec.Input = &GenerateInput{Seed: g.Seed, Rate: g.Rate, Count: g.Count, Words: g.Words, WordsPerLine: g.WordsPerLine}
	default:
		return Spec{}, errf("input type %q is not supported", s.Input.Type)
	}
	for i, p := range s.Pipeline.Processors {
		ps, err := buildProcessor(p)
		if err != nil {
			return Spec{}, errf("processors[%d]: %v", i, err)
		}
		spec.Processors = append(spec.Processors, ps)
	}
	exactlyOnce := cfg.State.Enabled && cfg.State.ExactlyOnce
	switch s.Output.Type {
	case config.OutputStdout:
		spec.Output = &WriterOutput{W: stdout}
	case config.OutputFile:
		out := &FileOutput{Dir: s.Output.File.Path, ExactlyOnce: exactlyOnce}
		if err := out.CheckWritable(); err != nil {
			return Spec{}, errf("%v", err)
		}
		spec.Output = out
	case config.OutputS3:
		c := s.Output.S3
		out, err := NewS3Output(ctx, S3OutputOptions{Bucket: c.Bucket, Prefix: c.Prefix,
			S3Options:   c.Options(),
			AtLeastOnce: !exactlyOnce})
		if err != nil {
			return Spec{}, errf("%v", err)
		}
		spec.Output = out
	default:
		return Spec{}, errf("output type %q is not supported", s.Output.Type)
	}
	return spec, nil
}

func buildProcessor(p config.ProcessorConfig) (ProcessorSpec, error) {
	switch p.Type {
	case config.ProcessorSplit:
		c := p.Split
		as := c.As
		if as == "" {
			as = c.Field
		}
		pattern := c.Pattern
		if pattern == "" {
			pattern = `\s+`
		}
		return Split(c.Field, pattern, c.Lowercase, as)
	case config.ProcessorCount:
		return Count(p.Count.Key), nil
	case config.ProcessorFilter:
		return Filter(p.Filter.Expr)
	case config.ProcessorMap:
		return Map(p.Map.Expr, p.Map.As)
	case config.ProcessorDedupe:
		return Dedupe(p.Dedupe.Key, time.Duration(p.Dedupe.TTLMS)*time.Millisecond), nil
	case config.ProcessorWindow:
		w := p.Window
		ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
		return Window(WindowSpec{
			Kind: string(w.Kind), Key: w.Key, TimeField: w.TimeField,
			Size: ms(w.SizeMS), Slide: ms(w.SlideMS), Gap: ms(w.GapMS), WatermarkDelay: ms(w.WatermarkDelayMS),
			Aggregate: string(w.Aggregate), Field: w.Field,
		})
	}
	return ProcessorSpec{}, fmt.Errorf("processor type %q is not supported", p.Type)
}

// StreamState returns the state configuration of one stream: with several
// streams each is its own job, stored under a subdirectory (or S3 prefix)
// named after the stream, with the stream id appended to the job id.
func StreamState(cfg *config.Config, s config.StreamConfig) (config.EnhancedStateConfig, string) {
	st := cfg.State
	if len(cfg.Streams) == 1 {
		return st, st.JobID
	}
	if st.Path != "" {
		st.Path = filepath.Join(st.Path, s.ID)
	}
	if st.S3Config != nil {
		c := *st.S3Config
		c.Prefix = path.Join(c.Prefix, s.ID)
		st.S3Config = &c
	}
	return st, st.JobID + "." + s.ID
}
