package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var manifestGoldenPath = filepath.Join("..", "..", "testdata", "format", "manifest-v1.golden")

// fixtureHash returns a real SHA-256 so fixtures look like what a store holds.
func fixtureHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// manifestFixture uses every field of the format, including the optional
// ones and an empty range, so the golden file covers the whole body.
func manifestFixture() *Manifest {
	return &Manifest{
		JobID:        "word-count",
		CheckpointID: 42,
		Parent:       41,
		Kind:         KindIncremental,
		CreatedAt:    time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		KeyGroups:    128,
		Operators: []OperatorState{
			{
				ID: "count",
				States: []StateDescriptor{
					{Name: "counts", Kind: StateKindValue, Codec: "uint64"},
					{Name: "seen", Kind: StateKindMap, Codec: "json", TTLMillis: 3_600_000},
				},
				Ranges: []RangeState{
					{Start: 0, End: 63, Layers: []SegmentRef{
						{Hash: fixtureHash("count-0-base"), Size: 1 << 20, Kind: LayerBase, Entries: 50_000, Checkpoint: 40},
						{Hash: fixtureHash("count-0-d41"), Size: 4096, Kind: LayerDelta, Entries: 120, Checkpoint: 41},
						{Hash: fixtureHash("count-0-d42"), Size: 2048, Kind: LayerDelta, Entries: 64, Checkpoint: 42},
					}},
					{Start: 64, End: 127, Layers: []SegmentRef{
						{Hash: fixtureHash("count-1-base"), Size: 900_000, Kind: LayerBase, Entries: 48_123, Checkpoint: 42},
					}},
				},
			},
			{
				ID:     "sessions<&>",
				States: []StateDescriptor{{Name: "open", Kind: StateKindList, Codec: "bytes"}, {Name: "total", Kind: StateKindReducing, Codec: "json"}},
				Ranges: []RangeState{{Start: 0, End: 127}},
			},
		},
		Sources: []SourcePosition{
			{Source: "kafka-in", Position: json.RawMessage(`{"partitions":{"0":1042,"1":998}}`)},
			{Source: "stdin", Position: json.RawMessage(`17`)},
		},
		Txlog: &TxlogPosition{Stream: "main", LSN: 90210},
		Pending: []PendingTxn{
			{Output: "s3-out", TxnID: "upload-7f3a", Epoch: 42, Data: json.RawMessage(`{"key":"out/part-42.json","upload_id":"2~abc"}`)},
			{Output: "file-out", TxnID: "42", Epoch: 42},
		},
	}
}

// smallManifest is a minimal valid manifest for tests that decode many
// variants of it.
func smallManifest() *Manifest {
	return &Manifest{
		JobID: "j", CheckpointID: 3, Parent: 2, Kind: KindIncremental,
		CreatedAt: time.Unix(1_700_000_000, 5).UTC(),
		KeyGroups: 4,
		Operators: []OperatorState{{
			ID:     "op",
			States: []StateDescriptor{{Name: "s", Kind: StateKindValue, Codec: "bytes"}},
			Ranges: []RangeState{{Start: 0, End: 3, Layers: []SegmentRef{
				{Hash: fixtureHash("a"), Size: 10, Kind: LayerBase, Entries: 1, Checkpoint: 1},
				{Hash: fixtureHash("b"), Size: 20, Kind: LayerDelta, Entries: 2, Checkpoint: 3},
			}}},
		}},
		Sources: []SourcePosition{{Source: "in", Position: json.RawMessage(`5`)}},
		Txlog:   &TxlogPosition{Stream: "s", LSN: 9},
	}
}

// sealRawManifest builds a manifest file around body without validating
// anything, so tests can feed the decoder bodies the encoder would refuse.
func sealRawManifest(t *testing.T, m *Manifest) []byte {
	t.Helper()
	body, err := marshalManifestBody(m)
	if err != nil {
		t.Fatalf("marshal body: %v", err)
	}
	return sealManifest(body)
}

func mustEncodeManifest(t testing.TB, m *Manifest) []byte {
	t.Helper()
	b, err := EncodeManifest(m)
	if err != nil {
		t.Fatalf("EncodeManifest: %v", err)
	}
	return b
}

