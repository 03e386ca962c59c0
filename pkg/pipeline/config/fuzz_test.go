package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that every
// configuration it accepts renders (String) into a file that parses back to
// the same rendering.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "*", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(wordcountYAML))
	f.Add([]byte("streams: [{id: s, input: {type: stdin}, output: {type: stdout}}]\nstate: {<<: {enabled: true}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a Config with error %v", err)
			}
			return
		}
		_ = c.Validate()
		out := c.String()
		again, err := Parse([]byte(out), "fuzz.yaml")
		if err != nil {
			t.Fatalf("rendering does not parse: %v\n%s", err, out)
		}
		if again.String() != out {
			t.Fatalf("rendering does not round-trip:\n%s\nthen\n%s", out, again)
		}
	})
}
