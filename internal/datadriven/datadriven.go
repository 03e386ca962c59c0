// Package datadriven runs tests written as files of cases, as pebble's
// datadriven package does, so that a behaviour with many cases reads as a
// table of inputs and outputs rather than as code. A file holds cases
// separated by blank lines; lines starting with # are comments:
//
//	# a comment
//	command arg key=value
//	input line
//	input line
//	----
//	expected output line
//
// The test's function gets each Case and returns its output, which must
// equal the expected lines. With -rewrite (see internal/golden) the file's
// expected outputs are rewritten from what the function returned.
package datadriven

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/golden"
)

// Case is one case of a file.
type Case struct {
	// Pos is "file:line" of the command line, for messages.
	Pos string
	// Cmd is the command, the first word of the case.
	Cmd string
	// Args are the words after the command: "key=value" or "key".
	Args []string
	// Input is the lines between the command and "----", joined with
	// newlines.
	Input string
	// Expected is the lines after "----", joined with newlines.
	Expected string

	prefix string // the file's text from the end of the last case through "----\n"
}

// Arg returns the value of the argument key ("" for a bare key) and whether
// the case has it.
func (c *Case) Arg(key string) (string, bool) {
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}

// Parse reads the cases of a file's text. A case needs a command line and
// "----"; its expected output ends at a blank line or the end of the text.
func Parse(path, text string) ([]*Case, string, error) {
	lines := strings.SplitAfter(text, "\n")
	var cases []*Case
	var prefix strings.Builder
	i := 0
	for i < len(lines) {
		line := strings.TrimRight(lines[i], "\n")
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			prefix.WriteString(lines[i])
			i++
			continue
		}
		fields := strings.Fields(line)
		c := &Case{Pos: fmt.Sprintf("%s:%d", path, i+1), Cmd: fields[0], Args: fields[1:]}
		prefix.WriteString(lines[i])
		i++
		var input []string
		for ; i < len(lines) && strings.TrimRight(lines[i], "\n") != "----"; i++ {
			if strings.TrimSpace(lines[i]) == "" {
				return nil, "", fmt.Errorf("%s: blank line before ----", c.Pos)
			}
			input = append(input, strings.TrimRight(lines[i], "\n"))
			prefix.WriteString(lines[i])
		}
		if i == len(lines) {
			return nil, "", fmt.Errorf("%s: no ---- after the command", c.Pos)
		}
		prefix.WriteString("----\n")
		i++
		var expected []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			expected = append(expected, strings.TrimRight(lines[i], "\n"))
		}
		c.Input, c.Expected = strings.Join(input, "\n"), strings.Join(expected, "\n")
		c.prefix = prefix.String()
		prefix.Reset()
		cases = append(cases, c)
	}
	return cases, prefix.String(), nil
}

// RunFile runs every case of the file at path as a subtest named by its
// position, and checks that run's output equals the expected one (trailing
// newlines aside).
func RunFile(t *testing.T, path string, run func(t *testing.T, c *Case) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cases, tail, err := Parse(path, string(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s has no cases", path)
	}
	var rewritten strings.Builder
	for _, c := range cases {
		var got string
		t.Run(fmt.Sprintf("line%s", c.Pos[strings.LastIndexByte(c.Pos, ':')+1:]), func(t *testing.T) {
			got = strings.TrimRight(run(t, c), "\n")
			if strings.Contains(got, "\n\n") {
				t.Fatalf("%s: output has a blank line, which would end the case:\n%s", c.Pos, got)
			}
			if !golden.Rewriting() && got != c.Expected {
				t.Errorf("%s: %s %s\n--- got\n%s\n--- want\n%s", c.Pos, c.Cmd, strings.Join(c.Args, " "), got, c.Expected)
			}
		})
		rewritten.WriteString(c.prefix)
		if got != "" {
			rewritten.WriteString(got + "\n")
		}
	}
	rewritten.WriteString(tail)
	if golden.Rewriting() {
		if err := os.WriteFile(path, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
