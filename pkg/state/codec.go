package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
)

// Codec turns values of type T into bytes and back. Its Name is recorded in
// checkpoint manifests, so that tools (state dump) can decode values and a
// restore can refuse a state registered with a different codec.
type Codec[T any] interface {
	// Name identifies the encoding, e.g. "uint64" or "json".
	Name() string
	// Append appends the encoding of v to dst and returns the extended slice.
	Append(dst []byte, v T) ([]byte, error)
	// Decode decodes b. For []byte the result may alias b.
	Decode(b []byte) (T, error)
}

// ErrCodec is wrapped by decode errors of the built-in codecs.
var ErrCodec = errors.New("state: cannot decode value")

// CodecFor returns the default codec for T: a fixed-width or raw binary codec
// for Go's basic types, and JSON for everything else (structs, slices, maps).
func CodecFor[T any]() Codec[T] {
	var zero T
	var c any
	switch any(zero).(type) {
	case uint64:
		c = Uint64Codec{}
	case int64:
		c = Int64Codec{}
	case int:
		c = IntCodec{}
	case uint32:
		c = Uint32Codec{}
	case int32:
		c = Int32Codec{}
	case float64:
		c = Float64Codec{}
	case bool:
		c = BoolCodec{}
	case string:
		c = StringCodec{}
	case []byte:
		c = BytesCodec{}
	default:
		return JSONCodec[T]{}
	}
	return c.(Codec[T])
}

// CodecNames lists the names of the built-in codecs, for validating manifests.
var CodecNames = []string{"uint64", "int64", "int", "uint32", "int32", "float64", "bool", "string", "bytes", "json"}

func wrongLen(name string, want, got int) error {
	return fmt.Errorf("%w: %s wants %d bytes, got %d", ErrCodec, name, want, got)
}

// Uint64Codec encodes a uint64 as 8 little-endian bytes.
type Uint64Codec struct{}

// Name implements Codec.
func (Uint64Codec) Name() string { return "uint64" }

// Append implements Codec.
func (Uint64Codec) Append(dst []byte, v uint64) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(dst, v), nil
}

// Decode implements Codec.
func (Uint64Codec) Decode(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, wrongLen("uint64", 8, len(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

// Int64Codec encodes an int64 as 8 little-endian bytes (two's complement).
type Int64Codec struct{}

// Name implements Codec.
func (Int64Codec) Name() string { return "int64" }

// Append implements Codec.
func (Int64Codec) Append(dst []byte, v int64) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(dst, uint64(v)), nil
}

// Decode implements Codec.
func (Int64Codec) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, wrongLen("int64", 8, len(b))
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// IntCodec encodes an int as 8 little-endian bytes, whatever the platform.
type IntCodec struct{}

// Name implements Codec.
func (IntCodec) Name() string { return "int" }

// Append implements Codec.
func (IntCodec) Append(dst []byte, v int) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(dst, uint64(int64(v))), nil
}

// Decode implements Codec.
func (IntCodec) Decode(b []byte) (int, error) {
	if len(b) != 8 {
		return 0, wrongLen("int", 8, len(b))
	}
	v := int64(binary.LittleEndian.Uint64(b))
	if int64(int(v)) != v {
		return 0, fmt.Errorf("%w: int %d overflows this platform's int", ErrCodec, v)
	}
	return int(v), nil
}

// Uint32Codec encodes a uint32 as 4 little-endian bytes.
type Uint32Codec struct{}

// Name implements Codec.
func (Uint32Codec) Name() string { return "uint32" }

// Append implements Codec.
func (Uint32Codec) Append(dst []byte, v uint32) ([]byte, error) {
	return binary.LittleEndian.AppendUint32(dst, v), nil
}

// Decode implements Codec.
func (Uint32Codec) Decode(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, wrongLen("uint32", 4, len(b))
	}
	return binary.LittleEndian.Uint32(b), nil
}

// Int32Codec encodes an int32 as 4 little-endian bytes.
type Int32Codec struct{}

// Name implements Codec.
func (Int32Codec) Name() string { return "int32" }

// Append implements Codec.
func (Int32Codec) Append(dst []byte, v int32) ([]byte, error) {
	return binary.LittleEndian.AppendUint32(dst, uint32(v)), nil
}

// Decode implements Codec.
func (Int32Codec) Decode(b []byte) (int32, error) {
	if len(b) != 4 {
		return 0, wrongLen("int32", 4, len(b))
	}
	return int32(binary.LittleEndian.Uint32(b)), nil
}

// Float64Codec encodes a float64 as its IEEE 754 bits, little-endian.
type Float64Codec struct{}

// Name implements Codec.
func (Float64Codec) Name() string { return "float64" }

// Append implements Codec.
func (Float64Codec) Append(dst []byte, v float64) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v)), nil
}

// Decode implements Codec.
func (Float64Codec) Decode(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, wrongLen("float64", 8, len(b))
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
}

// BoolCodec encodes a bool as one byte, 0 or 1.
type BoolCodec struct{}

// Name implements Codec.
func (BoolCodec) Name() string { return "bool" }

// Append implements Codec.
func (BoolCodec) Append(dst []byte, v bool) ([]byte, error) {
	if v {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

// Decode implements Codec.
func (BoolCodec) Decode(b []byte) (bool, error) {
	if len(b) != 1 || b[0] > 1 {
		return false, fmt.Errorf("%w: bool wants one byte 0 or 1", ErrCodec)
	}
	return b[0] == 1, nil
}

// StringCodec stores a string's bytes as they are.
type StringCodec struct{}

// Name implements Codec.
func (StringCodec) Name() string { return "string" }

// Append implements Codec.
func (StringCodec) Append(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil }

// Decode implements Codec.
func (StringCodec) Decode(b []byte) (string, error) { return string(b), nil }

// BytesCodec stores a byte slice as it is. Decode returns a slice that aliases
// the state's storage: it is valid until the next write of the same key and
// must not be modified.
type BytesCodec struct{}

// Name implements Codec.
func (BytesCodec) Name() string { return "bytes" }

// Append implements Codec.
func (BytesCodec) Append(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil }

// Decode implements Codec.
func (BytesCodec) Decode(b []byte) ([]byte, error) { return b, nil }

// JSONCodec encodes values with encoding/json: the codec for structs and
// anything without a binary codec. Field names are the schema: renaming a
// field loses its restored value, adding one is compatible.
type JSONCodec[T any] struct{}

// Name implements Codec.
func (JSONCodec[T]) Name() string { return "json" }

// Append implements Codec.
func (JSONCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("state: encode %s as JSON: %w", reflect.TypeFor[T](), err)
	}
	return append(dst, b...), nil
}

// Decode implements Codec.
func (JSONCodec[T]) Decode(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: JSON into %s: %v", ErrCodec, reflect.TypeFor[T](), err)
	}
	return v, nil
}
