package format

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzManifest feeds DecodeManifest arbitrary bytes. With sealed set, the
// input is taken as a body and wrapped in an envelope with a correct
// checksum, so the fuzzer reaches body decoding and Validate instead of
// stopping at the checksum.
//
// Properties: no panic; every failure is a *CorruptError; whatever decodes
// encodes, decodes again to the same value, and re-encodes to the same bytes.
func FuzzManifest(f *testing.F) {
	golden, err := os.ReadFile(manifestGoldenPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden, false)
	small := mustEncodeManifest(f, smallManifest())
	f.Add(small, false)
	for _, m := range []*Manifest{manifestFixture(), smallManifest()} {
		body, err := marshalManifestBody(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, true)
	}
	for _, tc := range manifestRuleCases() {
		if !tc.encodable {
			continue
		}
		m := smallManifest()
		tc.mut(m)
		body, err := marshalManifestBody(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, true)
	}
	f.Add(bytes.Replace(small, []byte(`"version": 1`), []byte(`"version": 2`), 1), false)
	f.Add([]byte(`{"job_id":"j","checkpoint_id":1,"kind":"full","created_at":"2024-02-29T23:59:59.999+14:00","key_groups":1,"operators":[]}`), true)
	f.Add([]byte(`{"job_id":"j","checkpoint_id":2,"parent":1,"kind":"incremental","created_at":"2024-01-01T00:00:00Z","key_groups":8,`+
		`"operators":[{"id":"o","states":[],"ranges":[{"start":0,"end":7,"layers":[]}]}],"sources":[{"source":"s","position":{ "a" : [1 , 2] }}],`+
		`"pending":[{"output":"o","txn_id":"t","epoch":1,"data":null}],"extra":1}`), true)
	f.Add([]byte(`{}`), true)
	f.Add([]byte(``), false)

	f.Fuzz(func(t *testing.T, data []byte, sealed bool) {
		if sealed {
			data = sealManifest(data)
		}
		m, err := DecodeManifest(data, "MANIFEST")
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("%T %v, want *CorruptError", err, err)
			}
			return
		}
		enc, err := EncodeManifest(m)
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		m2, err := DecodeManifest(enc, "MANIFEST")
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("value changed through encode/decode:\n%+v\n%+v", m, m2)
		}
		enc2, err := EncodeManifest(m2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable (err %v)", err)
		}
	})
}
