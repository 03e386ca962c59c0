package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileInput_Resume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte("{\"n\":1}\n\n{\"n\":2}\n{\"n\":3}"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := &FileInput{Path: path, JSON: true}
	if err := in.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rec, pos, err := in.Next(ctx)
	if err != nil || rec["n"] != int64(1) {
		t.Fatalf("first record %v, %v", rec, err)
	}
	in.Close()
	// Resuming at the returned position yields the rest, the last line
	// without a newline included, then io.EOF.
	in = &FileInput{Path: path, JSON: true}
	if err := in.Open(ctx, pos); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var got []any
	for {
		rec, _, err := in.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec["n"])
	}
	if len(got) != 2 || got[0] != int64(2) || got[1] != int64(3) {
		t.Fatalf("resumed records %v", got)
	}
}

func TestFileInput_Follow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "growing.txt")
	if err := os.WriteFile(path, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := &FileInput{Path: path, Follow: true, Poll: time.Millisecond}
	if err := in.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if rec, _, err := in.Next(ctx); err != nil || rec["line"] != "one" {
		t.Fatalf("first line %v, %v", rec, err)
	}
	go func() {
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("tw")
		f.Sync()
		time.Sleep(20 * time.Millisecond)
		f.WriteString("o\n") // a line completed by a later write
		f.Close()
	}()
	rec, pos, err := in.Next(ctx)
	if err != nil || rec["line"] != "two" {
		t.Fatalf("followed line %v, %v", rec, err)
	}
	var p filePosition
	if json.Unmarshal(pos, &p); p.Offset != 8 {
		t.Fatalf("position %s, want offset 8", pos)
	}
	short, stop := context.WithTimeout(ctx, 30*time.Millisecond)
	defer stop()
	if _, _, err := in.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a followed file at its end: %v, want to wait for more", err)
	}
}

func TestFileInput_ErrBadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(path, []byte("{\"ok\":1}\n[1,2]\n"), 0o644)
	in := &FileInput{Path: path, JSON: true}
	if err := in.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Next(context.Background())
	if _, _, err := in.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "offset 9") {
		t.Fatalf("bad line: %v", err)
	}
}

func TestStdinInput_Lines(t *testing.T) {
	in := &StdinInput{Reader: strings.NewReader("a b\n{\"x\":1}\n")}
	if err := in.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r1, _, err1 := in.Next(context.Background())
	r2, _, err2 := in.Next(context.Background())
	_, _, err3 := in.Next(context.Background())
	if err1 != nil || err2 != nil || r1["line"] != "a b" || r2["line"] != `{"x":1}` || !errors.Is(err3, io.EOF) {
		t.Fatalf("stdin records %v %v, errors %v %v %v", r1, r2, err1, err2, err3)
	}
}

// A generate input resumed at a position produces exactly the records an
// uninterrupted one produces after it.
func TestGenerateInput_Resume(t *testing.T) {
	ctx := context.Background()
	all := &GenerateInput{Seed: 7, Count: 50, Words: 20}
	if err := all.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var pos20 json.RawMessage
	for i := 0; ; i++ {
		rec, pos, err := all.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, rec["line"].(string))
		if i == 19 {
			pos20 = pos
		}
	}
	if len(lines) != 50 {
		t.Fatalf("%d records, want 50", len(lines))
	}
	resumed := &GenerateInput{Seed: 7, Count: 50, Words: 20}
	if err := resumed.Open(ctx, pos20); err != nil {
		t.Fatal(err)
	}
	for i := 20; i < 50; i++ {
		rec, _, err := resumed.Next(ctx)
		if err != nil || rec["line"] != lines[i] {
			t.Fatalf("record %d after resume: %v, %v; want %q", i, rec, err, lines[i])
		}
	}
}

// A rate-limited generator restored far into its stream goes on at its rate
// at once: at 1 record a second, position 3600 would otherwise mean an hour
// before the next record.
func TestGenerateInput_ResumePacing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := &GenerateInput{Seed: 1, Rate: 1}
	if err := in.Open(ctx, json.RawMessage(`{"n":3600}`)); err != nil {
		t.Fatal(err)
	}
	if _, pos, err := in.Next(ctx); err != nil || string(pos) != `{"n":3601}` {
		t.Fatalf("first record after resuming at 3600: %s, %v", pos, err)
	}
}
