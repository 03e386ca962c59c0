package checkpoint_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
	"github.com/arkstate/arkstate/pkg/store"
)

// importEntry is a resolved entry with its operator, owning its bytes.
type importEntry struct {
	op string
	e  format.Entry
}

// importEntries returns every live entry of checkpoint id as stored, sorted
// by operator and entry so that range layouts do not matter.
func importEntries(t testing.TB, r *checkpoint.Repo, id uint64) []importEntry {
	t.Helper()
	ctx := context.Background()
	m, err := r.Manifest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []importEntry
	for _, o := range m.Operators {
		v, err := checkpoint.OpenView(ctx, r, m, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		for v.Next() {
			e := *v.Entry()
			e.Key, e.Value = bytes.Clone(e.Key), bytes.Clone(e.Value)
			out = append(out, importEntry{o.ID, e})
		}
		if err := v.Err(); err != nil {
			t.Fatal(err)
		}
		v.Close()
	}
	slices.SortFunc(out, func(a, b importEntry) int {
		return cmp.Or(cmp.Compare(a.op, b.op), format.CompareEntries(&a.e, &b.e))
	})
	return out
}

func sameEntries(t testing.TB, got, want []importEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.op != w.op || format.CompareEntries(&g.e, &w.e) != 0 || !bytes.Equal(g.e.Value, w.e.Value) || g.e.ExpiresAt != w.e.ExpiresAt {
			t.Fatalf("entry %d = %s %+v, want %s %+v", i, g.op, g.e, w.op, w.e)
		}
	}
}

func runImport(t testing.TB, r *checkpoint.Repo, lines string, opts checkpoint.ImportOptions) (*checkpoint.ImportResult, error) {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "test.jsonl"
	}
	return checkpoint.Import(context.Background(), r, strings.NewReader(lines), opts)
}

