package pipeline

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/arkstate/arkstate/pkg/state"
)

// Window kinds and aggregates, as WindowSpec spells them.
const (
	WindowTumbling = "tumbling"
	WindowSliding  = "sliding"
	WindowSession  = "session"

	AggregateCount = "count"
	AggregateSum   = "sum"
	AggregateMin   = "min"
	AggregateMax   = "max"
	AggregateAvg   = "avg"
)

// MaxSlidingWindows bounds Size/Slide: every record is added to that many
// sliding windows, so a tiny slide would multiply state and work per record.
const MaxSlidingWindows = 1000

// maxEventTime bounds event times (in milliseconds, about 285,000 years
// either side of the epoch), so that every one is exact as a float64 and
// window arithmetic such as start+size (a Duration is at most about 292
// years) cannot overflow an int64.
const maxEventTime = 1 << 53

// WindowSpec configures a window processor; see Window.
type WindowSpec struct {
	// Kind is "tumbling", "sliding" or "session".
	Kind string
	// Key is the field records are grouped (and routed, and stored) by.
	Key string
	// TimeField holds the event time: a number of Unix milliseconds or an
	// RFC 3339 string.
	TimeField string
	// Size is the window length (tumbling, sliding).
	Size time.Duration
	// Slide is the distance between window starts (sliding), 0 < Slide <= Size.
	Slide time.Duration
	// Gap is the inactivity that closes a session (session).
	Gap time.Duration
	// WatermarkDelay is how far behind a key's newest event time its
	// watermark trails, i.e. how late a record may be and still count.
	WatermarkDelay time.Duration
	// Aggregate is count (the default when empty), sum, min, max or avg.
	Aggregate string
	// Field is the numeric field sum, min, max and avg read.
	Field string
}

// windowConfig is a validated WindowSpec in milliseconds.
type windowConfig struct {
	kind                    string
	key, timeField, field   string
	aggregate               string
	size, slide, gap, delay int64
}

// Window aggregates records per key over event-time windows.
//
// Time is the record's TimeField in Unix milliseconds (an RFC 3339 string
// is converted, a fractional number is rounded down). Windows are
// half-open intervals [start, end):
//   - tumbling: [n*Size, (n+1)*Size), aligned to the epoch;
//   - sliding: windows of Size starting at every multiple of Slide, so a
//     record belongs to about Size/Slide of them (at most
//     MaxSlidingWindows);
//   - session: a record at t opens [t, t+Gap); records less than Gap apart
//     share a session, which runs from its first record to its last plus
//     Gap. A record that falls within Gap of two sessions merges them.
//
// Durations must be whole milliseconds; those the kind does not use are
// ignored.
//
// Each key has its own watermark: the largest event time seen for the key
// minus WatermarkDelay. A window fires when its key's watermark reaches its
// end, and emits
//
//	{"key": k, "window_start": start, "window_end": end, "<aggregate>": value, "count": n}
//
// where n is the number of records in the window (for count, the aggregate
// is that same field). Because the watermark is per key and kept in keyed
// state, a key's output depends only on the order of its own records, never
// on how keys are spread over subtasks, when checkpoints are taken or where
// a restored run resumes (one source task reads the input, so each key's
// records arrive in input order): a pipeline killed and restored any
// number of times, at any parallelism, emits exactly the windows of an
// uninterrupted run. The price is that a key's windows fire only when a newer record of
// that key arrives; at the end of a bounded input Flush fires every window
// still open.
//
// A record is late when every window it belongs to has already fired (its
// end is at or below the key's watermark); it is dropped and counted in the
// key's state. A sliding-window record that is late for some of its windows
// still counts in the others. As in Flink, a session record is late only if
// it merges with no open session and its own [t, t+Gap) ends at or below
// the watermark, so a record slightly behind the watermark can start a new
// session next to one that has already fired.
//
// All of it lives in the state backend, so it is checkpointed and restored
// with the pipeline; the open windows are the timers. The states, with
// fixed-width little-endian codecs since they are read and written for
// every record:
//
//	meta     value per key, codec window-meta-v1: max event time (int64),
//	         open windows (int64), earliest open end (int64), dropped
//	         records (uint64)
//	windows  map per key from window start (int64) to accumulator, codec
//	         window-acc-v1: end (int64), count (uint64), sum, min, max
//	         (float64 bits)
//	index    map per key group from key to true, for the keys with open
//	         windows
//
// Flush must find the keys with open windows without a scan of the
// backend, hence the index: its entries are stored under a fixed synthetic
// key of each key group ("window-index/<n>"), so they move with the group
// when a checkpoint is restored at another parallelism. A key's meta entry
// stays after its windows fire, since its watermark still decides which of
// its later records are late: state grows with the number of distinct keys.
//
// Errors name the field: a missing key, a missing or unparsable time, a
// missing or non-numeric aggregated field, and non-finite values.
func Window(cfg WindowSpec) (ProcessorSpec, error) {
	c, err := cfg.validate()
	if err != nil {
		return ProcessorSpec{}, fmt.Errorf("window: %w", err)
	}
	return ProcessorSpec{Name: "window", Key: FieldKey(c.key), New: func() Processor { return &windowProc{cfg: c} }}, nil
}