func TestEncodeManifest(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		m := manifestFixture()
		a := mustEncodeManifest(t, m)
		b := mustEncodeManifest(t, manifestFixture())
		if !bytes.Equal(a, b) {
			t.Fatal("two encodings of equal manifests differ")
		}
		if !reflect.DeepEqual(m, manifestFixture()) {
			t.Fatal("EncodeManifest modified its argument")
		}
		// Required lists are written as [] so readers see one shape.
		if !bytes.Contains(a, []byte(`"layers": []`)) {
			t.Errorf("empty layers not written as []:\n%s", a)
		}
		if !bytes.Contains(a, []byte(`"id": "sessions<&>"`)) {
			t.Errorf("HTML escaping is on:\n%s", a)
		}
	})
	t.Run("OKLocalTime", func(t *testing.T) {
		m := manifestFixture()
		utc := mustEncodeManifest(t, m)
		m.CreatedAt = m.CreatedAt.In(time.FixedZone("X", 5*3600+1800))
		if local := mustEncodeManifest(t, m); !bytes.Equal(utc, local) {
			t.Fatal("the same instant in another zone encodes differently")
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		m := manifestFixture()
		m.Operators[0].Ranges[0].Layers[1].Hash = "xyz"
		_, err := EncodeManifest(m)
		var fe *FieldError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &fe) || fe.Field != "operators[0].ranges[0].layers[1].hash" {
			t.Fatalf("got %v, want a FieldError on operators[0].ranges[0].layers[1].hash", err)
		}
	})
	t.Run("ErrNil", func(t *testing.T) {
		if _, err := EncodeManifest(nil); err == nil {
			t.Fatal("nil manifest encoded")
		}
	})
}

