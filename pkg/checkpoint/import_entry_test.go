package checkpoint

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
)

// entryOf on its own: a record and its state descriptor make one entry, or
// an error about one field.
func TestEntryOf(t *testing.T) {
	count := format.StateDescriptor{Name: "count", Kind: format.StateKindValue, Codec: "uint64"}
	ttl := format.StateDescriptor{Name: "seen", Kind: format.StateKindValue, Codec: "uint64", TTLMillis: 1000}
	m := format.StateDescriptor{Name: "m", Kind: format.StateKindMap, Codec: "string/bytes"}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	epoch := time.Unix(0, 0).UTC()
	t.Run("OK", func(t *testing.T) {
		e, field, err := entryOf(&DumpRecord{Key: "w", Value: json.RawMessage("7")}, count, 128)
		if err != nil || field != "" {
			t.Fatalf("entryOf: %s: %v", field, err)
		}
		if e.State != "count" || string(e.Key) != "w" || e.KeyGroup != state.KeyGroupFor("w", 128) || len(e.Value) == 0 || e.Tombstone || e.ExpiresAt != 0 {
			t.Fatalf("entry %+v", e)
		}
		e, _, err = entryOf(&DumpRecord{Key: "w", MapKey: json.RawMessage(`"k"`), ValueRaw: []byte("x")}, m, 128)
		if err != nil || string(e.Key) != string(state.JoinMapKey("w", []byte("k"))) || string(e.Value) != "x" {
			t.Fatalf("map entry %+v, %v", e, err)
		}
		e, _, err = entryOf(&DumpRecord{Key: "w", Deleted: true}, count, 128)
		if err != nil || !e.Tombstone || e.Value != nil {
			t.Fatalf("tombstone %+v, %v", e, err)
		}
		e, _, err = entryOf(&DumpRecord{Key: "w", Value: json.RawMessage("1"), ExpiresAt: &at}, ttl, 128)
		if err != nil || e.ExpiresAt != at.UnixNano() {
			t.Fatalf("expiring entry %+v, %v", e, err)
		}
	})
	for _, tc := range []struct {
		name  string
		rec   DumpRecord
		desc  format.StateDescriptor
		field string
		want  string
	}{
		{"ErrMapKeyMissing", DumpRecord{Key: "w", ValueRaw: []byte("x")}, m, "map_key", "is a map state"},
		{"ErrMapKeyNotMap", DumpRecord{Key: "w", MapKey: json.RawMessage(`"k"`), Value: json.RawMessage("1")}, count, "map_key", "not a map state"},
		{"ErrKeyTooLong", DumpRecord{Key: strings.Repeat("k", format.MaxKeyLen+1), Value: json.RawMessage("1")}, count, "key", "limit"},
		{"ErrValue", DumpRecord{Key: "w", Value: json.RawMessage(`"seven"`)}, count, "value", ""},
		{"ErrExpiresNoTTL", DumpRecord{Key: "w", Value: json.RawMessage("1"), ExpiresAt: &at}, count, "expires_at", "has no TTL"},
		{"ErrExpiresEpoch", DumpRecord{Key: "w", Value: json.RawMessage("1"), ExpiresAt: &epoch}, ttl, "expires_at", "never expires"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, field, err := entryOf(&tc.rec, tc.desc, 128)
			if err == nil || field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("entryOf = %s: %v; want an error about %s saying %q", field, err, tc.field, tc.want)
			}
		})
	}
}
