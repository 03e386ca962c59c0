package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/datadriven"
)

// alignLog is an alignedTask that writes down what it is made to do, and
// fails the call named by fail.
type alignLog struct {
	out  *strings.Builder
	fail string
}

func (l alignLog) do(what, line string) error {
	fmt.Fprintln(l.out, line)
	if l.fail == what {
		return fmt.Errorf("%s failed", what)
	}
	return nil
}

func (l alignLog) records(recs []Record) error {
	words := make([]string, len(recs))
	for i, r := range recs {
		words[i] = fmt.Sprint(r["w"])
	}
	return l.do("records", "records "+strings.Join(words, " "))
}
func (l alignLog) barrier(id uint64) error { return l.do("barrier", fmt.Sprintf("barrier %d", id)) }
func (l alignLog) flush() error            { return l.do("flush", "flush") }
func (l alignLog) finish() error           { return l.do("finish", "finish") }

func TestAligner(t *testing.T) {
	datadriven.RunFile(t, "testdata/align.txt", func(t *testing.T, c *datadriven.Case) string {
		inputs, _ := c.Arg("inputs")
		n, err := strconv.Atoi(inputs)
		if err != nil || n < 1 {
			t.Fatalf("%s: inputs=%q", c.Pos, inputs)
		}
		fail, _ := c.Arg("fail")
		var out strings.Builder
		a, on := newAligner(n), alignLog{out: &out, fail: fail}
		for _, line := range strings.Split(c.Input, "\n") {
			f := strings.Fields(line)
			from, err := strconv.Atoi(f[0])
			if err != nil || from >= n || len(f) < 2 {
				t.Fatalf("%s: bad message %q", c.Pos, line)
			}
			m := message{from: from}
			switch f[1] {
			case "rec":
				for _, w := range f[2:] {
					m.recs = append(m.recs, Record{"w": w})
				}
			case "barrier":
				if m.barrier, err = strconv.ParseUint(f[2], 10, 64); err != nil {
					t.Fatalf("%s: %v", c.Pos, err)
				}
			case "flush":
				m.flush = true
			case "eof":
				m.eof = true
			default:
				t.Fatalf("%s: unknown kind %q", c.Pos, f[1])
			}
			done, err := a.push(m, on)
			if err != nil {
				fmt.Fprintf(&out, "error: %v\n", err)
				break
			}
			if done {
				out.WriteString("done\n")
			}
		}
		return out.String()
	})
}