func TestDecodeManifest(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		want := manifestFixture()
		got, err := DecodeManifest(mustEncodeManifest(t, want), "MANIFEST")
		if err != nil {
			t.Fatal(err)
		}
		// The decoder returns empty lists as nil; the fixture's empty
		// range was written with nil Layers already.
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("OKUnknownFields", func(t *testing.T) {
		// A newer writer may add fields anywhere; this reader ignores them.
		body, err := marshalManifestBody(smallManifest())
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.Replace(body, []byte(`"job_id"`), []byte(`"future": {"a": [1, 2]}, "job_id"`), 1)
		body = bytes.Replace(body, []byte(`"hash"`), []byte(`"compression": "zstd", "hash"`), 1)
		data := sealManifest(body)
		data = bytes.Replace(data, []byte(`"version"`), []byte(`"writer": "arkstate 9.9", "version"`), 1)
		got, err := DecodeManifest(data, "MANIFEST")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, smallManifest()) {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("OKNormalizes", func(t *testing.T) {
		// Hand-written JSON: whitespace inside positions and a zoned time
		// decode to the canonical value, which re-encodes identically.
		m := smallManifest()
		body, err := marshalManifestBody(m)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.Replace(body, []byte(`"position": 5`), []byte(`"position": [ 5 ,  6 ]`), 1)
		body = bytes.Replace(body, []byte(`"2023-11-14T22:13:20.000000005Z"`), []byte(`"2023-11-15T00:13:20.000000005+02:00"`), 1)
		got, err := DecodeManifest(sealManifest(body), "MANIFEST")
		if err != nil {
			t.Fatal(err)
		}
		m.Sources[0].Position = json.RawMessage(`[5,6]`)
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("got %+v\nwant %+v", got, m)
		}
	})
	t.Run("ErrChecksum", func(t *testing.T) {
		data := mustEncodeManifest(t, manifestFixture())
		damaged := bytes.Replace(data, []byte(`"entries": 120`), []byte(`"entries": 121`), 1)
		if bytes.Equal(damaged, data) {
			t.Fatal("fixture changed: nothing replaced")
		}
		assertManifestErr(t, damaged, ErrChecksum)
	})
	t.Run("ErrBadMagic", func(t *testing.T) {
		data := mustEncodeManifest(t, smallManifest())
		for name, d := range map[string][]byte{
			"wrong format":   bytes.Replace(data, []byte(`"arkstate-manifest"`), []byte(`"arkstate-segment"`), 1),
			"no format":      bytes.Replace(data, []byte(`"format"`), []byte(`"formal"`), 1),
			"folded key":     bytes.Replace(data, []byte(`"format"`), []byte(`"Format"`), 1),
			"format number":  bytes.Replace(data, []byte(`"arkstate-manifest"`), []byte(`7`), 1),
			"array":          []byte(`[1, 2, 3]`),
			"binary":         {0x28, 0xb5, 0x2f, 0xfd, 0, 1},
			"string":         []byte(`"arkstate-manifest"`),
			"empty envelope": []byte(`{}`),
		} {
			t.Run(name, func(t *testing.T) { assertManifestErr(t, d, ErrBadMagic) })
		}
	})
	t.Run("ErrUnsupportedVersion", func(t *testing.T) {
		data := mustEncodeManifest(t, smallManifest())
		for _, v := range []string{"2", "0", "-1", "1.0", "1e0", "99999999999999999999999"} {
			t.Run(v, func(t *testing.T) {
				assertManifestErr(t, bytes.Replace(data, []byte(`"version": 1`), []byte(`"version": `+v), 1), ErrUnsupportedVersion)
			})
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		data := mustEncodeManifest(t, smallManifest())
		for name, d := range map[string][]byte{
			"version string":  bytes.Replace(data, []byte(`"version": 1`), []byte(`"version": "1"`), 1),
			"no version":      bytes.Replace(data, []byte(`"version"`), []byte(`"versio"`), 1),
			"checksum algo":   bytes.Replace(data, []byte(`"sha256:`), []byte(`"sha512:`), 1),
			"checksum case":   bytes.Replace(data, []byte(`"sha256:`), []byte(`"SHA256:`), 1),
			"no checksum":     bytes.Replace(data, []byte(`"checksum"`), []byte(`"checksun"`), 1),
			"no body":         bytes.Replace(data, []byte(`"body"`), []byte(`"bodx"`), 1),
			"syntax":          bytes.Replace(data, []byte(`"version": 1,`), []byte(`"version": 1,,`), 1),
			"body not object": sealManifest([]byte(`[1]`)),
			"body types":      sealManifest([]byte(`{"checkpoint_id": "seven"}`)),
			"body negative":   sealManifest([]byte(`{"checkpoint_id": -7}`)),
		} {
			t.Run(name, func(t *testing.T) { assertManifestErr(t, d, ErrMalformed) })
		}
	})
	t.Run("ErrMalformedField", func(t *testing.T) {
		m := smallManifest()
		m.KeyGroups = 3
		_, err := DecodeManifest(sealRawManifest(t, m), "chk/MANIFEST")
		var ce *CorruptError
		var fe *FieldError
		if !errors.As(err, &ce) || ce.File != "chk/MANIFEST" || !errors.As(err, &fe) || fe.Field != "operators[0].ranges[0].end" {
			t.Fatalf("got %v, want a CorruptError for chk/MANIFEST naming operators[0].ranges[0].end", err)
		}
		if !strings.Contains(err.Error(), "chk/MANIFEST") || !strings.Contains(err.Error(), "operators[0].ranges[0].end") {
			t.Fatalf("message %q names neither file nor field", err)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		data := make([]byte, MaxManifestSize+1)
		copy(data, mustEncodeManifest(t, smallManifest()))
		assertManifestErr(t, data, ErrTooLarge)
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		data := mustEncodeManifest(t, smallManifest())
		assertManifestErr(t, nil, ErrTruncated)
		assertManifestErr(t, data[:len(data)/2], ErrTruncated)
		for n := range len(data) - 2 { // the last two bytes are "}\n"
			if _, err := DecodeManifest(data[:n], "MANIFEST"); err == nil {
				t.Fatalf("prefix of %d bytes decoded", n)
			} else if ce := (*CorruptError)(nil); !errors.As(err, &ce) {
				t.Fatalf("prefix of %d bytes: %T %v, want *CorruptError", n, err, err)
			}
		}
	})
	t.Run("ErrBitFlip", func(t *testing.T) {
		data := mustEncodeManifest(t, smallManifest())
		want, err := DecodeManifest(data, "MANIFEST")
		if err != nil {
			t.Fatal(err)
		}
		damaged := make([]byte, len(data))
		for i := range len(data) * 8 {
			copy(damaged, data)
			damaged[i/8] ^= 1 << (i % 8)
			got, err := DecodeManifest(damaged, "MANIFEST")
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("flip of bit %d accepted with a different value: %+v", i, got)
			}
			if ce := (*CorruptError)(nil); err != nil && !errors.As(err, &ce) {
				t.Fatalf("flip of bit %d: %T %v, want *CorruptError", i, err, err)
			}
		}
	})
}

func assertManifestErr(t *testing.T, data []byte, want error) {
	t.Helper()
	m, err := DecodeManifest(data, "checkpoints/chk-1/MANIFEST")
	if err == nil {
		t.Fatalf("decoded %+v, want %v", m, want)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != "checkpoints/chk-1/MANIFEST" {
		t.Fatalf("got %T %v, want *CorruptError naming the file", err, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

// manifestRuleCase breaks one Validate rule of smallManifest.
type manifestRuleCase struct {
	name  string
	field string // the path the FieldError must name
	mut   func(m *Manifest)
	// encodable is false when JSON cannot carry the violation (invalid
	// UTF-8 becomes U+FFFD, out-of-range years fail to marshal), so only
	// Validate and EncodeManifest are checked.
	encodable bool
}

// manifestRuleCases is shared by TestManifest_Validate and the seeds of
// FuzzManifest, so the fuzzer starts next to every rule.
func manifestRuleCases() []manifestRuleCase {
	op0 := func(m *Manifest) *OperatorState { return &m.Operators[0] }
	layer := func(m *Manifest, i int) *SegmentRef { return &m.Operators[0].Ranges[0].Layers[i] }
	return []manifestRuleCase{
		{"EmptyJobID", "job_id", func(m *Manifest) { m.JobID = "" }, true},
		{"ControlJobID", "job_id", func(m *Manifest) { m.JobID = "a\nb" }, true},
		{"DelJobID", "job_id", func(m *Manifest) { m.JobID = "a\x7f" }, true},
		{"LongJobID", "job_id", func(m *Manifest) { m.JobID = strings.Repeat("j", MaxIDLen+1) }, true},
		{"InvalidUTF8JobID", "job_id", func(m *Manifest) { m.JobID = "\xff" }, false},
		{"ZeroID", "checkpoint_id", func(m *Manifest) { m.CheckpointID = 0 }, true},
		{"UnknownKind", "kind", func(m *Manifest) { m.Kind = "delta" }, true},
		{"FullWithParent", "parent", func(m *Manifest) { m.Kind = KindFull }, true},
		{"IncrementalWithoutParent", "parent", func(m *Manifest) { m.Parent = 0 }, true},
		{"ParentNotBelow", "parent", func(m *Manifest) { m.Parent = m.CheckpointID }, true},
		{"ZeroTime", "created_at", func(m *Manifest) { m.CreatedAt = time.Time{} }, true},
		{"Year10000", "created_at", func(m *Manifest) { m.CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"ZeroKeyGroups", "key_groups", func(m *Manifest) { m.KeyGroups = 0 }, true},
		{"EmptyOperatorID", "operators[0].id", func(m *Manifest) { op0(m).ID = "" }, true},
		{"DuplicateOperatorID", "operators[1].id", func(m *Manifest) {
			m.Operators = append(m.Operators, OperatorState{ID: "op"})
		}, true},
		{"EmptyStateName", "operators[0].states[0].name", func(m *Manifest) { op0(m).States[0].Name = "" }, true},
		{"DuplicateStateName", "operators[0].states[1].name", func(m *Manifest) {
			op0(m).States = append(op0(m).States, StateDescriptor{Name: "s", Kind: StateKindMap, Codec: "json"})
		}, true},
		{"UnknownStateKind", "operators[0].states[0].kind", func(m *Manifest) { op0(m).States[0].Kind = "set" }, true},
		{"EmptyCodec", "operators[0].states[0].codec", func(m *Manifest) { op0(m).States[0].Codec = "" }, true},
		{"NegativeTTL", "operators[0].states[0].ttl_millis", func(m *Manifest) { op0(m).States[0].TTLMillis = -1 }, true},
		{"StartAboveEnd", "operators[0].ranges[0].start", func(m *Manifest) { op0(m).Ranges[0].Start = 3; op0(m).Ranges[0].End = 2 }, true},
		{"EndOutsideKeyGroups", "operators[0].ranges[0].end", func(m *Manifest) { op0(m).Ranges[0].End = 4 }, true},
		{"Overlap", "operators[0].ranges[1].start", func(m *Manifest) {
			op0(m).Ranges[0].End = 1
			op0(m).Ranges = append(op0(m).Ranges, RangeState{Start: 1, End: 3})
		}, true},
		{"Unsorted", "operators[0].ranges[1].start", func(m *Manifest) {
			op0(m).Ranges[0].Start, op0(m).Ranges[0].End = 2, 3
			op0(m).Ranges = append(op0(m).Ranges, RangeState{Start: 0, End: 1})
		}, true},
		{"FirstLayerDelta", "operators[0].ranges[0].layers[0].kind", func(m *Manifest) { layer(m, 0).Kind = LayerDelta }, true},
		{"SecondLayerBase", "operators[0].ranges[0].layers[1].kind", func(m *Manifest) { layer(m, 1).Kind = LayerBase }, true},
		{"UnknownLayerKind", "operators[0].ranges[0].layers[1].kind", func(m *Manifest) { layer(m, 1).Kind = "" }, true},
		{"UppercaseHash", "operators[0].ranges[0].layers[1].hash", func(m *Manifest) { layer(m, 1).Hash = strings.ToUpper(layer(m, 1).Hash) }, true},
		{"ShortHash", "operators[0].ranges[0].layers[0].hash", func(m *Manifest) { layer(m, 0).Hash = layer(m, 0).Hash[:63] }, true},
		{"TraversalHash", "operators[0].ranges[0].layers[0].hash", func(m *Manifest) { layer(m, 0).Hash = "../../" + layer(m, 0).Hash[6:] }, true},
		{"NegativeSize", "operators[0].ranges[0].layers[1].size", func(m *Manifest) { layer(m, 1).Size = -1 }, true},
		{"LayerCheckpointZero", "operators[0].ranges[0].layers[0].checkpoint", func(m *Manifest) { layer(m, 0).Checkpoint = 0 }, true},
		{"LayerCheckpointFuture", "operators[0].ranges[0].layers[1].checkpoint", func(m *Manifest) { layer(m, 1).Checkpoint = 4 }, true},
		{"LayerCheckpointDecreasing", "operators[0].ranges[0].layers[1].checkpoint", func(m *Manifest) { layer(m, 0).Checkpoint = 3; layer(m, 1).Checkpoint = 2 }, true},
		{"EmptySource", "sources[0].source", func(m *Manifest) { m.Sources[0].Source = "" }, true},
		{"DuplicateSource", "sources[1].source", func(m *Manifest) {
			m.Sources = append(m.Sources, SourcePosition{Source: "in", Position: json.RawMessage(`1`)})
		}, true},
		{"MissingPosition", "sources[0].position", func(m *Manifest) { m.Sources[0].Position = nil }, false},
		{"InvalidPosition", "sources[0].position", func(m *Manifest) { m.Sources[0].Position = json.RawMessage(`{`) }, false},
		{"InvalidUTF8Position", "sources[0].position", func(m *Manifest) { m.Sources[0].Position = json.RawMessage("\"\xff\"") }, true},
		{"EmptyStream", "txlog.stream", func(m *Manifest) { m.Txlog.Stream = "" }, true},
		{"PathStream", "txlog.stream", func(m *Manifest) { m.Txlog.Stream = "a/b" }, true},
		{"DotDotStream", "txlog.stream", func(m *Manifest) { m.Txlog.Stream = ".." }, true},
		{"EmptyOutput", "pending[0].output", func(m *Manifest) { m.Pending = []PendingTxn{{TxnID: "t"}} }, true},
		{"EmptyTxnID", "pending[0].txn_id", func(m *Manifest) { m.Pending = []PendingTxn{{Output: "o"}} }, true},
		{"DuplicateTxn", "pending[1].txn_id", func(m *Manifest) {
			m.Pending = []PendingTxn{{Output: "o", TxnID: "t", Epoch: 1}, {Output: "o", TxnID: "t", Epoch: 2}}
		}, true},
		{"InvalidData", "pending[0].data", func(m *Manifest) {
			m.Pending = []PendingTxn{{Output: "o", TxnID: "t", Data: json.RawMessage(`nul`)}}
		}, false},
	}
}

func TestManifest_Validate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, m := range []*Manifest{manifestFixture(), smallManifest()} {
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		full := smallManifest()
		full.Kind, full.Parent = KindFull, 0
		full.Operators = nil
		full.Sources, full.Txlog = nil, nil
		if err := full.Validate(); err != nil {
			t.Fatalf("minimal full checkpoint: %v", err)
		}
	})

	for _, tc := range manifestRuleCases() {
		t.Run("Err"+tc.name, func(t *testing.T) {
			m := smallManifest()
			tc.mut(m)
			err := m.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate = %v, want a *FieldError matching ErrMalformed", err)
			}
			if fe.Field != tc.field {
				t.Fatalf("field %q (%v), want %q", fe.Field, err, tc.field)
			}
			if _, err := EncodeManifest(m); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("EncodeManifest = %v, want the same field error", err)
			}
			if !tc.encodable {
				return
			}
			_, err = DecodeManifest(sealRawManifest(t, m), "MANIFEST")
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("DecodeManifest = %v, want a CorruptError naming %q", err, tc.field)
			}
		})
	}
}

func TestManifest_Golden(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		m := manifestFixture()
		data := mustEncodeManifest(t, m)
		checkGoldenFile(t, manifestGoldenPath, data)
		got, err := DecodeManifest(data, manifestGoldenPath)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("golden decodes to %+v, want %+v", got, m)
		}
	})
}

