package checkpoint_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// dumpAll runs Dump and returns the records and their lines.
func dumpAll(t testing.TB, r *checkpoint.Repo, id uint64, f checkpoint.DumpOptions) ([]checkpoint.DumpRecord, string) {
	t.Helper()
	var recs []checkpoint.DumpRecord
	var out bytes.Buffer
	err := checkpoint.Dump(context.Background(), r, id, f, func(rec checkpoint.DumpRecord) error {
		recs = append(recs, rec)
		b, err := rec.MarshalJSON()
		out.Write(b)
		out.WriteByte('\n')
		return err
	})
	if err != nil {
		t.Fatalf("Dump(%d, %+v): %v", id, f, err)
	}
	return recs, out.String()
}

// dumpFind returns the records of op/st/key.
func dumpFind(recs []checkpoint.DumpRecord, op, st, key string) []checkpoint.DumpRecord {
	var out []checkpoint.DumpRecord
	for _, r := range recs {
		if r.Operator == op && r.State == st && r.Key == key {
			out = append(out, r)
		}
	}
	return out
}

func TestDump(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("dump"))
		recs, _ := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{})
		counts := map[string]int{}
		for _, r := range recs {
			counts[r.Operator+"/"+r.State]++
		}
		// Counts: words 0-649 less the 10 deleted; windows: one map entry
		// per word and round; seen: the words divisible by 3.
		want := map[string]int{"count/count": 640, "count/windows": 600 + 60 + 100, "dedupe/seen": 217}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Fatalf("records per state = %v, want %v", counts, want)
		}
		for i := range 650 {
			w := checkpointtest.Word(i)
			n, ok := j.Count(t, w)
			got := dumpFind(recs, "count", "count", w)
			switch {
			case !ok && len(got) != 0:
				t.Fatalf("%s is deleted but dumped: %+v", w, got)
			case ok && (len(got) != 1 || string(got[0].Value) != fmt.Sprint(n)):
				t.Fatalf("%s: dumped %+v, live count %d", w, got, n)
			}
		}
		win := dumpFind(recs, "count", "windows", checkpointtest.Word(0))
		if len(win) != 2 || string(win[0].MapKey) != `"w001"` || string(win[1].MapKey) != `"w002"` || string(win[1].Value) != "0" {
			t.Fatalf("windows of word 0: %+v", win)
		}
		seen := dumpFind(recs, "dedupe", "seen", checkpointtest.Word(552))
		if len(seen) != 1 || string(seen[0].Value) != `["r1","r3"]` || seen[0].IsMap() || seen[0].ExpiresAt != nil {
			t.Fatalf("seen of word 552: %+v", seen)
		}
	})
	t.Run("OKFilters", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("dump"))
		all, _ := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{})
		cases := []struct {
			name string
			f    checkpoint.DumpOptions
			keep func(checkpoint.DumpRecord) bool
		}{
			{"Operator", checkpoint.DumpOptions{Operator: "dedupe"}, func(r checkpoint.DumpRecord) bool { return r.Operator == "dedupe" }},
			{"State", checkpoint.DumpOptions{State: "windows"}, func(r checkpoint.DumpRecord) bool { return r.State == "windows" }},
			{"Key", checkpoint.DumpOptions{Key: checkpointtest.Word(3)}, func(r checkpoint.DumpRecord) bool { return r.Key == checkpointtest.Word(3) }},
			{"OperatorStateKey", checkpoint.DumpOptions{Operator: "count", State: "windows", Key: checkpointtest.Word(555)},
				func(r checkpoint.DumpRecord) bool { return r.State == "windows" && r.Key == checkpointtest.Word(555) }},
			{"AbsentKey", checkpoint.DumpOptions{Key: "no such word"}, func(checkpoint.DumpRecord) bool { return false }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var want []checkpoint.DumpRecord
				for _, r := range all {
					if tc.keep(r) {
						want = append(want, r)
					}
				}
				got, _ := dumpAll(t, j.Repo, 3, tc.f)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("got %d records, want %d:\n%v\n%v", len(got), len(want), got, want)
				}
				if tc.name != "AbsentKey" && len(got) == 0 {
					t.Fatal("filter selected nothing")
				}
			})
		}
	})
	t.Run("OKReadOnly", func(t *testing.T) {
		root := t.TempDir()
		s, err := store.NewDir(root)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		j := checkpointtest.Standard(t, s)
		before := checkpointtest.TreeHashes(t, root)
		dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{})
		dumpAll(t, j.Repo, 2, checkpoint.DumpOptions{Key: checkpointtest.Word(7)})
		if after := checkpointtest.TreeHashes(t, root); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("Dump changed the store")
		}
	})
	t.Run("ErrCheckpointNotFound", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("dump"))
		err := checkpoint.Dump(context.Background(), j.Repo, 9, checkpoint.DumpOptions{}, func(checkpoint.DumpRecord) error { return nil })
		if !errors.Is(err, checkpoint.ErrCheckpointNotFound) {
			t.Fatalf("err = %v, want ErrCheckpointNotFound", err)
		}
	})
	t.Run("ErrOperatorNotFound", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("dump"))
		err := checkpoint.Dump(context.Background(), j.Repo, 3, checkpoint.DumpOptions{Operator: "nope"}, func(checkpoint.DumpRecord) error { return nil })
		if !errors.Is(err, checkpoint.ErrOperatorNotFound) {
			t.Fatalf("err = %v, want ErrOperatorNotFound", err)
		}
	})
	t.Run("ErrStateNotFound", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("dump"))
		err := checkpoint.Dump(context.Background(), j.Repo, 3, checkpoint.DumpOptions{Operator: "dedupe", State: "count"}, func(checkpoint.DumpRecord) error { return nil })
		if !errors.Is(err, checkpoint.ErrStateNotFound) {
			t.Fatalf("err = %v, want ErrStateNotFound", err)
		}
	})
	t.Run("ErrEmit", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("dump"))
		stop := errors.New("stop")
		n := 0
		err := checkpoint.Dump(context.Background(), j.Repo, 3, checkpoint.DumpOptions{}, func(checkpoint.DumpRecord) error {
			n++
			return stop
		})
		if err != stop || n != 1 {
			t.Fatalf("err = %v after %d records, want the emit error after 1", err, n)
		}
	})
	for _, tc := range []struct {
		name  string
		entry format.Entry
		descs []format.StateDescriptor
	}{
		{"ErrCorruptUndescribedState", format.Entry{State: "ghost", KeyGroup: state.KeyGroupFor("k", 128), Key: []byte("k"), Value: []byte{1}},
			[]format.StateDescriptor{{Name: "count", Kind: "value", Codec: "uint64"}}},
		{"ErrCorruptKeyGroup", format.Entry{State: "count", KeyGroup: (state.KeyGroupFor("k", 128) + 1) % 128, Key: []byte("k"), Value: []byte{1}},
			[]format.StateDescriptor{{Name: "count", Kind: "value", Codec: "uint64"}}},
		{"ErrCorruptMapKey", format.Entry{State: "m", KeyGroup: 3, Key: []byte{0, 0, 0, 9, 'k'}, Value: []byte{1}},
			[]format.StateDescriptor{{Name: "m", Kind: "map", Codec: "string/bytes"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, store.NewMem("dump"))
			writeRaw(t, r, 1, "op", tc.descs, []format.Entry{tc.entry})
			err := checkpoint.Dump(context.Background(), r, 1, checkpoint.DumpOptions{}, func(checkpoint.DumpRecord) error { return nil })
			var ce *format.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("err = %v, want a *format.CorruptError wrapping ErrMalformed", err)
			}
		})
	}
}

