package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/datadriven"
	"github.com/arkstate/arkstate/pkg/state"
)

// openWindow builds a window processor over a backend that owns every key
// group.
func openWindow(t *testing.T, spec WindowSpec) *windowProc {
	t.Helper()
	ps, err := Window(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := state.NewBackend(state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := ps.New().(*windowProc)
	if err := p.Open(b); err != nil {
		t.Fatal(err)
	}
	return p
}

// describe renders an emitted window compactly for comparisons.
func describe(t *testing.T, rec Record, aggregate string) string {
	t.Helper()
	s := fmt.Sprintf("%v [%v,%v) n=%v", rec["key"], rec["window_start"], rec["window_end"], rec["count"])
	if aggregate != AggregateCount {
		s += fmt.Sprintf(" %s=%v", aggregate, rec[aggregate])
	}
	return s
}

// event is a record of the unit tests: key, event time, value.
type event struct {
	key string
	ts  int64
	v   float64
}

// runWindow feeds events and returns what fired while processing and what
// Flush fired (sorted, since Flush goes by key group).
func runWindow(t *testing.T, p *windowProc, events []event) (fired, flushed []string) {
	t.Helper()
	for _, e := range events {
		err := p.Process(Record{"k": e.key, "ts": e.ts, "v": e.v}, func(r Record) error {
			fired = append(fired, describe(t, r, p.cfg.aggregate))
			return nil
		})
		if err != nil {
			t.Fatalf("event %+v: %v", e, err)
		}
	}
	if err := p.Flush(func(r Record) error {
		flushed = append(flushed, describe(t, r, p.cfg.aggregate))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(flushed)
	return fired, flushed
}

func dropped(t *testing.T, p *windowProc, key string) uint64 {
	t.Helper()
	m, _, err := p.meta.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	return m.Dropped
}

// assertNoOpenWindows checks that Flush left no window or index entry.
func assertNoOpenWindows(t *testing.T, p *windowProc, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if n, err := p.windows.Len(k); err != nil || n != 0 {
			t.Fatalf("key %s: %d windows left after flush (%v)", k, n, err)
		}
	}
	for _, ik := range p.indexKeys {
		if n, err := p.index.Len(ik); err != nil || n != 0 {
			t.Fatalf("index %s: %d keys left after flush (%v)", ik, n, err)
		}
	}
}

// TestWindow_Cases runs the cases of testdata/window.txt.
func TestWindow_Cases(t *testing.T) {
	datadriven.RunFile(t, "testdata/window.txt", func(t *testing.T, c *datadriven.Case) string {
		spec := WindowSpec{Key: "k", TimeField: "ts"}
		for _, arg := range c.Args {
			k, v, _ := strings.Cut(arg, "=")
			ms := func() time.Duration {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("%s: %s: %v", c.Pos, arg, err)
				}
				return time.Duration(n) * time.Millisecond
			}
			switch k {
			case "kind":
				spec.Kind = v
			case "size":
				spec.Size = ms()
			case "slide":
				spec.Slide = ms()
			case "gap":
				spec.Gap = ms()
			case "delay":
				spec.WatermarkDelay = ms()
			case "aggregate":
				spec.Aggregate = v
			case "field":
				spec.Field = v
			default:
				t.Fatalf("%s: unknown argument %q", c.Pos, arg)
			}
		}
		p := openWindow(t, spec)
		var events []event
		keys := map[string]bool{}
		for _, line := range strings.Split(c.Input, "\n") {
			line, _, _ = strings.Cut(line, "#")
			var e event
			if _, err := fmt.Sscan(line, &e.key, &e.ts, &e.v); err != nil {
				t.Fatalf("%s: record %q: %v", c.Pos, line, err)
			}
			events = append(events, e)
			keys[e.key] = true
		}
		fired, flushed := runWindow(t, p, events)
		var out strings.Builder
		for _, f := range fired {
			fmt.Fprintf(&out, "fired %s\n", f)
		}
		for _, f := range flushed {
			fmt.Fprintf(&out, "flushed %s\n", f)
		}
		sorted := slices.Sorted(maps.Keys(keys))
		for _, k := range sorted {
			if d := dropped(t, p, k); d != 0 {
				fmt.Fprintf(&out, "dropped %s %d\n", k, d)
			}
		}
		assertNoOpenWindows(t, p, sorted...)
		return out.String()
	})
}

func TestWindow_Process(t *testing.T) {
	spec := WindowSpec{Kind: "tumbling", Key: "k", TimeField: "ts", Size: time.Minute, Aggregate: "sum", Field: "v"}
	t.Run("OK", func(t *testing.T) {
		p := openWindow(t, spec)
		var got []Record
		for _, ts := range []any{
			"2024-01-02T03:04:05.678Z",
			json.Number("1704164645679"),
			json.Number("1704164645680.9"),
			"1704164645681",
			"2024-01-02T04:04:05+01:00",
			float64(1704164645682),
		} {
			if err := p.Process(Record{"k": json.Number("7"), "ts": ts, "v": "1.5"}, func(r Record) error { got = append(got, r); return nil }); err != nil {
				t.Fatalf("%v: %v", ts, err)
			}
		}
		if err := p.Flush(func(r Record) error { got = append(got, r); return nil }); err != nil {
			t.Fatal(err)
		}
		want := Record{"key": "7", "window_start": int64(1704164640000), "window_end": int64(1704164700000), "count": uint64(6), "sum": 9.0}
		if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
			t.Fatalf("emitted %v, want [%v]", got, want)
		}
	})
	for _, tc := range []struct {
		name string
		rec  Record
		want string
	}{
		{"ErrNoKey", Record{"ts": 1, "v": 1}, `"k"`},
		{"ErrNoTime", Record{"k": "a", "v": 1}, `no time field "ts"`},
		{"ErrNullTime", Record{"k": "a", "ts": nil, "v": 1}, `time field "ts" is null`},
		{"ErrBadTime", Record{"k": "a", "ts": "yesterday", "v": 1}, `time field "ts": "yesterday" is neither`},
		{"ErrTimeType", Record{"k": "a", "ts": true, "v": 1}, `time field "ts" is a bool`},
		{"ErrTimeRange", Record{"k": "a", "ts": 1e300, "v": 1}, `time field "ts": 1e+300 is out of range`},
		{"ErrTimeNaN", Record{"k": "a", "ts": math.NaN(), "v": 1}, `time field "ts": NaN is out of range`},
		{"ErrNoField", Record{"k": "a", "ts": 1}, `aggregated field "v": record has no field "v"`},
		{"ErrFieldText", Record{"k": "a", "ts": 1, "v": "many"}, `aggregated field "v": strconv.ParseFloat: parsing "many"`},
		{"ErrFieldType", Record{"k": "a", "ts": 1, "v": []any{1}}, `aggregated field "v": field "v" is not a number`},
		{"ErrFieldInf", Record{"k": "a", "ts": 1, "v": "+Inf"}, `aggregated field "v": +Inf is not a finite number`},
		{"ErrSumOverflow", Record{"k": "a", "ts": 1, "v": math.MaxFloat64}, "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openWindow(t, spec)
			var err error
			for range 2 { // twice, for the overflow
				if err = p.Process(tc.rec, func(Record) error { return nil }); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %s", err, tc.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	ok := WindowSpec{Kind: "sliding", Key: "k", TimeField: "ts", Size: time.Second, Slide: time.Millisecond}
	t.Run("OK", func(t *testing.T) {
		ps, err := Window(ok)
		if err != nil {
			t.Fatal(err)
		}
		if ps.Name != "window" || !ps.Keyed() {
			t.Fatalf("spec %+v is not a keyed window", ps)
		}
		if k, err := ps.Key(Record{"k": "x"}); k != "x" || err != nil {
			t.Fatalf("key %q, %v", k, err)
		}
	})
	for _, tc := range []struct {
		name string
		edit func(*WindowSpec)
		want string
	}{
		{"ErrKind", func(s *WindowSpec) { s.Kind = "hopping" }, `kind "hopping"`},
		{"ErrNoKey", func(s *WindowSpec) { s.Key = "" }, "key field is required"},
		{"ErrNoTimeField", func(s *WindowSpec) { s.TimeField = "" }, "time field is required"},
		{"ErrNoSize", func(s *WindowSpec) { s.Size = 0 }, "size 0s must be positive"},
		{"ErrSubMillisecond", func(s *WindowSpec) { s.Size = 1500 * time.Microsecond }, "not a whole number of milliseconds"},
		{"ErrSlideTooLong", func(s *WindowSpec) { s.Slide = 2 * time.Second }, "slide 2s is longer than size 1s"},
		{"ErrTooManyWindows", func(s *WindowSpec) { s.Size = 1001 * time.Millisecond }, "in 1001 windows"},
		{"ErrNoGap", func(s *WindowSpec) { s.Kind = "session" }, "gap 0s must be positive"},
		{"ErrNegativeDelay", func(s *WindowSpec) { s.WatermarkDelay = -time.Second }, "watermark delay -1s must be positive"},
		{"ErrAggregate", func(s *WindowSpec) { s.Aggregate = "median" }, `aggregate "median"`},
		{"ErrNoField", func(s *WindowSpec) { s.Aggregate = "avg" }, "aggregate avg needs a field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := ok
			tc.edit(&spec)
			_, err := Window(spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The index keys of a key-group range are those of the full range: a
// restore at another parallelism finds the index entries again.
func TestWindow_IndexKeys(t *testing.T) {
	for _, n := range []uint32{1, 7, 128, 1000} {
		full, err := indexKeys(n, state.KeyGroupRange{Start: 0, End: n - 1})
		if err != nil {
			t.Fatal(err)
		}
		for kg, k := range full {
			if got := state.KeyGroupFor(k, n); got != uint32(kg) {
				t.Fatalf("n=%d: index key %q is in key group %d, not %d", n, k, got, kg)
			}
		}
		for _, p := range []int{2, 3} {
			if uint32(p) > n {
				continue
			}
			for i := range p {
				rng, err := state.RangeForSubtask(n, p, i)
				if err != nil {
					t.Fatal(err)
				}
				part, err := indexKeys(n, rng)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(part, full[rng.Start:rng.End+1]) {
					t.Fatalf("n=%d, range %v: index keys differ from the full range's", n, rng)
				}
			}
		}
	}
}

// sessionEvent is a line of the restart test's input.
type sessionEvent struct {
	Key string `json:"user"`
	TS  any    `json:"ts"`
	V   int    `json:"v"`
	ms  int64
}

// writeSessionEvents writes n JSON lines over keys users. Event times mostly
// increase, some lag a little (within the watermark delay) and a few lag a
// lot (late); a fifth are RFC 3339 strings.
func writeSessionEvents(t *testing.T, path string, n, keys int, seed uint64) []sessionEvent {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	events := make([]sessionEvent, n)
	base := int64(1_700_000_000_000)
	for i := range events {
		base += int64(rng.IntN(20))
		ms := base
		switch r := rng.IntN(100); {
		case r < 15:
			ms -= int64(rng.IntN(400))
		case r < 18:
			ms -= int64(rng.IntN(8000))
		}
		e := sessionEvent{Key: fmt.Sprintf("u%d", rng.IntN(1+rng.IntN(keys))), V: rng.IntN(100), ms: ms, TS: ms}
		if rng.IntN(5) == 0 {
			e.TS = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
		}
		events[i] = e
		b, _ := json.Marshal(e)
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return events
}

// modelSessions computes the expected session windows of events with plain
// slices, as lines in the output's JSON form, plus how many records were
// dropped and how many records merged two or more sessions.
func modelSessions(events []sessionEvent, gap, delay int64) (lines []string, drops, bridges int) {
	type session struct{ start, end, n, sum int64 }
	open := map[string][]session{}
	maxTime := map[string]int64{}
	emit := func(key string, s session) {
		b, _ := json.Marshal(map[string]any{"key": key, "window_start": s.start, "window_end": s.end, "count": s.n, "avg": float64(s.sum) / float64(s.n)})
		lines = append(lines, string(b))
	}
	for _, e := range events {
		mt, seen := maxTime[e.Key]
		cur := session{e.ms, e.ms + gap, 1, int64(e.V)}
		var rest []session
		merged := 0
		for _, s := range open[e.Key] {
			if s.start < e.ms+gap && e.ms < s.end {
				cur = session{min(cur.start, s.start), max(cur.end, s.end), cur.n + s.n, cur.sum + s.sum}
				merged++
			} else {
				rest = append(rest, s)
			}
		}
		if seen && merged == 0 && cur.end <= mt-delay {
			drops++
			continue
		}
		if merged > 1 {
			bridges++
		}
		if !seen || e.ms > mt {
			maxTime[e.Key] = e.ms
		}
		open[e.Key] = nil
		for _, s := range append(rest, cur) {
			if s.end <= maxTime[e.Key]-delay {
				emit(e.Key, s)
			} else {
				open[e.Key] = append(open[e.Key], s)
			}
		}
	}
	for k, ss := range open {
		for _, s := range ss {
			emit(k, s)
		}
	}
	slices.Sort(lines)
	return lines, drops, bridges
}

// readLines returns the committed output lines of out, sorted.
func readLines(t *testing.T, out string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, "part-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if line != "" {
				lines = append(lines, line)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

func sessionSpec(t *testing.T, input, dir string, parallelism int) Spec {
	t.Helper()
	w, err := Window(WindowSpec{Kind: "session", Key: "user", TimeField: "ts", Gap: 3 * time.Second, WatermarkDelay: 500 * time.Millisecond, Aggregate: "avg", Field: "v"})
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		ID:          "sessions",
		Input:       &FileInput{Path: input, JSON: true},
		Processors:  []ProcessorSpec{w},
		Output:      &FileOutput{Dir: filepath.Join(dir, "out"), ExactlyOnce: true},
		Parallelism: parallelism,
		KeyGroups:   128,
	}
}

// A session-window pipeline cancelled at random moments and restarted, at a
// different parallelism each time, commits exactly the windows of an
// uninterrupted run, and those are the windows a plain model computes.
func TestWindow_RestartExactlyOnce(t *testing.T) {
	root := t.TempDir()
	input := filepath.Join(root, "events.jsonl")
	events := writeSessionEvents(t, input, 5000, 300, 5)
	want, drops, bridges := modelSessions(events, 3000, 500)
	if drops == 0 || bridges == 0 {
		t.Fatalf("the input exercises too little: %d dropped, %d bridging records", drops, bridges)
	}

	straight := filepath.Join(root, "straight")
	r, err := NewRunner(sessionSpec(t, input, straight, 2), Options{Repo: openRepo(t, straight), Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	whole := time.Since(start)
	t.Logf("uninterrupted run: %v, %d checkpoints", whole, r.Stats().CheckpointsCompleted.Load())
	got := readLines(t, filepath.Join(straight, "out"))
	if !slices.Equal(got, want) {
		t.Fatalf("uninterrupted run: %d windows differ from the model's %d; first: %q vs %q", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}

	// The interruptions are timed, so on an unlucky schedule a run may
	// finish after too few of them: the scenario then starts over afresh.
	for scenario := 0; ; scenario++ {
		dir := filepath.Join(root, fmt.Sprintf("restarted-%d", scenario))
		restored := runInterrupted(t, input, dir, whole, uint64(scenario))
		got = readLines(t, filepath.Join(dir, "out"))
		if !slices.Equal(got, want) {
			missing, extra := diffSorted(want, got)
			t.Fatalf("restarted runs: %d windows, want %d; missing %q, extra %q", len(got), len(want), missing[:min(3, len(missing))], extra[:min(3, len(extra))])
		}
		if restored >= 3 {
			break
		}
		if scenario == 4 {
			t.Fatalf("in 5 tries, never more than %d runs resumed from a checkpoint", restored)
		}
	}
}

// runInterrupted runs the session pipeline into dir, cancelling runs at
// random moments and restarting them with parallelism 1, 2, 3, 1, ...,
// until one finishes; it returns how many runs resumed from a checkpoint.
// Each run gets 3-25% of whole, the time an uninterrupted run took, so
// most are cut off whatever the machine's speed. A run cut off before its
// first checkpoint completes makes no progress, so the time doubles after
// every such run (and resets after one that does).
func runInterrupted(t *testing.T, input, dir string, whole time.Duration, seed uint64) (restored int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 6))
	stalls := 0
	for attempt := 0; ; attempt++ {
		if attempt > 200 {
			t.Fatal("did not finish in 200 attempts")
		}
		r, err := NewRunner(sessionSpec(t, input, dir, 1+attempt%3), Options{Repo: openRepo(t, dir), Interval: 3 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		limit := whole * time.Duration(3+rng.IntN(23)) / 100 << min(stalls, 6)
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		err = r.Run(ctx)
		cancel()
		completed := r.Stats().CheckpointsCompleted.Load()
		t.Logf("%s attempt %d (%v): restored %d, completed %d, in %d: %v", filepath.Base(dir), attempt, limit, r.Stats().RestoredFrom.Load(), completed, r.Stats().RecordsIn.Load(), err)
		if r.Stats().RestoredFrom.Load() > 0 {
			restored++
		}
		switch {
		case err == nil:
			return restored
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatal(err)
		case completed == 0:
			stalls++
		default:
			stalls = 0
		}
	}
}

// diffSorted returns what sorted a has that sorted b lacks and vice versa,
// counting duplicates.
func diffSorted(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

func BenchmarkWindow_Process(b *testing.B) {
	for _, kind := range []string{"tumbling", "sliding", "session"} {
		b.Run(kind, func(b *testing.B) {
			ps, err := Window(WindowSpec{Kind: kind, Key: "k", TimeField: "ts", Size: 10 * time.Second, Slide: 5 * time.Second, Gap: 3 * time.Second, WatermarkDelay: 500 * time.Millisecond, Aggregate: "avg", Field: "v"})
			if err != nil {
				b.Fatal(err)
			}
			st, err := state.NewBackend(state.Options{})
			if err != nil {
				b.Fatal(err)
			}
			p := ps.New()
			if err := p.Open(st); err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf("user-%d", i)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			emitted := 0
			emit := func(Record) error { emitted++; return nil }
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				rec := Record{"k": keys[rng.IntN(len(keys))], "ts": int64(i) * 5, "v": json.Number("42")}
				if err := p.Process(rec, emit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(emitted)/float64(b.N), "windows/op")
		})
	}
}

func TestWindow_Codecs(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		m := windowMeta{MaxTime: -5, Open: 3, NextEnd: 1 << 40, Dropped: 7}
		b, err := windowMetaCodec{}.Append([]byte("x"), m)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := (windowMetaCodec{}).Decode(b[1:]); err != nil || got != m {
			t.Fatalf("meta %+v, %v; want %+v", got, err, m)
		}
		a := windowAcc{End: -1, Count: 2, Sum: 0.5, Min: math.Inf(-1), Max: math.MaxFloat64}
		if b, err = (windowAccCodec{}).Append(nil, a); err != nil {
			t.Fatal(err)
		}
		if got, err := (windowAccCodec{}).Decode(b); err != nil || got != a {
			t.Fatalf("accumulator %+v, %v; want %+v", got, err, a)
		}
	})
	t.Run("ErrCodec", func(t *testing.T) {
		negative, _ := windowMetaCodec{}.Append(nil, windowMeta{Open: -1})
		empty, _ := windowAccCodec{}.Append(nil, windowAcc{End: 10})
		for _, err := range []error{
			func() error { _, err := (windowMetaCodec{}).Decode(make([]byte, 31)); return err }(),
			func() error { _, err := (windowMetaCodec{}).Decode(negative); return err }(),
			func() error { _, err := (windowAccCodec{}).Decode(make([]byte, 41)); return err }(),
			func() error { _, err := (windowAccCodec{}).Decode(empty); return err }(),
		} {
			if !errors.Is(err, state.ErrCodec) {
				t.Fatalf("error %v, want state.ErrCodec", err)
			}
		}
	})
}
