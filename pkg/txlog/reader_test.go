package txlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// copyToMem copies every object of src into a new memory store, standing in
// for an S3 copy of the log.
func copyToMem(t *testing.T, src store.Store) store.Store {
	t.Helper()
	ctx := context.Background()
	dst := store.NewMem(t.Name())
	t.Cleanup(func() { dst.Close() })
	for info, err := range src.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		rc, _, err := src.Get(ctx, info.Name)
		if err != nil {
			t.Fatal(err)
		}
		err = dst.Put(ctx, info.Name, rc, info.Size)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// timedLog writes n mutations, record i at time base + i seconds, to stream
// "main" with small segments.
func timedLog(t *testing.T, dir string, n int, base time.Time) {
	t.Helper()
	i := 0
	l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10, Now: func() time.Time { return base.Add(time.Duration(i) * time.Second) }})
	for ; i < n; i++ {
		if _, err := l.Append(mutation(i)); err != nil {
			t.Fatal(err)
		}
	}
	closeLog(t, l)
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	dir := t.TempDir()
	timedLog(t, dir, 100, base)
	stores := map[string]store.Store{"dir": dirStore(t, dir)}
	stores["mem"] = copyToMem(t, stores["dir"])

	for kind, s := range stores {
		t.Run("OK"+kind, func(t *testing.T) {
			cases := []struct {
				name      string
				from, to  uint64
				until     time.Time
				wantFirst uint64
				wantN     int
			}{
				{"All", 0, 0, time.Time{}, 1, 100},
				{"From", 37, 0, time.Time{}, 37, 64},
				{"FromTo", 37, 40, time.Time{}, 37, 4},
				{"ToOnly", 0, 10, time.Time{}, 1, 10},
				{"Until", 5, 0, base.Add(9 * time.Second), 5, 6}, // LSN 10 is at base+9s
				{"UntilBeforeAll", 0, 0, base.Add(-time.Second), 0, 0},
				{"FromLast", 100, 0, time.Time{}, 100, 1},
				{"FromNext", 101, 0, time.Time{}, 0, 0},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					var got []uint64
					err := Replay(ctx, s, "main", c.from, c.to, c.until, func(r *format.Record) error {
						checkMutation(t, r, int(r.LSN-1), r.LSN)
						got = append(got, r.LSN)
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != c.wantN || (c.wantN > 0 && got[0] != c.wantFirst) {
						t.Fatalf("replayed %v, want %d records from %d", got, c.wantN, c.wantFirst)
					}
					for i := 1; i < len(got); i++ {
						if got[i] != got[i-1]+1 {
							t.Fatalf("out of order: %v", got)
						}
					}
				})
			}
		})
	}
	s := stores["dir"]
	t.Run("OKStopsOnCallbackError", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := Replay(ctx, s, "main", 0, 0, time.Time{}, func(*format.Record) error { n++; return stop })
		if err != stop || n != 1 {
			t.Fatalf("Replay = %v after %d records", err, n)
		}
	})
	t.Run("ErrLSNNotFound", func(t *testing.T) {
		err := Replay(ctx, s, "main", 102, 0, time.Time{}, func(*format.Record) error { return nil })
		if !errors.Is(err, ErrLSNNotFound) {
			t.Fatalf("Replay past the end = %v", err)
		}
	})
	t.Run("ErrStreamNotFound", func(t *testing.T) {
		err := Replay(ctx, s, "nope", 0, 0, time.Time{}, func(*format.Record) error { return nil })
		if !errors.Is(err, ErrStreamNotFound) {
			t.Fatalf("Replay of a missing stream = %v", err)
		}
	})
	t.Run("ErrRange", func(t *testing.T) {
		if err := Replay(ctx, s, "main", 10, 5, time.Time{}, func(*format.Record) error { return nil }); err == nil {
			t.Fatal("from > to accepted")
		}
	})
}

// damagedLog writes 100 mutations with small segments to a new directory,
// applies damage to its segment files, and returns the directory and the
// segment paths.
func damagedLog(t *testing.T, damage func(segs []string)) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	segs := writeLog(t, dir, 100)
	if len(segs) < 5 {
		t.Fatalf("only %d segments", len(segs))
	}
	damage(segs)
	return dir, segs
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func objectName(path string) string {
	return "txlog/" + filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
}