func mustImport(t testing.TB, r *checkpoint.Repo, lines string, opts checkpoint.ImportOptions) *checkpoint.ImportResult {
	t.Helper()
	res, err := runImport(t, r, lines, opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return res
}

// restoreStandard restores checkpoint m of the synthetic job into one
// backend per operator and reads every word through the typed API.
func restoreStandard(t testing.TB, r *checkpoint.Repo, m *format.Manifest) string {
	t.Helper()
	ctx := context.Background()
	bes := map[string]*state.Backend{}
	for _, op := range []string{"count", "dedupe"} {
		be, err := state.NewBackend(state.Options{KeyGroups: checkpointtest.KeyGroups})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.RestoreBackend(ctx, m, op, be); err != nil {
			t.Fatal(err)
		}
		bes[op] = be
	}
	counts, err := state.NewValue(bes["count"], state.Descriptor[uint64]{Name: "count"})
	if err != nil {
		t.Fatal(err)
	}
	windows, err := state.NewMap[string](bes["count"], state.Descriptor[uint64]{Name: "windows"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := state.NewList(bes["dedupe"], state.Descriptor[string]{Name: "seen"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 660 {
		w := checkpointtest.Word(i)
		n, ok, err := counts.Get(w)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s count=%d/%t windows=", w, n, ok)
		if err := windows.All(w, func(k string, v uint64) bool { fmt.Fprintf(&b, "%s:%d,", k, v); return true }); err != nil {
			t.Fatal(err)
		}
		l, err := seen.Get(w)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, " seen=%q\n", l)
	}
	return b.String()
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	t.Run("OKRoundTrip", func(t *testing.T) {
		s := store.NewMem("imp")
		j := checkpointtest.Standard(t, s)
		_, a := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{})
		res := mustImport(t, j.Repo, a, checkpoint.ImportOptions{})
		m := res.Manifest
		if m.CheckpointID != 4 || m.Kind != format.KindFull || m.Parent != 0 || res.Entries != 1617 || res.Skipped != 0 {
			t.Fatalf("imported checkpoint %d kind %s parent %d with %d entries (%d skipped)", m.CheckpointID, m.Kind, m.Parent, res.Entries, res.Skipped)
		}
		_, b := dumpAll(t, j.Repo, 4, checkpoint.DumpOptions{})
		if a != b {
			t.Fatal("the dump of the imported checkpoint differs from the dump it was imported from")
		}
		sameEntries(t, importEntries(t, j.Repo, 4), importEntries(t, j.Repo, 3))
		m3, _ := j.Repo.Manifest(ctx, 3)
		if got, want := restoreStandard(t, j.Repo, m), restoreStandard(t, j.Repo, m3); got != want {
			t.Fatal("restored state of the imported checkpoint differs from the original's")
		}
		if fmt.Sprint(m.Sources) != fmt.Sprint(m3.Sources) {
			t.Fatalf("sources %v, want the parent's %v", m.Sources, m3.Sources)
		}
		for i, o := range m.Operators {
			if len(o.Ranges) != len(m3.Operators[i].Ranges) {
				t.Fatalf("operator %s has %d ranges, want the parent's %d", o.ID, len(o.Ranges), len(m3.Operators[i].Ranges))
			}
		}
	})
	t.Run("OKRoundTripRich", func(t *testing.T) {
		r := newRepo(t, store.NewMem("imp"))
		writeRich(t, r, 1)
		_, a := dumpAll(t, r, 1, checkpoint.DumpOptions{})
		mustImport(t, r, a, checkpoint.ImportOptions{})
		_, b := dumpAll(t, r, 2, checkpoint.DumpOptions{})
		if a != b {
			t.Fatalf("dumps differ:\n%s\n%s", a, b)
		}
		sameEntries(t, importEntries(t, r, 2), importEntries(t, r, 1))

		// Typed reads of the restored state, including the values that
		// travelled as base64 and the TTL entries.
		m, _ := r.Manifest(ctx, 2)
		be := newRichBackend(t, nil)
		if err := r.RestoreBackend(ctx, m, "rich", be); err != nil {
			t.Fatal(err)
		}
		rich := bindRich(t, be)
		for n, k := range richKeys {
			f, _, err1 := rich.f.Get(k)
			s, _, err2 := rich.s.Get(k)
			rot, _, err3 := rich.rot.Get(k)
			ind, _, err4 := rich.ind.Get(k)
			ttl, okTTL, err5 := rich.ttl.Get(k)
			mx, okM, err6 := rich.m.Get(k, math.MaxUint64)
			l, err7 := rich.l.Get(k)
			if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
				t.Fatal(err)
			}
			wantF := floats[n%len(floats)]
			switch {
			case math.Float64bits(f) != math.Float64bits(wantF):
				t.Errorf("%q: f = %v (%#x), want %#x", k, f, math.Float64bits(f), math.Float64bits(wantF))
			case s != strs[n%len(strs)]:
				t.Errorf("%q: s = %q", k, s)
			case rot != "Hello "+k:
				t.Errorf("%q: rot = %q", k, rot)
			case ind.Tag != strings.ToValidUTF8(k, "\uFFFD") || ind.X != 1: // JSON's own loss, not the import's
				t.Errorf("%q: ind = %+v", k, ind)
			case !okTTL || ttl != "expiring "+k:
				t.Errorf("%q: ttl = %q, %t", k, ttl, okTTL)
			case !okM || mx != strs[n%len(strs)]:
				t.Errorf("%q: m[max] = %q, %t", k, mx, okM)
			case len(l) != 2 || math.Float64bits(l[0]) != math.Float64bits(wantF) || l[1] != float64(n):
				t.Errorf("%q: l = %v", k, l)
			}
		}
	})
	t.Run("OKIncremental", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("imp"))
		recs, _ := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{})
		upserts := `{"operator":"count","state":"count","key":"word-00001","value":99}
{"operator":"count","state":"count","key":"brand-new","value":1}
{"operator":"count","state":"windows","key":"word-00002","map_key":"w999","value":5}
{"operator":"dedupe","state":"seen","key":"word-00003","value":["x"]}
`
		res := mustImport(t, j.Repo, upserts, checkpoint.ImportOptions{Incremental: true})
		m := res.Manifest
		if m.Kind != format.KindIncremental || m.Parent != 3 || res.Entries != 4 {
			t.Fatalf("checkpoint %d kind %s parent %d entries %d", m.CheckpointID, m.Kind, m.Parent, res.Entries)
		}
		// Expected: the parent's records with the upserts laid over them.
		want := map[string]string{}
		keyOf := func(r checkpoint.DumpRecord) string {
			return r.Operator + "\x00" + r.State + "\x00" + r.Key + "\x00" + string(r.MapKey)
		}
		for _, r := range recs {
			want[keyOf(r)] = string(r.Value)
		}
		for _, line := range strings.Split(strings.TrimSpace(upserts), "\n") {
			var r checkpoint.DumpRecord
			if err := r.UnmarshalJSON([]byte(line)); err != nil {
				t.Fatal(err)
			}
			want[keyOf(r)] = string(r.Value)
		}
		got, _ := dumpAll(t, j.Repo, 4, checkpoint.DumpOptions{})
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d", len(got), len(want))
		}
		for _, r := range got {
			if want[keyOf(r)] != string(r.Value) {
				t.Fatalf("%q = %s, want %s", keyOf(r), r.Value, want[keyOf(r)])
			}
		}
		// Ranges without upserts keep the parent's layers as they are; the
		// others gain one delta.
		m3, _ := j.Repo.Manifest(ctx, 3)
		for i, o := range m.Operators {
			for k, rs := range o.Ranges {
				prev := m3.Operators[i].Ranges[k].Layers
				switch n := len(rs.Layers); {
				case n == len(prev) && fmt.Sprint(rs.Layers) == fmt.Sprint(prev):
				case n == len(prev)+1 && fmt.Sprint(rs.Layers[:n-1]) == fmt.Sprint(prev) && rs.Layers[n-1].Kind == format.LayerDelta && rs.Layers[n-1].Checkpoint == 4:
				default:
					t.Fatalf("%s range %d: layers %v on the parent's %v", o.ID, k, rs.Layers, prev)
				}
			}
		}
	})
	t.Run("OKIncrementalCompacts", func(t *testing.T) {
		j := checkpointtest.NewJob(t, store.NewMem("imp"))
		for round := range checkpoint.DefaultMaxChain {
			j.Apply(t, round*10, round*10+50)
			j.Checkpoint(t)
		}
		last := uint64(checkpoint.DefaultMaxChain)
		mLast, _ := j.Repo.Manifest(ctx, last)
		for _, rs := range mLast.Operators[0].Ranges {
			if len(rs.Layers) != checkpoint.DefaultMaxChain {
				t.Fatalf("fixture range has %d layers, want %d", len(rs.Layers), checkpoint.DefaultMaxChain)
			}
		}
		before := importEntries(t, j.Repo, last)
		w := checkpointtest.Word(5)
		res := mustImport(t, j.Repo, `{"operator":"count","state":"count","key":"`+w+`","value":1234}`, checkpoint.ImportOptions{Incremental: true})
		kg := state.KeyGroupFor(w, checkpointtest.KeyGroups)
		for _, o := range res.Manifest.Operators {
			for _, rs := range o.Ranges {
				want := checkpoint.DefaultMaxChain
				if o.ID == "count" && rs.Start <= kg && kg <= rs.End {
					want = 1
				}
				if len(rs.Layers) != want {
					t.Fatalf("%s [%d,%d]: %d layers, want %d", o.ID, rs.Start, rs.End, len(rs.Layers), want)
				}
			}
		}
		for i := range before {
			if before[i].op == "count" && before[i].e.State == "count" && string(before[i].e.Key) == w {
				before[i].e.Value = []byte{0xd2, 0x04, 0, 0, 0, 0, 0, 0}
			}
		}
		sameEntries(t, importEntries(t, j.Repo, last+1), before)
	})
	t.Run("OKDelete", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("imp"))
		recs, _ := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{})
		keyOf := func(r checkpoint.DumpRecord) string {
			return r.Operator + "\x00" + r.State + "\x00" + r.Key + "\x00" + string(r.MapKey)
		}
		// One of each kind that exists, taken from the dump, and two that
		// do not.
		var value, mapEntry, list *checkpoint.DumpRecord
		for i := range recs {
			r := &recs[i]
			switch {
			case r.State == "count" && value == nil:
				value = r
			case r.State == "windows" && mapEntry == nil:
				mapEntry = r
			case r.State == "seen" && list == nil:
				list = r
			}
		}
		deletes := fmt.Sprintf(`{"operator":"count","state":"count","key":%q,"deleted":true}
{"operator":"count","state":"windows","key":%q,"map_key":%s,"deleted":true}
{"operator":"count","state":"count","key":"no-such-word","deleted":true}
{"operator":"dedupe","state":"seen","key":%q,"deleted":true}
{"operator":"count","state":"windows","key":%q,"map_key":"no-such-window","deleted":true,"other":1}
{"operator":"count","state":"count","key":"word-00009","value":7,"deleted":false}
`, value.Key, mapEntry.Key, mapEntry.MapKey, list.Key, mapEntry.Key)
		res := mustImport(t, j.Repo, deletes, checkpoint.ImportOptions{Incremental: true})
		if res.Entries != 6 || res.Deleted != 3 || len(res.Missing) != 2 || res.Missing[0].Line != 3 || res.Missing[1].Line != 5 ||
			res.Missing[0].Key != "no-such-word" || string(res.Missing[1].MapKey) != `"no-such-window"` {
			t.Fatalf("entries %d, deleted %d, missing %+v", res.Entries, res.Deleted, res.Missing)
		}
		want := map[string]string{}
		for _, r := range recs {
			want[keyOf(r)] = string(r.Value)
		}
		delete(want, keyOf(*value))
		delete(want, keyOf(*mapEntry))
		delete(want, keyOf(*list))
		want["count\x00count\x00word-00009\x00"] = "7"
		got, _ := dumpAll(t, j.Repo, 4, checkpoint.DumpOptions{})
		if len(got) != len(want) {
			t.Fatalf("%d records after the deletes, want %d", len(got), len(want))
		}
		for _, r := range got {
			if w, ok := want[keyOf(r)]; !ok || w != string(r.Value) {
				t.Fatalf("%q = %s after the deletes, want %q (present %t)", keyOf(r), r.Value, w, ok)
			}
		}
		// The deletes are tombstones in a delta: the restored engine has
		// neither key.
		m, _ := j.Repo.Manifest(ctx, 4)
		restored := restoreStandard(t, j.Repo, m)
		if !strings.Contains(restored, value.Key+" count=0/false") {
			t.Fatalf("%s still has a count after its delete", value.Key)
		}
		// Deleting again finds nothing and changes nothing.
		res = mustImport(t, j.Repo, fmt.Sprintf(`{"operator":"count","state":"count","key":%q,"deleted":true}`, value.Key), checkpoint.ImportOptions{Incremental: true})
		if res.Deleted != 0 || len(res.Missing) != 1 {
			t.Fatalf("second delete: deleted %d, missing %+v", res.Deleted, res.Missing)
		}
		sameEntries(t, importEntries(t, j.Repo, 5), importEntries(t, j.Repo, 4))
	})
	t.Run("OKDeleteCompacts", func(t *testing.T) {
		j := checkpointtest.NewJob(t, store.NewMem("imp"))
		for round := range checkpoint.DefaultMaxChain {
			j.Apply(t, round*10, round*10+50)
			j.Checkpoint(t)
		}
		last := uint64(checkpoint.DefaultMaxChain)
		before := importEntries(t, j.Repo, last)
		w := checkpointtest.Word(5)
		res := mustImport(t, j.Repo, `{"operator":"count","state":"count","key":"`+w+`","deleted":true}`, checkpoint.ImportOptions{Incremental: true})
		if res.Deleted != 1 {
			t.Fatalf("deleted %d, missing %+v", res.Deleted, res.Missing)
		}
		kg := state.KeyGroupFor(w, checkpointtest.KeyGroups)
		for _, o := range res.Manifest.Operators {
			for _, rs := range o.Ranges {
				if o.ID == "count" && rs.Start <= kg && kg <= rs.End && (len(rs.Layers) != 1 || rs.Layers[0].Kind != format.LayerBase) {
					t.Fatalf("the deleted key's range has layers %v, want one new base", rs.Layers)
				}
			}
		}
		want := slices.DeleteFunc(before, func(e importEntry) bool {
			return e.op == "count" && e.e.State == "count" && string(e.e.Key) == w
		})
		sameEntries(t, importEntries(t, j.Repo, last+1), want)
	})
	t.Run("OKIncrementalNewOperator", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("imp"))
		states := []format.OperatorState{{ID: "extra", States: []format.StateDescriptor{{Name: "flag", Kind: "value", Codec: "bool"}}}}
		res := mustImport(t, j.Repo, `{"operator":"extra","state":"flag","key":"k","value":true}`, checkpoint.ImportOptions{Incremental: true, States: states})
		m := res.Manifest
		if m.Kind != format.KindIncremental || len(m.Operators) != 3 || m.Operators[2].ID != "extra" {
			t.Fatalf("kind %s, operators %v", m.Kind, m.Operators)
		}
		if rs := m.Operators[2].Ranges; len(rs) != 1 || rs[0].Start != 0 || rs[0].End != checkpointtest.KeyGroups-1 || len(rs[0].Layers) != 1 {
			t.Fatalf("extra ranges %v, want one base over all key groups", rs)
		}
		recs, _ := dumpAll(t, j.Repo, 4, checkpoint.DumpOptions{Operator: "extra"})
		if len(recs) != 1 || string(recs[0].Value) != "true" {
			t.Fatalf("extra: %+v", recs)
		}
	})
	t.Run("OKGapRanges", func(t *testing.T) {
		r := newRepo(t, store.NewMem("imp"))
		descs := []format.StateDescriptor{{Name: "s", Kind: "value", Codec: "string"}}
		var low, high string
		for i := 0; low == "" || high == ""; i++ {
			k := fmt.Sprint("key", i)
			if kg := state.KeyGroupFor(k, checkpointtest.KeyGroups); kg < 64 && low == "" {
				low = k
			} else if kg >= 64 && high == "" {
				high = k
			}
		}
		writeRawRange(t, r, 1, "op", descs, []format.Entry{{State: "s", KeyGroup: state.KeyGroupFor(low, checkpointtest.KeyGroups), Key: []byte(low), Value: []byte("v")}}, 0, 63)
		lines := `{"operator":"op","state":"s","key":"` + low + `","value":"a"}` + "\n" + `{"operator":"op","state":"s","key":"` + high + `","value":"b"}`
		res := mustImport(t, r, lines, checkpoint.ImportOptions{})
		rs := res.Manifest.Operators[0].Ranges
		if len(rs) != 2 || rs[0].Start != 0 || rs[0].End != 63 || rs[1].Start != 64 || rs[1].End != checkpointtest.KeyGroups-1 || len(rs[0].Layers) != 1 || len(rs[1].Layers) != 1 {
			t.Fatalf("ranges %v, want the parent's [0,63] and a new [64,127], one base each", rs)
		}
		recs, _ := dumpAll(t, r, 2, checkpoint.DumpOptions{})
		if len(recs) != 2 {
			t.Fatalf("records %+v", recs)
		}
	})
	t.Run("OKOperator", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("imp"))
		_, all := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{})
		// Keep every other dedupe line: the operator's state shrinks.
		var in strings.Builder
		kept := 0
		for i, line := range strings.Split(strings.TrimSpace(all), "\n") {
			if strings.Contains(line, `"operator":"dedupe"`) && i%2 == 0 {
				continue
			}
			in.WriteString(line + "\n")
			if strings.Contains(line, `"operator":"dedupe"`) {
				kept++
			}
		}
		res := mustImport(t, j.Repo, in.String(), checkpoint.ImportOptions{Operator: "dedupe"})
		if res.Entries != int64(kept) || res.Skipped != 640+760 {
			t.Fatalf("entries %d skipped %d, want %d and %d", res.Entries, res.Skipped, kept, 640+760)
		}
		m3, _ := j.Repo.Manifest(ctx, 3)
		if fmt.Sprint(res.Manifest.Operators[0]) != fmt.Sprint(m3.Operators[0]) {
			t.Fatal("operator count was not carried over unchanged")
		}
		got, _ := dumpAll(t, j.Repo, 4, checkpoint.DumpOptions{Operator: "dedupe"})
		if len(got) != kept {
			t.Fatalf("dedupe has %d records, want %d", len(got), kept)
		}
	})
	t.Run("OKFullReplacesOperators", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("imp"))
		_, counts := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{Operator: "count"})
		res := mustImport(t, j.Repo, counts, checkpoint.ImportOptions{})
		if len(res.Manifest.Operators) != 1 || res.Manifest.Operators[0].ID != "count" {
			t.Fatalf("operators %v, want only count", res.Manifest.Operators)
		}
	})
	t.Run("OKEmptyStoreWithStates", func(t *testing.T) {
		src := newRepo(t, store.NewMem("src"))
		m := writeRich(t, src, 1)
		_, a := dumpAll(t, src, 1, checkpoint.DumpOptions{})
		dst := newRepo(t, store.NewMem("dst"))
		res := mustImport(t, dst, a, checkpoint.ImportOptions{States: m.Operators})
		if res.Manifest.CheckpointID != 1 || len(res.Manifest.Operators[0].Ranges) != 1 {
			t.Fatalf("checkpoint %d with ranges %v, want checkpoint 1 with one range", res.Manifest.CheckpointID, res.Manifest.Operators[0].Ranges)
		}
		sameEntries(t, importEntries(t, dst, 1), importEntries(t, src, 1))
	})
	t.Run("OKReencode", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("imp"))
		_, a := dumpAll(t, j.Repo, 3, checkpoint.DumpOptions{Operator: "count", State: "count"})
		states := []format.OperatorState{{ID: "count", States: []format.StateDescriptor{{Name: "count", Kind: "value", Codec: "int32"}}}}
		res := mustImport(t, j.Repo, a, checkpoint.ImportOptions{States: states, Operator: "count"})
		if d := res.Manifest.Operators[0].States; d[0].Name != "count" || d[0].Codec != "int32" {
			t.Fatalf("descriptors %v, want count re-encoded as int32", d)
		}
		_, b := dumpAll(t, j.Repo, 4, checkpoint.DumpOptions{Operator: "count", State: "count"})
		if a != b {
			t.Fatal("re-encoded values dump differently")
		}
		recs, _ := dumpAll(t, j.Repo, 4, checkpoint.DumpOptions{Operator: "count", State: "windows"})
		if len(recs) != 0 {
			t.Fatalf("windows has %d records after a full import without them", len(recs))
		}
	})

	errCases := []struct {
		name  string
		lines string
		opts  checkpoint.ImportOptions
		line  int
		field string
		is    error
	}{
		{name: "ErrSyntax", lines: "{\"operator\":\"count\",\"state\":\"count\",\"key\":\"a\",\"value\":1}\n\n{\"operator\":", line: 3},
		{name: "ErrUnknownOperator", lines: `{"operator":"nope","state":"count","key":"a","value":1}`, line: 1, field: "operator"},
		{name: "ErrUnknownState", lines: `{"operator":"count","state":"nope","key":"a","value":1}`, line: 1, field: "state"},
		{name: "ErrValue", lines: `{"operator":"count","state":"count","key":"a","value":"x"}`, line: 1, field: "value", is: state.ErrCodec},
		{name: "ErrValueNegative", lines: `{"operator":"count","state":"count","key":"a","value":-1}`, line: 1, field: "value", is: state.ErrCodec},
		{name: "ErrListValue", lines: `{"operator":"dedupe","state":"seen","key":"a","value":"r1"}`, line: 1, field: "value", is: state.ErrCodec},
		{name: "ErrMapKeyMissing", lines: `{"operator":"count","state":"windows","key":"a","value":1}`, line: 1, field: "map_key"},
		{name: "ErrMapKeyType", lines: `{"operator":"count","state":"windows","key":"a","map_key":3,"value":1}`, line: 1, field: "map_key", is: state.ErrCodec},
		{name: "ErrMapKeyOnValue", lines: `{"operator":"count","state":"count","key":"a","map_key":"w","value":1}`, line: 1, field: "map_key"},
		{name: "ErrExpiresNoTTL", lines: `{"operator":"count","state":"count","key":"a","value":1,"expires_at":"2030-01-01T00:00:00Z"}`, line: 1, field: "expires_at"},
		{name: "ErrDuplicate", lines: "{\"operator\":\"count\",\"state\":\"count\",\"key\":\"a\",\"value\":1}\n{\"operator\":\"count\",\"state\":\"count\",\"key\":\"b\",\"value\":1}\n{\"operator\":\"count\",\"state\":\"count\",\"key\":\"a\",\"value\":2}\n", line: 3, field: "key"},
		{name: "ErrDeleteInFull", lines: `{"operator":"count","state":"count","key":"a","deleted":true}`, line: 1, field: "deleted"},
		{name: "ErrDeleteWithValue", lines: `{"operator":"count","state":"count","key":"a","deleted":true,"value":1}`, opts: checkpoint.ImportOptions{Incremental: true}, line: 1, field: "value"},
		{name: "ErrDeleteWithValueB64", lines: `{"operator":"count","state":"count","key":"a","deleted":true,"value_b64":"AQ=="}`, opts: checkpoint.ImportOptions{Incremental: true}, line: 1, field: "value_b64"},
		{name: "ErrDeleteWithExpiry", lines: `{"operator":"count","state":"count","key":"a","deleted":true,"expires_at":"2030-01-01T00:00:00Z"}`, opts: checkpoint.ImportOptions{Incremental: true}, line: 1, field: "expires_at"},
		{name: "ErrDeletedNotBool", lines: `{"operator":"count","state":"count","key":"a","deleted":"yes"}`, opts: checkpoint.ImportOptions{Incremental: true}, line: 1, field: "deleted"},
		{name: "ErrDeleteUnknownOperator", lines: `{"operator":"nope","state":"count","key":"a","deleted":true}`, opts: checkpoint.ImportOptions{Incremental: true}, line: 1, field: "operator"},
		{name: "ErrDeleteMapNoMapKey", lines: `{"operator":"count","state":"windows","key":"a","deleted":true}`, opts: checkpoint.ImportOptions{Incremental: true}, line: 1, field: "map_key"},
		{name: "ErrDeleteAndUpsert", lines: "{\"operator\":\"count\",\"state\":\"count\",\"key\":\"a\",\"value\":1}\n{\"operator\":\"count\",\"state\":\"count\",\"key\":\"a\",\"deleted\":true}\n", opts: checkpoint.ImportOptions{Incremental: true}, line: 2, field: "key"},
		{name: "ErrTooLarge", lines: strings.Repeat(`{"operator":"count","state":"count","key":"a","value":1}`+"\n", 20), opts: checkpoint.ImportOptions{MaxMemory: 1000}, line: 9, is: checkpoint.ErrImportTooLarge},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			s := store.NewMem("imp")
			j := checkpointtest.Standard(t, s)
			before := checkpointtest.Names(t, s, "")
			_, err := runImport(t, j.Repo, tc.lines, tc.opts)
			var ie *checkpoint.ImportError
			if !errors.As(err, &ie) || ie.File != "test.jsonl" || ie.Line != tc.line || ie.Field != tc.field {
				t.Fatalf("err = %v, want an ImportError for test.jsonl line %d field %q", err, tc.line, tc.field)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.is)
			}
			if after := checkpointtest.Names(t, s, ""); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a failed import changed the store:\n%v\n%v", before, after)
			}
		})
	}
	t.Run("ErrIncrementalEmptyStore", func(t *testing.T) {
		r := newRepo(t, store.NewMem("imp"))
		_, err := runImport(t, r, `{"operator":"count","state":"count","key":"a","value":1}`, checkpoint.ImportOptions{Incremental: true})
		if !errors.Is(err, checkpoint.ErrNoCheckpoints) {
			t.Fatalf("err = %v, want ErrNoCheckpoints", err)
		}
	})
	t.Run("ErrNoDescriptors", func(t *testing.T) {
		r := newRepo(t, store.NewMem("imp"))
		_, err := runImport(t, r, `{"operator":"count","state":"count","key":"a","value":1}`, checkpoint.ImportOptions{})
		var ie *checkpoint.ImportError
		if !errors.As(err, &ie) || ie.Field != "operator" || !strings.Contains(err.Error(), "no checkpoint") {
			t.Fatalf("err = %v, want an ImportError for the operator saying the store has no checkpoint", err)
		}
	})
	t.Run("ErrIncrementalConflict", func(t *testing.T) {
		j := checkpointtest.Standard(t, store.NewMem("imp"))
		states := []format.OperatorState{{ID: "count", States: []format.StateDescriptor{{Name: "count", Kind: "value", Codec: "int32"}}}}
		_, err := runImport(t, j.Repo, `{"operator":"count","state":"count","key":"a","value":1}`, checkpoint.ImportOptions{Incremental: true, States: states})
		if !errors.Is(err, state.ErrStateConflict) {
			t.Fatalf("err = %v, want ErrStateConflict", err)
		}
	})
}

