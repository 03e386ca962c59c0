package state

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSON forms of stored values, for `arkstate state dump` and `state import`.
//
// A checkpoint manifest records each state's kind and codec name; these
// functions render the stored bytes of a built-in codec as JSON and turn that
// JSON back into exactly the same bytes:
//
//	uint64 int64 int uint32 int32   a JSON integer (decimal, no fraction or exponent)
//	float64                         a JSON number in its shortest exact form; the
//	                                non-finite values as the strings "+Inf", "-Inf",
//	                                "NaN" and, for any other NaN payload, "NaN(0x<16 hex>)"
//	bool                            true or false
//	string                          a JSON string (only when the bytes are valid UTF-8)
//	bytes                           a JSON string of standard, padded base64
//	json                            the JSON value itself (only when the stored bytes
//	                                are compact, valid UTF-8 JSON, as Go's encoder writes it)
//
// A list state's value is a JSON array of its elements in the element codec's
// form; a map state's codec is "<key codec>/<value codec>" and its entries'
// map keys and values are rendered with those.
//
// Stored bytes with no exact JSON form (an unknown codec, a string that is
// not UTF-8, a fixed-width value of the wrong length) make the *ToJSON
// functions fail with ErrNoJSONForm or ErrUnknownCodec; callers then carry
// the bytes as base64 instead, so nothing is ever lost or altered.

// ErrUnknownCodec means a codec name is not one of CodecNames, so its values
// can only be carried as raw bytes.
var ErrUnknownCodec = errors.New("state: unknown codec")

// ErrNoJSONForm means stored bytes have no exact JSON form in their codec
// (they are not what the codec writes); callers carry them as raw bytes.
var ErrNoJSONForm = errors.New("state: value has no exact JSON form in its codec")

// ValueToJSON renders b, stored by the built-in codec named codec, as JSON.
// ValueFromJSON(codec, result) returns b exactly.
func ValueToJSON(codec string, b []byte) (json.RawMessage, error) {
	switch codec {
	case "uint64":
		if len(b) != 8 {
			return nil, noForm(codec, "%d bytes, want 8", len(b))
		}
		return strconv.AppendUint(nil, binary.LittleEndian.Uint64(b), 10), nil
	case "int64", "int":
		if len(b) != 8 {
			return nil, noForm(codec, "%d bytes, want 8", len(b))
		}
		return strconv.AppendInt(nil, int64(binary.LittleEndian.Uint64(b)), 10), nil
	case "uint32":
		if len(b) != 4 {
			return nil, noForm(codec, "%d bytes, want 4", len(b))
		}
		return strconv.AppendUint(nil, uint64(binary.LittleEndian.Uint32(b)), 10), nil
	case "int32":
		if len(b) != 4 {
			return nil, noForm(codec, "%d bytes, want 4", len(b))
		}
		return strconv.AppendInt(nil, int64(int32(binary.LittleEndian.Uint32(b))), 10), nil
	case "float64":
		if len(b) != 8 {
			return nil, noForm(codec, "%d bytes, want 8", len(b))
		}
		return float64ToJSON(binary.LittleEndian.Uint64(b)), nil
	case "bool":
		switch {
		case len(b) != 1:
			return nil, noForm(codec, "%d bytes, want 1", len(b))
		case b[0] == 0:
			return json.RawMessage("false"), nil
		case b[0] == 1:
			return json.RawMessage("true"), nil
		}
		return nil, noForm(codec, "byte %#02x, want 0 or 1", b[0])
	case "string":
		if !utf8.Valid(b) {
			return nil, noForm(codec, "not valid UTF-8")
		}
		return AppendJSONString(nil, string(b)), nil
	case "bytes":
		out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, b)
		return append(out, '"'), nil
	case "json":
		if !isCompactJSON(b) {
			return nil, noForm(codec, "not compact, valid UTF-8 JSON")
		}
		return json.RawMessage(bytes.Clone(b)), nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCodec, codec)
}