func TestReplay_Damage(t *testing.T) {
	ctx := context.Background()
	t.Run("ErrChecksumMidSegment", func(t *testing.T) {
		var off int64
		dir, segs := damagedLog(t, func(segs []string) {
			off = recordOffsets(t, segs[2])[2]
			flipByte(t, segs[2], off+10)
		})
		n := 0
		err := Replay(ctx, dirStore(t, dir), "main", 0, 0, time.Time{}, func(*format.Record) error { n++; return nil })
		ce := assertCorrupt(t, err, format.ErrChecksum, off)
		if ce.File != objectName(segs[2]) {
			t.Fatalf("error names %s, want %s", ce.File, objectName(segs[2]))
		}
		if want := int(firstLSNOf(t, segs[2]) + 2 - 1); n != want {
			t.Fatalf("%d records before the damage, want %d", n, want)
		}
	})
	t.Run("ErrGapMissingSegment", func(t *testing.T) {
		dir, segs := damagedLog(t, func(segs []string) { os.Remove(segs[2]) })
		_, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		ce := assertCorrupt(t, err, ErrGap, -1)
		if ce.File != objectName(segs[3]) || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("gap error %v", err)
		}
		// Replaying from after the gap works.
		recs, err := replayAll(t, dirStore(t, dir), "main", firstLSNOf(t, segs[3]), 0)
		if err != nil || len(recs) == 0 {
			t.Fatalf("replay after the gap: %d records, %v", len(recs), err)
		}
	})
	t.Run("ErrTruncatedSealed", func(t *testing.T) {
		dir, segs := damagedLog(t, func(segs []string) {
			fi, _ := os.Stat(segs[1])
			os.Truncate(segs[1], fi.Size()-3)
		})
		_, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		if !errors.Is(err, format.ErrTruncated) || !strings.Contains(err.Error(), filepath.Base(segs[1])) {
			t.Fatalf("Replay over a cut sealed segment = %v", err)
		}
	})
	t.Run("OKTornTail", func(t *testing.T) {
		dir, _ := damagedLog(t, func(segs []string) {
			last := segs[len(segs)-1]
			fi, _ := os.Stat(last)
			os.Truncate(last, fi.Size()-3)
		})
		recs, err := replayAll(t, dirStore(t, dir), "main", 0, 0)
		if err != nil || len(recs) != 99 {
			t.Fatalf("Replay over a torn tail: %d records, %v", len(recs), err)
		}
	})
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		base := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
		dir := t.TempDir()
		timedLog(t, dir, 100, base)
		for _, s := range []store.Store{dirStore(t, dir), copyToMem(t, dirStore(t, dir))} {
			rep, err := Verify(ctx, s, "main")
			if err != nil {
				t.Fatal(err)
			}
			if rep.Damaged() || len(rep.Problems) != 0 || rep.Records != 100 || rep.FirstLSN != 1 || rep.LastLSN != 100 {
				t.Fatalf("report %+v", rep)
			}
			var records int64
			next := uint64(1)
			for _, seg := range rep.Segments {
				if seg.Status != StatusOK || seg.FirstLSN != next || seg.Created.IsZero() {
					t.Fatalf("segment %+v", seg)
				}
				if !seg.FirstTime.Equal(base.Add(time.Duration(seg.FirstLSN-1)*time.Second)) ||
					!seg.LastTime.Equal(base.Add(time.Duration(seg.LastLSN-1)*time.Second)) {
					t.Fatalf("segment %s times %v..%v", seg.Name, seg.FirstTime, seg.LastTime)
				}
				records += seg.Records
				next = seg.LastLSN + 1
			}
			if records != 100 {
				t.Fatalf("segments hold %d records", records)
			}
		}
	})

	type want struct {
		kind   ProblemKind
		seg    int // index into the segment paths; -1 for the last
		offset func(segs []string) int64
		what   string
	}
	at := func(off int64) func([]string) int64 { return func([]string) int64 { return off } }
	cases := []struct {
		name   string
		damage func(t *testing.T, segs []string)
		want   want
		status SegmentStatus
	}{
		{"ErrChecksumMidSegment", func(t *testing.T, segs []string) {
			flipByte(t, segs[2], recordOffsets(t, segs[2])[2]+10)
		}, want{ProblemDamage, 2, nil, "checksum mismatch"}, StatusDamaged},
		{"ErrChecksumLastSegment", func(t *testing.T, segs []string) {
			// Damage followed by intact records is not a torn tail.
			last := segs[len(segs)-1]
			flipByte(t, last, recordOffsets(t, last)[0]+10)
		}, want{ProblemDamage, -1, func(segs []string) int64 { return SegmentHeaderSize }, "checksum mismatch"}, StatusDamaged},
		{"ErrHeader", func(t *testing.T, segs []string) {
			flipByte(t, segs[1], 3)
		}, want{ProblemDamage, 1, at(0), "bad magic"}, StatusDamaged},
		{"ErrTruncatedSealed", func(t *testing.T, segs []string) {
			fi, _ := os.Stat(segs[1])
			os.Truncate(segs[1], fi.Size()-3)
		}, want{ProblemDamage, 1, nil, "sealed segment cut short"}, StatusDamaged},
		{"OKTornTail", func(t *testing.T, segs []string) {
			last := segs[len(segs)-1]
			fi, _ := os.Stat(last)
			os.Truncate(last, fi.Size()-3)
		}, want{ProblemTornTail, -1, nil, "torn tail"}, StatusTornTail},
		{"OKZeroTail", func(t *testing.T, segs []string) {
			last := segs[len(segs)-1]
			fi, _ := os.Stat(last)
			os.Truncate(last, fi.Size()+100)
		}, want{ProblemTornTail, -1, nil, "100 bytes after LSN 100"}, StatusTornTail},
		{"ErrGapMissingSegment", func(t *testing.T, segs []string) {
			os.Remove(segs[2])
		}, want{ProblemDamage, 2, at(-1), "LSN gap"}, StatusOK},
		{"ErrOverlap", func(t *testing.T, segs []string) {
			// A one-record segment that repeats the last LSN of segs[2],
			// sitting between it and segs[3].
			last := firstLSNOf(t, segs[3]) - 1
			seg := buildSegment(t, last, withLSN(mutation(int(last-1)), last))
			os.WriteFile(filepath.Join(filepath.Dir(segs[3]), segmentFile(last)), seg, 0o644)
		}, want{ProblemDamage, 3, at(-1), "LSN overlap"}, StatusOK},
		{"OKStray", func(t *testing.T, segs []string) {
			os.WriteFile(filepath.Join(filepath.Dir(segs[0]), "notes.txt"), []byte("hi"), 0o644)
		}, want{ProblemStray, -3, at(-1), "not a segment"}, StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := damagedLog(t, func(segs []string) { c.damage(t, segs) })
			segs := segmentPaths(t, dir, "main")
			rep, err := Verify(ctx, dirStore(t, dir), "main")
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 1 {
				t.Fatalf("problems %+v, want one", rep.Problems)
			}
			p := rep.Problems[0]
			var file string
			switch c.want.seg {
			case -1:
				file = objectName(segs[len(segs)-1])
			case -3:
				file = "txlog/main/notes.txt"
			default:
				file = objectName(segs[c.want.seg])
			}
			if p.Kind != c.want.kind || p.File != file || !strings.Contains(p.What, c.want.what) || p.Advice == "" {
				t.Fatalf("problem %+v, want %s in %s about %q", p, c.want.kind, file, c.want.what)
			}
			if c.want.offset != nil && p.Offset != c.want.offset(segs) {
				t.Fatalf("problem at offset %d, want %d", p.Offset, c.want.offset(segs))
			}
			if rep.Damaged() != (c.want.kind == ProblemDamage) {
				t.Fatalf("Damaged() = %v for %s", rep.Damaged(), c.want.kind)
			}
			for _, s := range rep.Segments {
				if s.Name == p.File && s.Status != c.status {
					t.Fatalf("segment %s status %s, want %s", s.Name, s.Status, c.status)
				}
			}
		})
	}
	t.Run("ErrStreamNotFound", func(t *testing.T) {
		if _, err := Verify(ctx, dirStore(t, t.TempDir()), "main"); !errors.Is(err, ErrStreamNotFound) {
			t.Fatalf("Verify of a missing stream = %v", err)
		}
	})
	t.Run("OKReadOnly", func(t *testing.T) {
		// Verify of a torn tail must not cut it: it only reads.
		dir, segs := damagedLog(t, func(segs []string) {
			last := segs[len(segs)-1]
			fi, _ := os.Stat(last)
			os.Truncate(last, fi.Size()-3)
		})
		last := segs[len(segs)-1]
		before, _ := os.ReadFile(last)
		if _, err := Verify(ctx, dirStore(t, dir), "main"); err != nil {
			t.Fatal(err)
		}
		if after, _ := os.ReadFile(last); !bytes.Equal(before, after) {
			t.Fatal("Verify changed the segment")
		}
	})
}

func TestStreams(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		for _, s := range []string{"b", "a", "a-b"} {
			l := openLog(t, dir, s, Options{})
			appendN(t, l, 0, 1, 1)
			closeLog(t, l)
		}
		streams, err := Streams(context.Background(), dirStore(t, dir))
		if err != nil || strings.Join(streams, ",") != "a,a-b,b" {
			t.Fatalf("Streams = %v, %v", streams, err)
		}
		segs, err := Segments(context.Background(), dirStore(t, dir), "a-b")
		if err != nil || len(segs) != 1 || segs[0].Name != "txlog/a-b/00000000000000000001.log" || segs[0].FirstLSN != 1 || segs[0].Size == 0 {
			t.Fatalf("Segments = %+v, %v", segs, err)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		streams, err := Streams(context.Background(), dirStore(t, t.TempDir()))
		if err != nil || len(streams) != 0 {
			t.Fatalf("Streams = %v, %v", streams, err)
		}
	})
}