func (cfg WindowSpec) validate() (windowConfig, error) {
	c := windowConfig{kind: cfg.Kind, key: cfg.Key, timeField: cfg.TimeField, field: cfg.Field, aggregate: cfg.Aggregate}
	if c.key == "" {
		return c, errors.New("key field is required")
	}
	if c.timeField == "" {
		return c, errors.New("time field is required")
	}
	switch c.aggregate {
	case "":
		c.aggregate = AggregateCount
	case AggregateCount:
	case AggregateSum, AggregateMin, AggregateMax, AggregateAvg:
		if c.field == "" {
			return c, fmt.Errorf("aggregate %s needs a field", c.aggregate)
		}
	default:
		return c, fmt.Errorf("aggregate %q is not one of count, sum, min, max, avg", c.aggregate)
	}
	var err error
	if c.delay, err = millis("watermark delay", cfg.WatermarkDelay, true); err != nil {
		return c, err
	}
	switch c.kind {
	case WindowTumbling:
		if c.size, err = millis("size", cfg.Size, false); err != nil {
			return c, err
		}
		c.slide = c.size
	case WindowSliding:
		if c.size, err = millis("size", cfg.Size, false); err != nil {
			return c, err
		}
		if c.slide, err = millis("slide", cfg.Slide, false); err != nil {
			return c, err
		}
		if c.slide > c.size {
			return c, fmt.Errorf("slide %v is longer than size %v", cfg.Slide, cfg.Size)
		}
		if n := (c.size + c.slide - 1) / c.slide; n > MaxSlidingWindows {
			return c, fmt.Errorf("size %v / slide %v puts every record in %d windows, more than %d", cfg.Size, cfg.Slide, n, MaxSlidingWindows)
		}
	case WindowSession:
		if c.gap, err = millis("gap", cfg.Gap, false); err != nil {
			return c, err
		}
	default:
		return c, fmt.Errorf("kind %q is not one of tumbling, sliding, session", c.kind)
	}
	return c, nil
}

// millis converts a duration to whole milliseconds.
func millis(name string, d time.Duration, zeroOK bool) (int64, error) {
	switch {
	case d < 0 || (d == 0 && !zeroOK):
		return 0, fmt.Errorf("%s %v must be positive", name, d)
	case d%time.Millisecond != 0:
		return 0, fmt.Errorf("%s %v is not a whole number of milliseconds", name, d)
	}
	return d.Milliseconds(), nil
}

// windowMeta is a key's window bookkeeping.
type windowMeta struct {
	// MaxTime is the largest event time seen; the watermark is MaxTime
	// minus the delay.
	MaxTime int64
	// Open counts the key's open windows; NextEnd is the earliest end among
	// them, so a record that fires nothing needs no scan of the windows.
	Open    int64
	NextEnd int64
	// Dropped counts the key's late records.
	Dropped uint64
}

// windowAcc is an open window's accumulator. Min and Max are meaningful
// once Count > 0.
type windowAcc struct {
	End   int64
	Count uint64
	Sum   float64
	Min   float64
	Max   float64
}

// Encoded sizes of the window states' values (see Window); JSON cost
// several times the rest of the processing.
const (
	windowMetaLen = 32 // max time, open, next end, dropped
	windowAccLen  = 40 // end, count, sum, min, max
)

// windowMetaCodec encodes windowMeta; decoding checks the length.
type windowMetaCodec struct{}

func (windowMetaCodec) Name() string { return "window-meta-v1" }

func (windowMetaCodec) Append(dst []byte, m windowMeta) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.MaxTime))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.Open))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.NextEnd))
	return binary.LittleEndian.AppendUint64(dst, m.Dropped), nil
}