// ValueFromJSON encodes the JSON value v with the built-in codec named codec,
// as the codec's Append would. It accepts exactly the forms ValueToJSON
// writes (plus insignificant whitespace, and for json any valid JSON, which
// is stored compacted), and refuses anything it would have to round or
// reinterpret: 1.5 or 1e3 for an integer, 2^64 for a uint64, a number for a
// string. Errors wrap ErrCodec, or ErrUnknownCodec.
func ValueFromJSON(codec string, v json.RawMessage) ([]byte, error) {
	v = bytes.TrimSpace(v)
	switch codec {
	case "uint64", "int64", "int", "uint32", "int32":
		return intFromJSON(codec, v)
	case "float64":
		f, err := float64FromJSON(v)
		if err != nil {
			return nil, err
		}
		return binary.LittleEndian.AppendUint64(nil, f), nil
	case "bool":
		switch string(v) {
		case "true":
			return []byte{1}, nil
		case "false":
			return []byte{0}, nil
		}
		return nil, badJSON(codec, v, "want true or false")
	case "string":
		s, err := stringFromJSON(codec, v)
		if err != nil {
			return nil, err
		}
		return []byte(s), nil
	case "bytes":
		s, err := stringFromJSON(codec, v)
		if err != nil {
			return nil, err
		}
		// Strict: a non-canonical encoding would not come back unchanged.
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return nil, badJSON(codec, v, "not standard padded base64: %v", err)
		}
		return b, nil
	case "json":
		if !utf8.Valid(v) || !json.Valid(v) {
			return nil, badJSON(codec, v, "not valid UTF-8 JSON")
		}
		var buf bytes.Buffer
		buf.Grow(len(v))
		if err := json.Compact(&buf, v); err != nil {
			return nil, badJSON(codec, v, "%v", err)
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCodec, codec)
}

// ListToJSON renders a list state's stored value (each element a uvarint
// length and its encoding, see List) as a JSON array of the elements'
// ValueToJSON forms.
func ListToJSON(elemCodec string, b []byte) (json.RawMessage, error) {
	out := []byte{'['}
	for i := 0; len(b) > 0; i++ {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, noForm("list of "+elemCodec, "element %d: malformed length", i)
		}
		if w != uvarintLen(n) {
			// Append writes the shortest form; another one would not survive.
			return nil, noForm("list of "+elemCodec, "element %d: length not in shortest form", i)
		}
		j, err := ValueToJSON(elemCodec, b[w:w+int(n)])
		if err != nil {
			return nil, fmt.Errorf("list element %d: %w", i, err)
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, j...)
		b = b[w+int(n):]
	}
	return append(out, ']'), nil
}

// ListFromJSON is the inverse of ListToJSON: v must be a JSON array.
func ListFromJSON(elemCodec string, v json.RawMessage) ([]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '[' {
		return nil, badJSON("list of "+elemCodec, v, "want a JSON array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		return nil, badJSON("list of "+elemCodec, v, "%v", err)
	}
	var out []byte
	for i, e := range elems {
		b, err := ValueFromJSON(elemCodec, e)
		if err != nil {
			return nil, fmt.Errorf("list element %d: %w", i, err)
		}
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// SplitMapCodec splits a map state's codec name "<key codec>/<value codec>"
// at its first slash.
func SplitMapCodec(codec string) (keyCodec, valueCodec string, ok bool) {
	return strings.Cut(codec, "/")
}

// StateValueToJSON renders a stored entry value of a state of the given kind
// and codec, as a checkpoint manifest records them: a list state's value as
// an array, a map state's with the value half of its codec, any other kind's
// with its codec.
func StateValueToJSON(kind Kind, codec string, b []byte) (json.RawMessage, error) {
	c, err := valueCodecOf(kind, codec)
	if err != nil {
		return nil, err
	}
	if kind == KindList {
		return ListToJSON(c, b)
	}
	return ValueToJSON(c, b)
}

// StateValueFromJSON is the inverse of StateValueToJSON.
func StateValueFromJSON(kind Kind, codec string, v json.RawMessage) ([]byte, error) {
	c, err := valueCodecOf(kind, codec)
	if err != nil {
		return nil, err
	}
	if kind == KindList {
		return ListFromJSON(c, v)
	}
	return ValueFromJSON(c, v)
}

func valueCodecOf(kind Kind, codec string) (string, error) {
	if kind != KindMap {
		return codec, nil
	}
	_, vc, ok := SplitMapCodec(codec)
	if !ok {
		return "", fmt.Errorf("%w: map state codec %q is not <key codec>/<value codec>", ErrUnknownCodec, codec)
	}
	return vc, nil
}

// SplitMapKey splits a map-state entry's stored key into the user key (which
// determines the key group) and the encoded map key; ok is false when the
// stored key is malformed.
func SplitMapKey(stored []byte) (userKey, mapKey []byte, ok bool) {
	return splitCompositeKey(stored)
}

// JoinMapKey builds the stored key of a map-state entry; it is the inverse
// of SplitMapKey.
func JoinMapKey(userKey string, mapKey []byte) []byte {
	return []byte(compositeKey(userKey, string(mapKey)))
}

// AppendJSONString appends s, which should be valid UTF-8 (invalid bytes
// become U+FFFD), as a JSON string. Unlike encoding/json it leaves <, > and &
// alone, so keys read as they are.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func noForm(codec, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrNoJSONForm, codec, fmt.Sprintf(format, args...))
}

// badJSON reports input that a codec refuses, quoting a bounded prefix of it.
func badJSON(codec string, v json.RawMessage, format string, args ...any) error {
	const limit = 40
	q := string(v)
	if len(q) > limit {
		q = q[:limit] + "..."
	}
	return fmt.Errorf("%w: %s %s: %s", ErrCodec, codec, strconv.Quote(q), fmt.Sprintf(format, args...))
}

// isCompactJSON reports whether b is valid UTF-8 JSON that compacting leaves
// unchanged, so it can be embedded in a line and stored back byte for byte.
func isCompactJSON(b []byte) bool {
	if !utf8.Valid(b) || !json.Valid(b) {
		return false
	}
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return false
	}
	return bytes.Equal(buf.Bytes(), b)
}

func stringFromJSON(codec string, v json.RawMessage) (string, error) {
	if len(v) == 0 || v[0] != '"' {
		return "", badJSON(codec, v, "want a JSON string")
	}
	if !utf8.Valid(v) {
		return "", badJSON(codec, v, "not valid UTF-8")
	}
	if body := v[1:]; len(body) > 0 && body[len(body)-1] == '"' {
		// Without escapes or control characters the body is the string.
		body = body[:len(body)-1]
		plain := bytes.IndexByte(body, '"') < 0
		for i := 0; plain && i < len(body); i++ {
			plain = body[i] >= 0x20 && body[i] != '\\'
		}
		if plain {
			return string(body), nil
		}
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", badJSON(codec, v, "%v", err)
	}
	return s, nil
}

// intFromJSON parses a JSON integer literal for one of the fixed-width
// integer codecs. It reads the literal's text, never a float64, so every
// uint64 survives.
func intFromJSON(codec string, v json.RawMessage) ([]byte, error) {
	if !isJSONInteger(v) {
		return nil, badJSON(codec, v, "want a JSON integer")
	}
	s := string(v)
	switch codec {
	case "uint64", "uint32":
		bits := 64
		if codec == "uint32" {
			bits = 32
		}
		n, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			return nil, badJSON(codec, v, "out of range")
		}
		if bits == 32 {
			return binary.LittleEndian.AppendUint32(nil, uint32(n)), nil
		}
		return binary.LittleEndian.AppendUint64(nil, n), nil
	default:
		bits := 64
		if codec == "int32" {
			bits = 32
		}
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return nil, badJSON(codec, v, "out of range")
		}
		if bits == 32 {
			return binary.LittleEndian.AppendUint32(nil, uint32(int32(n))), nil
		}
		return binary.LittleEndian.AppendUint64(nil, uint64(n)), nil
	}
}