func TestDecodeStateDescriptors(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ops, err := checkpoint.DecodeStateDescriptors(strings.NewReader(`[{"id":"count","states":[{"name":"count","kind":"value","codec":"uint64","ttl_millis":0},
			{"name":"windows","kind":"map","codec":"string/uint64","ttl_millis":60000}],"ranges":[{"start":0,"end":1,"layers":[]}]}]`), "states.json")
		if err != nil {
			t.Fatal(err)
		}
		if len(ops) != 1 || ops[0].ID != "count" || len(ops[0].States) != 2 || ops[0].States[1].TTLMillis != 60000 || ops[0].Ranges != nil {
			t.Fatalf("got %+v", ops)
		}
	})
	// checkpoint show's names, so that its "operators" can be fed back.
	t.Run("OKShowNames", func(t *testing.T) {
		ops, err := checkpoint.DecodeStateDescriptors(strings.NewReader(`[{"operator":"count","states":[{"state":"count","kind":"value","codec":"uint64","ttl_ms":0},
			{"state":"windows","kind":"map","codec":"string/uint64","ttl_ms":60000}],"ranges":[{"first_key_group":0,"last_key_group":1,"layers":[]}]}]`), "states.json")
		if err != nil {
			t.Fatal(err)
		}
		if len(ops) != 1 || ops[0].ID != "count" || len(ops[0].States) != 2 || ops[0].States[1].Name != "windows" || ops[0].States[1].TTLMillis != 60000 || ops[0].Ranges != nil {
			t.Fatalf("got %+v", ops)
		}
	})
	for _, tc := range []struct{ name, in, field string }{
		{"ErrNotArray", `{"id":"x"}`, ""},
		{"ErrNoID", `[{"states":[]}]`, "[0].id"},
		{"ErrControlID", `[{"id":"a\u0001","states":[]}]`, "[0].id"},
		{"ErrControlCodec", `[{"id":"o","states":[{"name":"s","kind":"value","codec":"x\ny"}]}]`, "[0].states[0]"},
		{"ErrKind", `[{"id":"o","states":[{"name":"s","kind":"set","codec":"json"}]}]`, "[0].states[0]"},
		{"ErrMapCodec", `[{"id":"o","states":[{"name":"s","kind":"map","codec":"json"}]}]`, "[0].states[0]"},
		{"ErrNoCodec", `[{"id":"o","states":[{"name":"s","kind":"value"}]}]`, "[0].states[0]"},
		{"ErrNoOperator", `[{"states":[]}]`, "[0].id"},
		{"ErrOperatorDisagrees", `[{"id":"a","operator":"b","states":[]}]`, "[0].operator"},
		{"ErrStateDisagrees", `[{"operator":"o","states":[{"name":"s","state":"t","kind":"value","codec":"json"}]}]`, "[0].states[0]"},
		{"ErrTTLDisagrees", `[{"operator":"o","states":[{"state":"s","kind":"value","codec":"json","ttl_ms":1,"ttl_millis":2}]}]`, "[0].states[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkpoint.DecodeStateDescriptors(strings.NewReader(tc.in), "states.json")
			var ie *checkpoint.ImportError
			if !errors.As(err, &ie) || ie.File != "states.json" || ie.Field != tc.field {
				t.Fatalf("err = %v, want an ImportError for states.json field %q", err, tc.field)
			}
		})
	}
}