// writeRaw commits checkpoint id with one range over all key groups of op
// holding entries exactly as given, bypassing the state engine.
func writeRaw(t testing.TB, r *checkpoint.Repo, id uint64, op string, descs []format.StateDescriptor, entries []format.Entry) *format.Manifest {
	t.Helper()
	return writeRawRange(t, r, id, op, descs, entries, 0, r.Marker().KeyGroups-1)
}

// writeRawRange is writeRaw with one range [start, end].
func writeRawRange(t testing.TB, r *checkpoint.Repo, id uint64, op string, descs []format.StateDescriptor, entries []format.Entry, start, end uint32) *format.Manifest {
	t.Helper()
	ctx := context.Background()
	sp, err := checkpoint.SpoolSegment("", format.SegmentWriterOptions{}, func(w *format.SegmentWriter) error {
		for i := range entries {
			if err := w.Add(&entries[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Remove()
	if _, err := r.PutSegment(ctx, sp); err != nil {
		t.Fatal(err)
	}
	b, err := r.NewCheckpoint(ctx, id, 0, checkpoint.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := format.SegmentRef{Hash: sp.Hash(), Size: sp.Info.Size, Kind: format.LayerBase, Entries: sp.Info.Entries, Checkpoint: id}
	if err := b.AddRange(op, descs, format.RangeState{Start: start, End: end, Layers: []format.SegmentRef{ref}}); err != nil {
		t.Fatal(err)
	}
	m, err := b.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDumpRecord_MarshalJSON(t *testing.T) {
	exp := time.Date(2031, 1, 2, 3, 4, 5, 600, time.UTC)
	cases := []struct {
		name string
		rec  checkpoint.DumpRecord
		want string
	}{
		{"OKValue", checkpoint.DumpRecord{Operator: "count", State: "count", Key: "a<b>", Value: json.RawMessage("7")},
			`{"operator":"count","state":"count","key":"a<b>","value":7}`},
		{"OKMap", checkpoint.DumpRecord{Operator: "o", State: "m", Key: "", MapKey: json.RawMessage(`"w1"`), Value: json.RawMessage(`{"a":"<"}`), ExpiresAt: &exp},
			`{"operator":"o","state":"m","key":"","map_key":"w1","value":{"a":"<"},"expires_at":"2031-01-02T03:04:05.0000006Z"}`},
		{"OKRaw", checkpoint.DumpRecord{Operator: "o", State: "s", Key: "\xff\x00", MapKeyRaw: []byte{}, ValueRaw: []byte{1, 2}},
			`{"operator":"o","state":"s","key_b64":"/wA=","map_key_b64":"","value_b64":"AQI="}`},
		{"OKEmptyRawValue", checkpoint.DumpRecord{Operator: "o", State: "s", Key: "k"},
			`{"operator":"o","state":"s","key":"k","value_b64":""}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rec.MarshalJSON()
			if err != nil || string(got) != tc.want {
				t.Fatalf("MarshalJSON = %s, %v\nwant %s", got, err, tc.want)
			}
			var back checkpoint.DumpRecord
			if err := back.UnmarshalJSON(got); err != nil {
				t.Fatal(err)
			}
			again, _ := back.MarshalJSON()
			if string(again) != tc.want {
				t.Fatalf("round trip gave %s", again)
			}
			if back.Key != tc.rec.Key || back.IsMap() != tc.rec.IsMap() {
				t.Fatalf("round trip gave %+v, want %+v", back, tc.rec)
			}
		})
	}
}

func TestDumpRecord_UnmarshalJSON(t *testing.T) {
	t.Run("OKIgnoresUnknownFields", func(t *testing.T) {
		var r checkpoint.DumpRecord
		if err := r.UnmarshalJSON([]byte(`{"operator":"o","state":"s","key":"k","value":null,"future":[1]}`)); err != nil {
			t.Fatal(err)
		}
		if string(r.Value) != "null" || r.ValueRaw != nil {
			t.Fatalf("value = %q / %v, want the JSON null kept", r.Value, r.ValueRaw)
		}
	})
	cases := []struct{ name, line, field string }{
		{"ErrSyntax", `{"operator":`, ""},
		{"ErrNotObject", `[1,2]`, ""},
		{"ErrNull", `null`, ""},
		{"ErrNotUTF8", "{\"operator\":\"\xff\"}", ""},
		{"ErrOperatorMissing", `{"state":"s","key":"k","value":1}`, "operator"},
		{"ErrOperatorType", `{"operator":1,"state":"s","key":"k","value":1}`, "operator"},
		{"ErrKeyMissing", `{"operator":"o","state":"s","value":1}`, "key"},
		{"ErrKeyBoth", `{"operator":"o","state":"s","key":"k","key_b64":"aw==","value":1}`, "key_b64"},
		{"ErrKeyB64", `{"operator":"o","state":"s","key_b64":"a","value":1}`, "key_b64"},
		{"ErrValueMissing", `{"operator":"o","state":"s","key":"k"}`, "value"},
		{"ErrMapKeyB64", `{"operator":"o","state":"s","key":"k","map_key_b64":7,"value":1}`, "map_key_b64"},
		{"ErrExpires", `{"operator":"o","state":"s","key":"k","value":1,"expires_at":"tomorrow"}`, "expires_at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r checkpoint.DumpRecord
			err := r.UnmarshalJSON([]byte(tc.line))
			var fe *checkpoint.RecordFieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("UnmarshalJSON(%s) = %v, want a RecordFieldError for field %q", tc.line, err, tc.field)
			}
		})
	}
}

// newRepo initialises a store for the synthetic job's id and key groups.
func newRepo(t testing.TB, s store.Store) *checkpoint.Repo {
	t.Helper()
	r, err := checkpoint.InitRepo(context.Background(), s, checkpointtest.JobID, checkpointtest.KeyGroups)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// point is a struct stored with the json codec.
type point struct {
	X, Y float64
	Tag  string `json:"tag"`
}

// indentedJSON claims the name "json" but writes indented JSON, which
// has no exact line form and must travel as base64.
type indentedJSON struct{}

func (indentedJSON) Name() string { return "json" }
func (indentedJSON) Append(dst []byte, v point) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(dst, b...), err
}
func (indentedJSON) Decode(b []byte) (point, error) {
	var p point
	return p, json.Unmarshal(b, &p)
}

// impRot13 is a codec unknown to the JSON rendering.
type impRot13 struct{}

func (impRot13) Name() string { return "rot13" }
func (impRot13) Append(dst []byte, v string) ([]byte, error) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z':
			c = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			c = 'A' + (c-'A'+13)%26
		}
		dst = append(dst, c)
	}
	return dst, nil
}
func (impRot13) Decode(b []byte) (string, error) {
	out, _ := impRot13{}.Append(nil, string(b))
	return string(out), nil
}

// richClock is the rich job's time: far enough ahead that its TTL
// entries are still live when a test restores them with the real clock.
var richClock = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// richKeys are the keys every state of the rich job gets: plain, empty,
// not UTF-8, and non-ASCII.
var richKeys = []string{"plain", "", "\xff\x00bin", "ключ", "a\"<&>\n", "key-5"}

// richHandles holds typed handles on a backend of the rich operator.
type richHandles struct {
	be   *state.Backend
	u64  *state.Value[uint64]
	i64  *state.Value[int64]
	i    *state.Value[int]
	u32  *state.Value[uint32]
	i32  *state.Value[int32]
	f    *state.Value[float64]
	b    *state.Value[bool]
	s    *state.Value[string]
	raw  *state.Value[[]byte]
	doc  *state.Value[point]
	ind  *state.Value[point]
	rot  *state.Value[string]
	ttl  *state.Value[string]
	red  *state.Reducing[int64]
	m    *state.Map[uint64, string]
	mttl *state.Map[string, int64]
	l    *state.List[float64]
	lj   *state.List[point]
}

// newRichBackend returns a backend for the rich operator.
func newRichBackend(t testing.TB, rng *state.KeyGroupRange) *state.Backend {
	t.Helper()
	be, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups, Range: rng, Now: func() int64 { return richClock }})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// bindRich registers the rich operator's states on be. After a
// restore, it binds them to the restored data.
func bindRich(t testing.TB, be *state.Backend) *richHandles {
	t.Helper()
	r := &richHandles{be: be}
	var errs []error
	reg := func(err error) { errs = append(errs, err) }
	var e error
	r.u64, e = state.NewValue(be, state.Descriptor[uint64]{Name: "u64"})
	reg(e)
	r.i64, e = state.NewValue(be, state.Descriptor[int64]{Name: "i64"})
	reg(e)
	r.i, e = state.NewValue(be, state.Descriptor[int]{Name: "i"})
	reg(e)
	r.u32, e = state.NewValue(be, state.Descriptor[uint32]{Name: "u32"})
	reg(e)
	r.i32, e = state.NewValue(be, state.Descriptor[int32]{Name: "i32"})
	reg(e)
	r.f, e = state.NewValue(be, state.Descriptor[float64]{Name: "f"})
	reg(e)
	r.b, e = state.NewValue(be, state.Descriptor[bool]{Name: "b"})
	reg(e)
	r.s, e = state.NewValue(be, state.Descriptor[string]{Name: "s"})
	reg(e)
	r.raw, e = state.NewValue(be, state.Descriptor[[]byte]{Name: "raw"})
	reg(e)
	r.doc, e = state.NewValue(be, state.Descriptor[point]{Name: "doc"})
	reg(e)
	r.ind, e = state.NewValue(be, state.Descriptor[point]{Name: "ind", Codec: indentedJSON{}})
	reg(e)
	r.rot, e = state.NewValue(be, state.Descriptor[string]{Name: "rot", Codec: impRot13{}})
	reg(e)
	r.ttl, e = state.NewValue(be, state.Descriptor[string]{Name: "ttl", TTL: time.Hour})
	reg(e)
	r.red, e = state.NewReducing(be, state.Descriptor[int64]{Name: "red"}, func(a, b int64) int64 { return a + b })
	reg(e)
	r.m, e = state.NewMap[uint64](be, state.Descriptor[string]{Name: "m"}, nil)
	reg(e)
	r.mttl, e = state.NewMap[string](be, state.Descriptor[int64]{Name: "mttl", TTL: 90 * time.Minute}, nil)
	reg(e)
	r.l, e = state.NewList(be, state.Descriptor[float64]{Name: "l"})
	reg(e)
	r.lj, e = state.NewList(be, state.Descriptor[point]{Name: "lj"})
	reg(e)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return r
}

// richStates is the number of states of the rich operator.
const richStates = 18

var (
	floats = []float64{math.NaN(), math.Copysign(0, -1), math.Inf(1), 0.1, 1e300, math.Float64frombits(0x7ff0000000000abc)}
	strs   = []string{"text", "", "\xff\xfe", "<b>&amp;</b>", "tab\tnl\n"}
)

// put writes the n-th key's values, which exercise every codec's corner
// cases.
func (r *richHandles) put(t testing.TB, n int, k string) {
	t.Helper()
	err := errors.Join(
		r.u64.Put(k, math.MaxUint64-uint64(n)),
		r.i64.Put(k, math.MinInt64+int64(n)),
		r.i.Put(k, -n),
		r.u32.Put(k, math.MaxUint32-uint32(n)),
		r.i32.Put(k, math.MinInt32+int32(n)),
		r.f.Put(k, floats[n%len(floats)]),
		r.b.Put(k, n%2 == 0),
		r.s.Put(k, strs[n%len(strs)]),
		r.raw.Put(k, bytes.Repeat([]byte{byte(n), 0xff}, n)),
		r.doc.Put(k, point{X: float64(n) / 3, Y: -1, Tag: "<" + k + ">"}),
		r.ind.Put(k, point{X: 1, Tag: k}),
		r.rot.Put(k, "Hello "+k),
		r.ttl.Put(k, "expiring "+k),
		r.red.Add(k, int64(n)*1000),
		r.m.Put(k, 1, "one"),
		r.m.Put(k, math.MaxUint64, strs[n%len(strs)]),
		r.mttl.Put(k, "w-"+k, int64(n)),
		r.l.Add(k, floats[n%len(floats)]),
		r.l.Add(k, float64(n)),
		r.lj.Add(k, point{Tag: k}),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// writeRich commits checkpoint id (parent 0) holding the rich operator
// "rich" in two key-group ranges, written by the state engine with its
// clock at richClock.
func writeRich(t testing.TB, r *checkpoint.Repo, id uint64) *format.Manifest {
	t.Helper()
	ctx := context.Background()
	var subs []*richHandles
	var rngs []state.KeyGroupRange
	for i := range 2 {
		rng, err := state.RangeForSubtask(checkpointtest.KeyGroups, 2, i)
		if err != nil {
			t.Fatal(err)
		}
		rngs = append(rngs, rng)
		subs = append(subs, bindRich(t, newRichBackend(t, &rng)))
	}
	for n, k := range richKeys {
		subs[state.SubtaskFor(state.KeyGroupFor(k, checkpointtest.KeyGroups), checkpointtest.KeyGroups, 2)].put(t, n, k)
	}
	b, err := r.NewCheckpoint(ctx, id, 0, checkpoint.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, sub := range subs {
		snap := sub.be.Snapshot(state.Full)
		err := b.AddSnapshot(ctx, "rich", rngs[i], snap)
		snap.Release(err == nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDump_Rich(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		r := newRepo(t, store.NewMem("rich"))
		writeRich(t, r, 1)
		recs, lines := dumpAll(t, r, 1, checkpoint.DumpOptions{})
		// One record per state and key, and a second map key in "m".
		if want := (richStates + 1) * len(richKeys); len(recs) != want {
			t.Fatalf("%d records, want %d:\n%s", len(recs), want, lines)
		}
		for _, line := range strings.Split(strings.TrimSpace(lines), "\n") {
			if !json.Valid([]byte(line)) {
				t.Fatalf("invalid JSON line %s", line)
			}
		}
		for _, want := range []string{
			`"state":"u64","key":"plain","value":18446744073709551615}`,
			`"state":"f","key":"plain","value":"NaN"}`,
			`"state":"f","key":"","value":-0}`,
			`"state":"f","key":"a\"<&>\n","value":1e+300}`,
			`"state":"s","key_b64":"/wBiaW4=","value_b64":"//4="}`,
			`"state":"rot","key":"plain","value_b64":"`,
			`"state":"ind","key":"plain","value_b64":"`,
			`"state":"doc","key":"plain","value":{"X":0,"Y":-1,"tag":"\u003cplain\u003e"}}`,
			`"state":"ttl","key":"plain","value":"expiring plain","expires_at":"2031-01-01T01:00:00Z"}`,
			`"state":"mttl","key":"plain","map_key":"w-plain","value":0,"expires_at":"2031-01-01T01:30:00Z"}`,
			`"state":"m","key":"plain","map_key":18446744073709551615,"value":"text"}`,
			`"state":"l","key":"plain","value":["NaN",0]}`,
			`"state":"raw","key":"","value":"Af8="}`,
			`"state":"raw","key":"plain","value":""}`,
		} {
			if !strings.Contains(lines, want) {
				t.Errorf("no line contains %s", want)
			}
		}
		if t.Failed() {
			t.Log(lines)
		}
	})
}

// FuzzDumpRecord checks the line parser against encoding/json: it never
// panics, it sees the same fields, and what it accepts marshals to a line
// that parses to the same record.
func FuzzDumpRecord(f *testing.F) {
	for _, seed := range []string{
		`{"operator":"count","state":"count","key":"a","value":1}`,
		`{"operator":"o","state":"m","key_b64":"/wA=","map_key":{"a":[1,"}"]},"value":"x\"y","expires_at":"2031-01-02T03:04:05.0000006Z"}`,
		` { "operator" : "o" , "state":"s","\u006bey":"k","value_b64":"","value":null } `,
		`{"operator":"o","state":"s","key":"k","value":[],"value":{}}`,
		`[1]`, `{`, `"x"`, `{"operator":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var rec checkpoint.DumpRecord
		err := rec.UnmarshalJSON(line)
		var ref map[string]json.RawMessage
		refErr := json.Unmarshal(line, &ref)
		if err != nil {
			var fe *checkpoint.RecordFieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a RecordFieldError", err)
			}
			if fe.Field == "" && refErr == nil && ref != nil && utf8.Valid(line) {
				t.Fatalf("refused %q as a whole, which encoding/json reads as an object", line)
			}
			return
		}
		if refErr != nil || ref == nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", line, refErr)
		}
		compact := func(raw []byte) string {
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				t.Fatalf("compact %q: %v", raw, err)
			}
			return b.String()
		}
		if v, ok := ref["value"]; ok && compact(v) != compact(rec.Value) {
			t.Fatalf("value %q, encoding/json sees %q", rec.Value, v)
		}
		if v, ok := ref["map_key"]; ok && compact(v) != compact(rec.MapKey) {
			t.Fatalf("map_key %q, encoding/json sees %q", rec.MapKey, v)
		}
		var op string
		if json.Unmarshal(ref["operator"], &op) != nil || op != rec.Operator {
			t.Fatalf("operator %q, encoding/json sees %q", rec.Operator, ref["operator"])
		}
		out, err := rec.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back checkpoint.DumpRecord
		if err := back.UnmarshalJSON(out); err != nil {
			t.Fatalf("%q marshals to %q, which does not parse: %v", line, out, err)
		}
		again, _ := back.MarshalJSON()
		if !bytes.Equal(again, out) {
			t.Fatalf("%q -> %q -> %q", line, out, again)
		}
	})
}

// Dump's progress never goes back and ends at every (state, key group)
// pair of the selection.
func TestDump_Progress(t *testing.T) {
	j := checkpointtest.Standard(t, store.NewMem("dump-progress"))
	for _, tc := range []struct {
		opts  checkpoint.DumpOptions
		total int64
	}{
		{checkpoint.DumpOptions{}, 3 * 128}, // count/count, count/windows, dedupe/seen
		{checkpoint.DumpOptions{Operator: "count"}, 2 * 128},
		{checkpoint.DumpOptions{State: "windows"}, 128},
		{checkpoint.DumpOptions{Key: checkpointtest.Word(7)}, 3},
	} {
		var seen []int64
		tc.opts.Progress = func(done, total int64) {
			if total != tc.total || done > total || (len(seen) > 0 && done < seen[len(seen)-1]) {
				t.Errorf("%+v: progress %d of %d after %v", tc.opts, done, total, seen)
			}
			seen = append(seen, done)
		}
		dumpAll(t, j.Repo, 3, tc.opts)
		if len(seen) == 0 || seen[len(seen)-1] != tc.total {
			t.Errorf("%+v: progress %v, want it to end at %d", tc.opts, seen, tc.total)
		}
	}
}