func (windowMetaCodec) Decode(b []byte) (windowMeta, error) {
	if len(b) != windowMetaLen {
		return windowMeta{}, fmt.Errorf("%w: window meta wants %d bytes, got %d", state.ErrCodec, windowMetaLen, len(b))
	}
	m := windowMeta{
		MaxTime: int64(binary.LittleEndian.Uint64(b)),
		Open:    int64(binary.LittleEndian.Uint64(b[8:])),
		NextEnd: int64(binary.LittleEndian.Uint64(b[16:])),
		Dropped: binary.LittleEndian.Uint64(b[24:]),
	}
	if m.Open < 0 {
		return windowMeta{}, fmt.Errorf("%w: window meta counts %d open windows", state.ErrCodec, m.Open)
	}
	return m, nil
}

// windowAccCodec encodes windowAcc; decoding checks the length.
type windowAccCodec struct{}

func (windowAccCodec) Name() string { return "window-acc-v1" }

func (windowAccCodec) Append(dst []byte, a windowAcc) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(a.End))
	dst = binary.LittleEndian.AppendUint64(dst, a.Count)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.Sum))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.Min))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.Max)), nil
}

func (windowAccCodec) Decode(b []byte) (windowAcc, error) {
	if len(b) != windowAccLen {
		return windowAcc{}, fmt.Errorf("%w: window accumulator wants %d bytes, got %d", state.ErrCodec, windowAccLen, len(b))
	}
	a := windowAcc{
		End:   int64(binary.LittleEndian.Uint64(b)),
		Count: binary.LittleEndian.Uint64(b[8:]),
		Sum:   math.Float64frombits(binary.LittleEndian.Uint64(b[16:])),
		Min:   math.Float64frombits(binary.LittleEndian.Uint64(b[24:])),
		Max:   math.Float64frombits(binary.LittleEndian.Uint64(b[32:])),
	}
	if a.Count == 0 {
		return windowAcc{}, fmt.Errorf("%w: window accumulator of an empty window", state.ErrCodec)
	}
	return a, nil
}

func (a *windowAcc) add(v float64) {
	if a.Count == 0 {
		a.Min, a.Max = v, v
	} else {
		a.Min, a.Max = min(a.Min, v), max(a.Max, v)
	}
	a.Count++
	a.Sum += v
}

func (a *windowAcc) merge(b windowAcc) {
	a.End = max(a.End, b.End)
	if b.Count == 0 {
		return
	}
	if a.Count == 0 {
		a.Min, a.Max = b.Min, b.Max
	} else {
		a.Min, a.Max = min(a.Min, b.Min), max(a.Max, b.Max)
	}
	a.Count += b.Count
	a.Sum += b.Sum
}

type windowProc struct {
	cfg     windowConfig
	meta    *state.Value[windowMeta]
	windows *state.Map[int64, windowAcc]
	index   *state.Map[string, bool]
	n       uint32
	first   uint32
	// indexKeys[i] is the synthetic state key of key group first+i.
	indexKeys []string
}

func (p *windowProc) Open(st *state.Backend) error {
	if st == nil {
		return errors.New("window: a keyed processor needs a state backend")
	}
	var err error
	if p.meta, err = state.NewValue(st, state.Descriptor[windowMeta]{Name: "meta", Codec: windowMetaCodec{}}); err != nil {
		return err
	}
	if p.windows, err = state.NewMap(st, state.Descriptor[windowAcc]{Name: "windows", Codec: windowAccCodec{}}, state.Codec[int64](state.Int64Codec{})); err != nil {
		return err
	}
	if p.index, err = state.NewMap[string, bool](st, state.Descriptor[bool]{Name: "index"}, nil); err != nil {
		return err
	}
	p.n, p.first = st.KeyGroups(), st.Range().Start
	p.indexKeys, err = indexKeys(p.n, st.Range())
	return err
}

// indexKeys returns, for each key group of rng, the first of the strings
// "window-index/0", "window-index/1", ... that hashes into it. The choice
// depends only on the key-group count, so every parallelism agrees on it
// and a restored index is found again.
func indexKeys(n uint32, rng state.KeyGroupRange) ([]string, error) {
	keys := make([]string, rng.Len())
	missing := len(keys)
	// A full cover takes about n*ln(n) draws; 64n leaves a key group
	// uncovered with probability below n*e^-64.
	limit := 64 * int(n)
	for i := 0; missing > 0; i++ {
		if i == limit {
			return nil, fmt.Errorf("window: found no index key for %d of the key groups %v", missing, rng)
		}
		k := "window-index/" + strconv.Itoa(i)
		if kg := state.KeyGroupFor(k, n); rng.Contains(kg) && keys[kg-rng.Start] == "" {
			keys[kg-rng.Start] = k
			missing--
		}
	}
	return keys, nil
}