// benchJob writes one full checkpoint of the synthetic job with words
// [0, n): about 2.3 entries per word over three states.
func benchJob(b *testing.B, n int) *checkpointtest.Job {
	b.Helper()
	j := checkpointtest.NewJob(b, store.NewMem("bench"))
	j.Apply(b, 0, n)
	j.Checkpoint(b)
	return j
}

func BenchmarkDump(b *testing.B) {
	j := benchJob(b, 50000)
	var entries, bytes int
	for b.Loop() {
		entries, bytes = 0, 0
		err := checkpoint.Dump(context.Background(), j.Repo, 1, checkpoint.DumpOptions{}, func(rec checkpoint.DumpRecord) error {
			line, err := rec.MarshalJSON()
			entries++
			bytes += len(line) + 1
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.SetBytes(int64(bytes))
}

func BenchmarkImport(b *testing.B) {
	j := benchJob(b, 50000)
	_, lines := dumpAll(b, j.Repo, 1, checkpoint.DumpOptions{})
	var entries int64
	for b.Loop() {
		res, err := checkpoint.Import(context.Background(), j.Repo, strings.NewReader(lines), checkpoint.ImportOptions{})
		if err != nil {
			b.Fatal(err)
		}
		entries = res.Entries
	}
	b.ReportMetric(float64(entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.SetBytes(int64(len(lines)))
}

// FuzzDecodeStateDescriptors: a descriptors file never panics the decoder,
// every error names the file, and what it accepts are descriptors import
// can use (valid ids, kinds and codecs, no ranges).
func FuzzDecodeStateDescriptors(f *testing.F) {
	for _, seed := range []string{
		`[{"operator":"count","states":[{"state":"count","kind":"value","codec":"uint64","ttl_ms":0}]}]`,
		`[{"id":"count","states":[{"name":"w","kind":"map","codec":"string/uint64","ttl_millis":60000}],"ranges":[]}]`,
		`[{"id":"a","operator":"a","states":[{"name":"s","state":"s","kind":"list","codec":"json","ttl_ms":5,"ttl_millis":5}]}]`,
		`[]`, `{}`, `[{"states":[]}]`, `[{"operator":"o","states":[{"kind":"value"}]}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := checkpoint.DecodeStateDescriptors(bytes.NewReader(data), "states.json")
		if err != nil {
			var ie *checkpoint.ImportError
			if !errors.As(err, &ie) || ie.File != "states.json" {
				t.Fatalf("error %v does not name the file", err)
			}
			return
		}
		for _, o := range ops {
			if o.ID == "" || o.Ranges != nil {
				t.Fatalf("accepted operator %+v", o)
			}
			for _, d := range o.States {
				if d.Name == "" || d.Codec == "" || d.TTLMillis < 0 {
					t.Fatalf("accepted descriptor %+v of operator %q", d, o.ID)
				}
			}
		}
	})
}
