package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// nextLines reads in to the end, or n records (n > 0), and returns the
// lines and the position after the last.
func nextLines(t *testing.T, in Input, n int) ([]string, json.RawMessage) {
	t.Helper()
	var lines []string
	var last json.RawMessage
	for n <= 0 || len(lines) < n {
		rec, pos, err := in.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, rec["line"].(string))
		last = pos
	}
	return lines, last
}

// However the reads split the bytes, the lines and their offsets are a
// file input's.
func TestStdinInput_Chunking(t *testing.T) {
	const text = "alpha\nbeta gamma\r\n\ndelta\nno newline at the end"
	want := []string{"alpha", "beta gamma", "", "delta", "no newline at the end"}
	for name, r := range map[string]func() io.Reader{
		"Whole":   func() io.Reader { return strings.NewReader(text) },
		"OneByte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(text)) },
		"Half":    func() io.Reader { return iotest.HalfReader(strings.NewReader(text)) },
	} {
		t.Run(name, func(t *testing.T) {
			in := &StdinInput{Reader: r()}
			if err := in.Open(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			got, pos := nextLines(t, in, 0)
			if !slices.Equal(got, want) {
				t.Fatalf("lines %q, want %q", got, want)
			}
			if string(pos) != `{"offset":46}` {
				t.Fatalf("last position %s, want offset 46", pos)
			}
		})
	}
	t.Run("ErrLineTooLong", func(t *testing.T) {
		in := &StdinInput{Reader: io.LimitReader(neverNewline{}, maxLine+stdinChunk)}
		if err := in.Open(context.Background(), json.RawMessage(`{"offset":7}`)); err != nil {
			t.Fatal(err)
		}
		_, _, err := in.Next(context.Background())
		if err == nil || !strings.Contains(err.Error(), "line at offset 7 is longer than") {
			t.Fatalf("got %v, want the long line named by its offset", err)
		}
	})
	t.Run("ErrBadPosition", func(t *testing.T) {
		in := &StdinInput{Reader: strings.NewReader("")}
		if err := in.Open(context.Background(), json.RawMessage(`{"offset":-1}`)); err == nil || !strings.Contains(err.Error(), "bad checkpoint position") {
			t.Fatalf("got %v", err)
		}
	})
}

type neverNewline struct{}

func (neverNewline) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// stdinRun is one run of a journaled StdinInput on the log in dir: it
// recovers what earlier runs logged past pos, then reads r.
func stdinRun(t *testing.T, dir string, pos json.RawMessage, r io.Reader) (*StdinInput, *journal) {
	t.Helper()
	j, err := openJournal(context.Background(), "s", TxlogOptions{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := &StdinInput{Reader: r}
	off, lsn, err := in.journalFrom(pos)
	if err != nil {
		t.Fatal(err)
	}
	pieces, err := j.recoverInput(context.Background(), SourceID, off, lsn)
	if err != nil {
		t.Fatal(err)
	}
	in.setJournal(func(o int64, d []byte) (uint64, error) { return j.logInput(SourceID, o, d) }, pieces)
	if err := in.Open(context.Background(), pos); err != nil {
		t.Fatal(err)
	}
	return in, j
}

// What a run read past its checkpoint is read again from the log by the
// next run, before anything new; a line a run read only part of is
// dropped, and stays dropped however many runs recover past it.
func TestStdinInput_RecoverFromLog(t *testing.T) {
	dir := t.TempDir()

	// Run 1 reads everything in its pipe but is checkpointed after l1 only.
	in, j := stdinRun(t, dir, nil, iotest.OneByteReader(strings.NewReader("l1\nl2\nl3 begun")))
	got, _ := nextLines(t, in, 1)
	pos1 := in.position()
	rest, _ := nextLines(t, in, 0)
	if !slices.Equal(got, []string{"l1"}) || !slices.Equal(rest, []string{"l2", "l3 begun"}) {
		t.Fatalf("run 1 read %q then %q", got, rest)
	}
	j.close(context.Background())

	// Run 2 restarts from the checkpoint after l1: l2 comes from the log,
	// the partial "l3 begun" is dropped, and its own pipe follows.
	in, j = stdinRun(t, dir, pos1, strings.NewReader("n1\nn2 begun"))
	got, _ = nextLines(t, in, 2)
	if !slices.Equal(got, []string{"l2", "n1"}) {
		t.Fatalf("run 2 read %q, want l2 from the log, then n1", got)
	}
	j.close(context.Background())

	// Run 3 restarts from the same checkpoint: the same records, the cuts
	// of both restarts, then its own pipe.
	in, j = stdinRun(t, dir, pos1, strings.NewReader("x1\n"))
	got, pos3 := nextLines(t, in, 0)
	if !slices.Equal(got, []string{"l2", "n1", "x1"}) {
		t.Fatalf("run 3 read %q, want l2 n1 x1", got)
	}
	j.close(context.Background())

	// Run 4 starts after everything: nothing to recover.
	in, j = stdinRun(t, dir, pos3, strings.NewReader("y1\n"))
	got, _ = nextLines(t, in, 0)
	j.close(context.Background())
	if !slices.Equal(got, []string{"y1"}) {
		t.Fatalf("run 4 read %q, want y1 only", got)
	}
}
