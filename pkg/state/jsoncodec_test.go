package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// encodeWith returns v encoded by T's default codec and that codec's name.
func encodeWith[T any](t testing.TB, v T) (string, []byte) {
	t.Helper()
	c := CodecFor[T]()
	b, err := c.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return c.Name(), b
}

func TestValueToJSON(t *testing.T) {
	type point struct {
		X, Y int
		Tag  string `json:"tag"`
	}
	cases := []struct {
		name  string
		codec string
		b     []byte
		want  string
	}{}
	add := func(name, want string, codec string, b []byte) {
		cases = append(cases, struct {
			name  string
			codec string
			b     []byte
			want  string
		}{name, codec, b, want})
	}
	c, b := encodeWith(t, uint64(math.MaxUint64))
	add("uint64Max", "18446744073709551615", c, b)
	c, b = encodeWith(t, uint64(1<<53+1))
	add("uint64BeyondFloat", "9007199254740993", c, b)
	c, b = encodeWith(t, int64(math.MinInt64))
	add("int64Min", "-9223372036854775808", c, b)
	c, b = encodeWith(t, -7)
	add("int", "-7", c, b)
	c, b = encodeWith(t, uint32(math.MaxUint32))
	add("uint32", "4294967295", c, b)
	c, b = encodeWith(t, int32(math.MinInt32))
	add("int32", "-2147483648", c, b)
	c, b = encodeWith(t, 0.1)
	add("float", "0.1", c, b)
	c, b = encodeWith(t, 1e300)
	add("floatExp", "1e+300", c, b)
	c, b = encodeWith(t, math.Copysign(0, -1))
	add("floatNegZero", "-0", c, b)
	c, b = encodeWith(t, math.Inf(-1))
	add("floatNegInf", `"-Inf"`, c, b)
	c, b = encodeWith(t, math.NaN())
	add("floatNaN", `"NaN"`, c, b)
	c, b = encodeWith(t, math.Float64frombits(0x7ff0000000000002))
	add("floatNaNPayload", `"NaN(0x7ff0000000000002)"`, c, b)
	c, b = encodeWith(t, true)
	add("bool", "true", c, b)
	c, b = encodeWith(t, "a \"q\" <b> & \t\x01 é")
	add("string", `"a \"q\" <b> & \t\u0001 é"`, c, b)
	c, b = encodeWith(t, []byte{0, 1, 0xff})
	add("bytes", `"AAH/"`, c, b)
	c, b = encodeWith(t, []byte{})
	add("bytesEmpty", `""`, c, b)
	c, b = encodeWith(t, point{1, -2, "<x>"})
	add("json", `{"X":1,"Y":-2,"tag":"\u003cx\u003e"}`, c, b)
	add("jsonUnescapedHTML", `{"a":"<x>"}`, "json", []byte(`{"a":"<x>"}`))

	for _, tc := range cases {
		t.Run("OK"+strings.ToUpper(tc.name[:1])+tc.name[1:], func(t *testing.T) {
			got, err := ValueToJSON(tc.codec, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("ValueToJSON(%s, %x) = %s, want %s", tc.codec, tc.b, got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("%s is not valid JSON", got)
			}
			back, err := ValueFromJSON(tc.codec, got)
			if err != nil {
				t.Fatalf("ValueFromJSON(%s, %s): %v", tc.codec, got, err)
			}
			if !bytes.Equal(back, tc.b) {
				t.Fatalf("round trip of %x through %s gave %x", tc.b, got, back)
			}
		})
	}

	noForm := []struct {
		name, codec string
		b           []byte
	}{
		{"uint64Short", "uint64", []byte{1, 2}},
		{"int32Long", "int32", make([]byte, 8)},
		{"bool2", "bool", []byte{2}},
		{"stringNotUTF8", "string", []byte{'a', 0xff}},
		{"jsonSpaced", "json", []byte(`{"a": 1}`)},
		{"jsonInvalid", "json", []byte(`{"a":`)},
		{"jsonNotUTF8", "json", []byte("\"\xff\"")},
	}
	for _, tc := range noForm {
		t.Run("ErrNoJSONForm"+strings.ToUpper(tc.name[:1])+tc.name[1:], func(t *testing.T) {
			if got, err := ValueToJSON(tc.codec, tc.b); !errors.Is(err, ErrNoJSONForm) {
				t.Fatalf("ValueToJSON(%s, %x) = %s, %v; want ErrNoJSONForm", tc.codec, tc.b, got, err)
			}
		})
	}
	t.Run("ErrUnknownCodec", func(t *testing.T) {
		if _, err := ValueToJSON("protobuf", []byte{1}); !errors.Is(err, ErrUnknownCodec) {
			t.Fatalf("err = %v, want ErrUnknownCodec", err)
		}
	})
}

func TestValueFromJSON(t *testing.T) {
	t.Run("OKWhitespaceAndCompaction", func(t *testing.T) {
		got, err := ValueFromJSON("json", json.RawMessage(" { \"a\" : [1, 2] }\n"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != `{"a":[1,2]}` {
			t.Fatalf("got %s", got)
		}
		got, err = ValueFromJSON("uint64", json.RawMessage(" 42 "))
		if err != nil || !bytes.Equal(got, []byte{42, 0, 0, 0, 0, 0, 0, 0}) {
			t.Fatalf("got %x, %v", got, err)
		}
	})
	t.Run("OKJSONNull", func(t *testing.T) {
		got, err := ValueFromJSON("json", json.RawMessage("null"))
		if err != nil || string(got) != "null" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	bad := []struct{ codec, v string }{
		{"uint64", "18446744073709551616"},
		{"uint64", "-1"},
		{"uint64", "1.0"},
		{"uint64", "1e3"},
		{"uint64", `"1"`},
		{"uint64", "01"},
		{"uint32", "4294967296"},
		{"int32", "-2147483649"},
		{"int64", "9223372036854775808"},
		{"int", "null"},
		{"float64", "1e400"},
		{"float64", `"inf"`},
		{"float64", `"NaN(0x0000000000000001)"`},
		{"float64", "true"},
		{"bool", "1"},
		{"string", "12"},
		{"string", "\"\xff\""},
		{"bytes", `"AAH"`},
		{"bytes", `"AAH/="`},
		{"bytes", `"AAF="`},
		{"json", "{"},
		{"json", "\"\xff\""},
	}
	for _, tc := range bad {
		t.Run("ErrCodec/"+tc.codec+"/"+tc.v, func(t *testing.T) {
			if got, err := ValueFromJSON(tc.codec, json.RawMessage(tc.v)); !errors.Is(err, ErrCodec) {
				t.Fatalf("ValueFromJSON(%s, %s) = %x, %v; want ErrCodec", tc.codec, tc.v, got, err)
			}
		})
	}
	t.Run("ErrUnknownCodec", func(t *testing.T) {
		if _, err := ValueFromJSON("avro", json.RawMessage("1")); !errors.Is(err, ErrUnknownCodec) {
			t.Fatalf("err = %v, want ErrUnknownCodec", err)
		}
	})
}

func TestListToJSON(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		var stored []byte
		var err error
		for _, s := range []string{"a", "", "héllo\n"} {
			if stored, err = appendElem(stored, Codec[string](StringCodec{}), s); err != nil {
				t.Fatal(err)
			}
		}
		got, err := ListToJSON("string", stored)
		if err != nil {
			t.Fatal(err)
		}
		if want := `["a","","héllo\n"]`; string(got) != want {
			t.Fatalf("got %s, want %s", got, want)
		}
		back, err := ListFromJSON("string", got)
		if err != nil || !bytes.Equal(back, stored) {
			t.Fatalf("round trip gave %x, %v; want %x", back, err, stored)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		got, err := ListToJSON("uint64", []byte{})
		if err != nil || string(got) != "[]" {
			t.Fatalf("got %s, %v", got, err)
		}
		back, err := ListFromJSON("uint64", got)
		if err != nil || back == nil || len(back) != 0 {
			t.Fatalf("got %#v, %v; want an empty, non-nil value", back, err)
		}
	})
	t.Run("ErrNoJSONForm", func(t *testing.T) {
		for _, stored := range [][]byte{
			{5, 'a'},     // length past the end
			{0x81, 0x00}, // length not in shortest form
			{1, 0xff},    // element not UTF-8
			{0xff, 0xff, 0xff, 0xff, // length overflows
				0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		} {
			if got, err := ListToJSON("string", stored); !errors.Is(err, ErrNoJSONForm) {
				t.Fatalf("ListToJSON(%x) = %s, %v; want ErrNoJSONForm", stored, got, err)
			}
		}
	})
	t.Run("ErrCodec", func(t *testing.T) {
		for _, v := range []string{`{"a":1}`, `[1,"x"]`, `[`} {
			if got, err := ListFromJSON("uint64", json.RawMessage(v)); !errors.Is(err, ErrCodec) {
				t.Fatalf("ListFromJSON(%s) = %x, %v; want ErrCodec", v, got, err)
			}
		}
	})
}

func TestStateValueToJSON(t *testing.T) {
	t.Run("OKMap", func(t *testing.T) {
		got, err := StateValueToJSON(KindMap, "string/uint64", []byte{3, 0, 0, 0, 0, 0, 0, 0})
		if err != nil || string(got) != "3" {
			t.Fatalf("got %s, %v", got, err)
		}
		back, err := StateValueFromJSON(KindMap, "string/uint64", got)
		if err != nil || !bytes.Equal(back, []byte{3, 0, 0, 0, 0, 0, 0, 0}) {
			t.Fatalf("got %x, %v", back, err)
		}
	})
	t.Run("OKList", func(t *testing.T) {
		got, err := StateValueToJSON(KindList, "bool", []byte{1, 1, 1, 0})
		if err != nil || string(got) != "[true,false]" {
			t.Fatalf("got %s, %v", got, err)
		}
	})
	t.Run("ErrUnknownCodec", func(t *testing.T) {
		if _, err := StateValueToJSON(KindMap, "uint64", []byte{1}); !errors.Is(err, ErrUnknownCodec) {
			t.Fatalf("err = %v, want ErrUnknownCodec", err)
		}
		if _, err := StateValueFromJSON(KindMap, "nocodec", json.RawMessage("1")); !errors.Is(err, ErrUnknownCodec) {
			t.Fatalf("err = %v, want ErrUnknownCodec", err)
		}
	})
}

func TestSplitMapKey(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct{ uk, mk string }{{"user", "w001"}, {"", ""}, {"\xff\x00", "k"}} {
			stored := JoinMapKey(tc.uk, []byte(tc.mk))
			uk, mk, ok := SplitMapKey(stored)
			if !ok || string(uk) != tc.uk || string(mk) != tc.mk {
				t.Fatalf("SplitMapKey(JoinMapKey(%q, %q)) = %q, %q, %t", tc.uk, tc.mk, uk, mk, ok)
			}
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		for _, stored := range [][]byte{nil, {0, 0, 1}, {0, 0, 0, 5, 'a'}} {
			if _, _, ok := SplitMapKey(stored); ok {
				t.Fatalf("SplitMapKey(%x) accepted a malformed key", stored)
			}
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, s := range []string{"", "plain", "\"\\/\b\f\n\r\t\x00\x1f\x7f", "<&>", "é€😀", "\u2028"} {
			got := AppendJSONString(nil, s)
			var back string
			if err := json.Unmarshal(got, &back); err != nil || back != s {
				t.Fatalf("AppendJSONString(%q) = %s, decodes to %q, %v", s, got, back, err)
			}
		}
	})
	t.Run("OKInvalidUTF8", func(t *testing.T) {
		if got := string(AppendJSONString(nil, "a\xffb")); got != `"a\ufffdb"` {
			t.Fatalf("got %s", got)
		}
	})
}

// fuzzCodecs are the codec names the fuzz targets pick from by index; the
// last one is unknown.
var fuzzCodecs = append(append([]string(nil), CodecNames...), "custom")

// FuzzValueFromJSON checks that decoding arbitrary JSON never panics, and
// that whatever it accepts has a JSON form that decodes to the same bytes.
func FuzzValueFromJSON(f *testing.F) {
	for i, seed := range []string{"0", "18446744073709551615", "-1", "1.5", "1e308", `"NaN(0x7ff0000000000002)"`,
		"true", `"text"`, `"AAH/"`, `{"a":[1,2,{"b":null}]}`, "[1,2]", `"\ud800"`, "-0", "-0.0"} {
		f.Add(uint8(i), false, []byte(seed))
		f.Add(uint8(i), true, []byte("["+seed+"]"))
	}
	f.Fuzz(func(t *testing.T, pick uint8, list bool, v []byte) {
		codec := fuzzCodecs[int(pick)%len(fuzzCodecs)]
		from, to := ValueFromJSON, ValueToJSON
		if list {
			from, to = ListFromJSON, ListToJSON
		}
		b, err := from(codec, v)
		if err != nil {
			if !errors.Is(err, ErrCodec) && !errors.Is(err, ErrUnknownCodec) {
				t.Fatalf("error %v wraps neither ErrCodec nor ErrUnknownCodec", err)
			}
			return
		}
		j, err := to(codec, b)
		if err != nil {
			t.Fatalf("%s accepted %q as %x, which has no JSON form: %v", codec, v, b, err)
		}
		back, err := from(codec, j)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%s: %q -> %x -> %s -> %x, %v", codec, v, b, j, back, err)
		}
	})
}

// FuzzValueToJSON checks what dump-then-import relies on: any stored bytes
// either have no JSON form or come back from it exactly.
func FuzzValueToJSON(f *testing.F) {
	for i := range fuzzCodecs {
		f.Add(uint8(i), false, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		f.Add(uint8(i), true, []byte{2, 'a', 'b', 0})
	}
	f.Add(uint8(9), false, []byte(`{"a":"<\u2028>"}`))
	f.Fuzz(func(t *testing.T, pick uint8, list bool, b []byte) {
		codec := fuzzCodecs[int(pick)%len(fuzzCodecs)]
		from, to := ValueFromJSON, ValueToJSON
		if list {
			from, to = ListFromJSON, ListToJSON
		}
		j, err := to(codec, b)
		if err != nil {
			if !errors.Is(err, ErrNoJSONForm) && !errors.Is(err, ErrUnknownCodec) {
				t.Fatalf("error %v wraps neither ErrNoJSONForm nor ErrUnknownCodec", err)
			}
			return
		}
		if !json.Valid(j) {
			t.Fatalf("%s: %x rendered as invalid JSON %s", codec, b, j)
		}
		back, err := from(codec, j)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%s: %x -> %s -> %x, %v", codec, b, j, back, err)
		}
	})
}