// isJSONInteger reports whether v is a JSON number without fraction or
// exponent: -?(0|[1-9][0-9]*). "-0" is accepted and reads as 0.
func isJSONInteger(v []byte) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	if len(v) == 0 || (v[0] == '0' && len(v) > 1) {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// canonicalNaN is the bit pattern of math.NaN(), written as plain "NaN".
var canonicalNaN = math.Float64bits(math.NaN())

func float64ToJSON(bits uint64) json.RawMessage {
	f := math.Float64frombits(bits)
	switch {
	case math.IsInf(f, 1):
		return json.RawMessage(`"+Inf"`)
	case math.IsInf(f, -1):
		return json.RawMessage(`"-Inf"`)
	case math.IsNaN(f) && bits == canonicalNaN:
		return json.RawMessage(`"NaN"`)
	case math.IsNaN(f):
		return json.RawMessage(fmt.Sprintf(`"NaN(0x%016x)"`, bits))
	}
	// encoding/json writes the shortest decimal that parses back to the
	// same bits, in plain or exponent form like JavaScript; -0 stays -0.
	out, _ := json.Marshal(f) // never fails for a finite float
	return out
}

func float64FromJSON(v json.RawMessage) (uint64, error) {
	if len(v) > 0 && v[0] == '"' {
		s, err := stringFromJSON("float64", v)
		if err != nil {
			return 0, err
		}
		switch s {
		case "+Inf":
			return math.Float64bits(math.Inf(1)), nil
		case "-Inf":
			return math.Float64bits(math.Inf(-1)), nil
		case "NaN":
			return canonicalNaN, nil
		}
		if hexBits, ok := strings.CutPrefix(s, "NaN(0x"); ok && len(hexBits) == 17 && hexBits[16] == ')' {
			bits, err := strconv.ParseUint(hexBits[:16], 16, 64)
			if err == nil && math.IsNaN(math.Float64frombits(bits)) {
				return bits, nil
			}
		}
		return 0, badJSON("float64", v, `want a number, "+Inf", "-Inf", "NaN" or "NaN(0x<16 hex digits>)"`)
	}
	if !isJSONNumber(v) {
		return 0, badJSON("float64", v, "want a JSON number")
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		// Only range errors remain: the literal overflows float64.
		return 0, badJSON("float64", v, "out of range")
	}
	return math.Float64bits(f), nil
}

// isJSONNumber reports whether v is exactly one JSON number literal.
func isJSONNumber(v []byte) bool {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal(v, &n) == nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