// genManifestID draws identifiers: mostly plain ones, sometimes arbitrary
// Unicode that passes the identifier rule.
func genManifestID() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.StringMatching(`[a-z][a-z0-9_.-]{0,8}`),
		rapid.StringN(1, 12, -1).Filter(func(s string) bool { return checkManifestID("x", s) == nil }),
	)
}

func genManifest(t *rapid.T) *Manifest {
	m := &Manifest{
		JobID:        genManifestID().Draw(t, "job"),
		CheckpointID: rapid.Uint64Range(1, 1<<62).Draw(t, "id"),
		Kind:         KindFull,
		// Years 1 through 9999, any nanosecond, but not the zero time.
		CreatedAt: time.Unix(rapid.Int64Range(-62135596800+1, 253402300799).Draw(t, "sec"),
			rapid.Int64Range(0, 999_999_999).Draw(t, "nsec")).UTC(),
		KeyGroups: rapid.Uint32Range(1, 1<<31).Draw(t, "keygroups"),
	}
	if m.CheckpointID > 1 && rapid.Bool().Draw(t, "incremental") {
		m.Kind = KindIncremental
		m.Parent = rapid.Uint64Range(1, m.CheckpointID-1).Draw(t, "parent")
	}
	opIDs := rapid.SliceOfNDistinct(genManifestID(), 0, 3, rapid.ID[string]).Draw(t, "operators")
	for _, id := range opIDs {
		op := OperatorState{ID: id}
		for _, name := range rapid.SliceOfNDistinct(genManifestID(), 0, 3, rapid.ID[string]).Draw(t, "states") {
			op.States = append(op.States, StateDescriptor{
				Name:      name,
				Kind:      rapid.SampledFrom([]string{StateKindValue, StateKindMap, StateKindList, StateKindReducing}).Draw(t, "kind"),
				Codec:     genManifestID().Draw(t, "codec"),
				TTLMillis: rapid.Int64Min(0).Draw(t, "ttl"),
			})
		}
		next := uint64(0)
		for range rapid.IntRange(0, 4).Draw(t, "ranges") {
			if next >= uint64(m.KeyGroups) {
				break
			}
			start := rapid.Uint64Range(next, uint64(m.KeyGroups)-1).Draw(t, "start")
			end := rapid.Uint64Range(start, uint64(m.KeyGroups)-1).Draw(t, "end")
			r := RangeState{Start: uint32(start), End: uint32(end)}
			prev := uint64(1)
			for j := range rapid.IntRange(0, 3).Draw(t, "layers") {
				kind := LayerDelta
				if j == 0 {
					kind = LayerBase
				}
				prev = rapid.Uint64Range(prev, m.CheckpointID).Draw(t, "checkpoint")
				r.Layers = append(r.Layers, SegmentRef{
					Hash:       hex.EncodeToString(rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash")),
					Size:       rapid.Int64Min(0).Draw(t, "size"),
					Kind:       kind,
					Entries:    rapid.Uint64().Draw(t, "entries"),
					Checkpoint: prev,
				})
			}
			op.Ranges = append(op.Ranges, r)
			next = end + 1
		}
		m.Operators = append(m.Operators, op)
	}
	positions := []string{`null`, `0`, `"x\u00e9"`, `{"a":[1,2,{"b":null}]}`, `-1.5e10`, `true`}
	for _, s := range rapid.SliceOfNDistinct(genManifestID(), 0, 3, rapid.ID[string]).Draw(t, "sources") {
		m.Sources = append(m.Sources, SourcePosition{Source: s, Position: json.RawMessage(rapid.SampledFrom(positions).Draw(t, "position"))})
	}
	if rapid.Bool().Draw(t, "txlog") {
		m.Txlog = &TxlogPosition{
			Stream: genManifestID().Filter(func(s string) bool { return checkManifestStream(s) == nil }).Draw(t, "stream"),
			LSN:    rapid.Uint64().Draw(t, "lsn"),
		}
	}
	for i, id := range rapid.SliceOfNDistinct(genManifestID(), 0, 3, rapid.ID[string]).Draw(t, "txns") {
		p := PendingTxn{Output: fmt.Sprintf("out-%d", i%2), TxnID: id, Epoch: rapid.Uint64().Draw(t, "epoch")}
		if rapid.Bool().Draw(t, "data") {
			p.Data = json.RawMessage(rapid.SampledFrom(positions).Draw(t, "data"))
		}
		m.Pending = append(m.Pending, p)
	}
	return m
}

func TestManifest_RoundTrip(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			m := genManifest(t)
			data, err := EncodeManifest(m)
			if err != nil {
				t.Fatalf("EncodeManifest: %v", err)
			}
			got, err := DecodeManifest(data, "MANIFEST")
			if err != nil {
				t.Fatalf("DecodeManifest: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, m)
			}
			again, err := EncodeManifest(got)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("re-encoding differs (err %v)", err)
			}
		})
	})
}