func (p *windowProc) indexKey(key string) string {
	return p.indexKeys[state.KeyGroupFor(key, p.n)-p.first]
}

func (p *windowProc) Process(rec Record, emit func(Record) error) error {
	key, err := field(rec, p.cfg.key)
	if err != nil {
		return fmt.Errorf("window: key: %w", err)
	}
	ts, err := eventTime(rec, p.cfg.timeField)
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	var v float64
	if p.cfg.aggregate != AggregateCount {
		if v, err = aggValue(rec, p.cfg.field); err != nil {
			return fmt.Errorf("window: %w", err)
		}
	}
	m, seen, err := p.meta.Get(key)
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	wm := int64(math.MinInt64)
	if seen {
		wm = m.MaxTime - p.cfg.delay
	}
	wasOpen := m.Open > 0
	var added bool
	if p.cfg.kind == WindowSession {
		added, err = p.addSession(key, &m, ts, v, wm)
	} else {
		added, err = p.addAligned(key, &m, ts, v, wm)
	}
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	if !added {
		m.Dropped++
		if err := p.meta.Put(key, m); err != nil {
			return fmt.Errorf("window: %w", err)
		}
		return nil
	}
	if !seen || ts > m.MaxTime {
		m.MaxTime = ts
	}
	if err := p.fire(key, &m, m.MaxTime-p.cfg.delay, emit); err != nil {
		return err
	}
	switch {
	case !wasOpen && m.Open > 0:
		err = p.index.Put(p.indexKey(key), key, true)
	case wasOpen && m.Open == 0:
		err = p.index.Delete(p.indexKey(key), key)
	}
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	if err := p.meta.Put(key, m); err != nil {
		return fmt.Errorf("window: %w", err)
	}
	return nil
}

// addAligned adds a record to its tumbling or sliding windows that have not
// fired; it reports false when all of them have.
func (p *windowProc) addAligned(key string, m *windowMeta, ts int64, v float64, wm int64) (bool, error) {
	added := false
	// Starts fall on multiples of slide; the latest one at or before ts
	// ends last, so the first window already past the watermark ends the
	// loop.
	for start := floorDiv(ts, p.cfg.slide) * p.cfg.slide; start > ts-p.cfg.size; start -= p.cfg.slide {
		end := start + p.cfg.size
		if end <= wm {
			break
		}
		acc, ok, err := p.windows.Get(key, start)
		if err != nil {
			return false, err
		}
		if !ok {
			acc = windowAcc{End: end}
			if m.Open == 0 || end < m.NextEnd {
				m.NextEnd = end
			}
			m.Open++
		}
		acc.add(v)
		if err := checkFinite(acc.Sum); err != nil {
			return false, err
		}
		if err := p.windows.Put(key, start, acc); err != nil {
			return false, err
		}
		added = true
	}
	return added, nil
}

// addSession merges a record's session [ts, ts+gap) with every open
// session it overlaps; it reports false when it overlaps none and ends at
// or below the watermark.
func (p *windowProc) addSession(key string, m *windowMeta, ts int64, v float64, wm int64) (bool, error) {
	acc := windowAcc{End: ts + p.cfg.gap}
	acc.add(v)
	start := ts
	var merged []int64
	nextEnd := int64(math.MaxInt64)
	err := p.windows.All(key, func(s int64, w windowAcc) bool {
		if s < ts+p.cfg.gap && ts < w.End {
			merged = append(merged, s)
			start = min(start, s)
			acc.merge(w)
		} else {
			nextEnd = min(nextEnd, w.End)
		}
		return true
	})
	if err != nil {
		return false, err
	}
	if len(merged) == 0 && acc.End <= wm {
		return false, nil
	}
	if err := checkFinite(acc.Sum); err != nil {
		return false, err
	}
	for _, s := range merged {
		if err := p.windows.Delete(key, s); err != nil {
			return false, err
		}
	}
	if err := p.windows.Put(key, start, acc); err != nil {
		return false, err
	}
	m.Open += 1 - int64(len(merged))
	m.NextEnd = min(nextEnd, acc.End)
	return true, nil
}

