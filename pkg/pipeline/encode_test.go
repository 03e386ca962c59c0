package pipeline

import (
	"encoding/json"
	"math"
	"testing"
)

// appendRecord must produce exactly what encoding/json does.
func TestAppendRecord_MatchesEncodingJSON(t *testing.T) {
	for _, rec := range []Record{
		{},
		{"key": "the", "count": uint64(3)},
		{"b": int64(-7), "a": 1.5, "c": true, "d": nil, "e": "x\"y<z>&\n", "f": "héllo", "g": []any{int64(1), "x"}},
		{"big": 1e21, "small": 1e-7, "whole": float64(42), "neg": math.Copysign(0, -1), "max": math.MaxInt64},
		{"nested": map[string]any{"z": int64(1), "a": "b"}},
	} {
		want, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendRecord(nil, rec)
		if err != nil || string(got) != string(want) {
			t.Errorf("appendRecord(%v) = %s, %v; encoding/json: %s", rec, got, err, want)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	rec := Record{"key": "checkpoint", "count": uint64(12345)}
	var buf []byte
	for b.Loop() {
		buf, _ = appendRecord(buf[:0], rec)
	}
}

func BenchmarkJSONMarshalRecord(b *testing.B) {
	rec := Record{"key": "checkpoint", "count": uint64(12345)}
	for b.Loop() {
		_, _ = json.Marshal(rec)
	}
}
