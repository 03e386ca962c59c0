package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestConfigDoc keeps docs/CONFIG.md complete: every YAML field and every
// environment variable must appear in it.
func TestConfigDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, v := range EnvVars() {
		if !strings.Contains(text, "`"+v.Name+"`") {
			t.Errorf("docs/CONFIG.md does not document %s", v.Name)
		}
	}
	types := []any{Config{}, StreamConfig{}, PipelineConfig{}, FileInputConfig{}, StdinInputConfig{},
		GenerateInputConfig{}, SplitProcessorConfig{}, CountProcessorConfig{}, FilterProcessorConfig{},
		MapProcessorConfig{}, DedupeProcessorConfig{}, WindowProcessorConfig{}, FileOutputConfig{},
		S3OutputConfig{}, EnhancedStateConfig{}, S3StateBackendConfig{}, S3Connection{}, PerformanceConfig{}}
	for _, v := range types {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			// A field is documented as `name` or as the tail of a path
			// such as `pipeline.processors`.
			if !strings.Contains(text, "`"+name+"`") && !strings.Contains(text, "."+name+"`") {
				t.Errorf("docs/CONFIG.md does not document %s field %q", typ.Name(), name)
			}
		}
	}
	for _, values := range [][]string{names(inputTypes), names(processorTypes), names(outputTypes),
		names(backendTypes), names(windowKinds), names(aggregates), names(recordFormats)} {
		for _, v := range values {
			if !strings.Contains(text, "`"+v+"`") {
				t.Errorf("docs/CONFIG.md does not mention the value %q", v)
			}
		}
	}
}

// The variable table derived from the env tags is the documented one,
// name, field and order alike.
func TestEnvVars_Doc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile("(?m)^\\| `(ARKFLOW_STATE_[A-Z0-9_]+)` \\| `(state\\.[a-z0-9_.]+)` \\|$")
	var documented []EnvVar
	for _, m := range rowRE.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, EnvVar{Name: m[1], Field: m[2]})
	}
	if got := EnvVars(); !slices.Equal(got, documented) {
		t.Fatalf("EnvVars() =\n%v\ndocs/CONFIG.md's table =\n%v", got, documented)
	}
}