// fire emits and deletes key's windows that end at or below wm, earliest
// end first.
func (p *windowProc) fire(key string, m *windowMeta, wm int64, emit func(Record) error) error {
	if m.Open == 0 || m.NextEnd > wm {
		return nil
	}
	type window struct {
		start int64
		acc   windowAcc
	}
	var due []window
	open, nextEnd := int64(0), int64(math.MaxInt64)
	err := p.windows.All(key, func(s int64, w windowAcc) bool {
		if w.End <= wm {
			due = append(due, window{s, w})
		} else {
			open++
			nextEnd = min(nextEnd, w.End)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	slices.SortFunc(due, func(a, b window) int {
		if a.acc.End != b.acc.End {
			return cmp.Compare(a.acc.End, b.acc.End)
		}
		return cmp.Compare(a.start, b.start)
	})
	m.Open, m.NextEnd = open, nextEnd
	if open == 0 {
		m.NextEnd = 0
	}
	for _, w := range due {
		if err := p.windows.Delete(key, w.start); err != nil {
			return fmt.Errorf("window: %w", err)
		}
		if err := emit(p.result(key, w.start, w.acc)); err != nil {
			return err
		}
	}
	return nil
}

func (p *windowProc) result(key string, start int64, a windowAcc) Record {
	rec := Record{"key": key, "window_start": start, "window_end": a.End, "count": a.Count}
	switch p.cfg.aggregate {
	case AggregateSum:
		rec[AggregateSum] = a.Sum
	case AggregateMin:
		rec[AggregateMin] = a.Min
	case AggregateMax:
		rec[AggregateMax] = a.Max
	case AggregateAvg:
		rec[AggregateAvg] = a.Sum / float64(a.Count)
	}
	return rec
}

// Flush fires every open window of the subtask's keys, key group by key
// group and key by key, as if each key's watermark had reached the end of
// time.
func (p *windowProc) Flush(emit func(Record) error) error {
	for _, ik := range p.indexKeys {
		var keys []string
		err := p.index.All(ik, func(k string, _ bool) bool {
			keys = append(keys, k)
			return true
		})
		if err != nil {
			return fmt.Errorf("window: %w", err)
		}
		for _, key := range keys {
			m, ok, err := p.meta.Get(key)
			if err != nil {
				return fmt.Errorf("window: %w", err)
			}
			if !ok {
				return fmt.Errorf("window: key %q has open windows but no watermark state", key)
			}
			if err := p.fire(key, &m, math.MaxInt64, emit); err != nil {
				return err
			}
			if err := p.meta.Put(key, m); err != nil {
				return fmt.Errorf("window: %w", err)
			}
		}
		if err := p.index.Clear(ik); err != nil {
			return fmt.Errorf("window: %w", err)
		}
	}
	return nil
}

// eventTime reads a record's event time in Unix milliseconds.
func eventTime(rec Record, name string) (int64, error) {
	var ms float64
	switch x := rec[name].(type) {
	case nil:
		if _, ok := rec[name]; ok {
			return 0, fmt.Errorf("time field %q is null", name)
		}
		return 0, fmt.Errorf("record has no time field %q", name)
	case string:
		t, err := time.Parse(time.RFC3339, x)
		if err == nil {
			ms = float64(t.UnixMilli())
			break
		}
		n, nerr := strconv.ParseInt(x, 10, 64)
		if nerr != nil {
			return 0, fmt.Errorf("time field %q: %q is neither an RFC 3339 time nor Unix milliseconds: %w", name, x, err)
		}
		ms = float64(n)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			ms = float64(n)
			break
		}
		f, err := x.Float64()
		if err != nil {
			return 0, fmt.Errorf("time field %q: %w", name, err)
		}
		ms = f
	case float64:
		ms = x
	case int64:
		ms = float64(x)
	case int:
		ms = float64(x)
	case uint64:
		ms = float64(x)
	default:
		return 0, fmt.Errorf("time field %q is a %T, not Unix milliseconds or an RFC 3339 string", name, x)
	}
	ms = math.Floor(ms)
	if !(ms >= -maxEventTime && ms <= maxEventTime) {
		return 0, fmt.Errorf("time field %q: %v is out of range", name, rec[name])
	}
	return int64(ms), nil
}

// aggValue reads the aggregated field as a finite number.
func aggValue(rec Record, name string) (float64, error) {
	v, err := number(rec, name)
	if err != nil {
		return 0, fmt.Errorf("aggregated field %q: %w", name, err)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("aggregated field %q: %v is not a finite number", name, rec[name])
	}
	return v, nil
}

func checkFinite(sum float64) error {
	if math.IsInf(sum, 0) {
		return errors.New("the window's sum overflows a float64")
	}
	return nil
}

// floorDiv divides rounding toward negative infinity, so windows of times
// before the epoch align like those after it.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