func TestSegmentPath(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		h := fixtureHash("x")
		if got, want := SegmentPath(h), "segments/"+h[:2]+"/"+h+".seg"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("ErrInvalidHash", func(t *testing.T) {
		for _, h := range []string{"", "a", "../" + fixtureHash("x")[3:], strings.ToUpper(fixtureHash("x"))} {
			if got := SegmentPath(h); got != "" {
				t.Errorf("SegmentPath(%q) = %q, want \"\"", h, got)
			}
		}
	})
}

func TestManifestPath(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for id, want := range map[uint64]string{
			42:        "checkpoints/chk-00000000000000000042/MANIFEST",
			1<<64 - 1: "checkpoints/chk-18446744073709551615/MANIFEST",
		} {
			if got := ManifestPath(id); got != want {
				t.Errorf("ManifestPath(%d) = %q, want %q", id, got, want)
			}
		}
	})
}

func TestParseCheckpointDir(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, id := range []uint64{1, 42, 1<<64 - 1} {
			got, ok := ParseCheckpointDir(CheckpointDir(id))
			if !ok || got != id {
				t.Errorf("ParseCheckpointDir(%q) = %d, %v", CheckpointDir(id), got, ok)
			}
		}
		if got, ok := ParseCheckpointDir("chk-00000000000000000042"); !ok || got != 42 {
			t.Errorf("got %d, %v", got, ok)
		}
	})
	t.Run("ErrNotCheckpointDir", func(t *testing.T) {
		for _, name := range []string{
			"", "chk-", "chk-42", "chk-00000000000000000000", "chk-0000000000000000004x",
			"chk-+0000000000000000042", "chk-99999999999999999999", "CHK-00000000000000000042",
			"chk-000000000000000000042", "chk-00000000000000000042.tmp", "x-00000000000000000042",
		} {
			if id, ok := ParseCheckpointDir(name); ok {
				t.Errorf("ParseCheckpointDir(%q) = %d, true", name, id)
			}
		}
	})
}
