package format

import (
	"strings"
	"testing"
)

func TestParseCheckpointObject(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   uint64
		file string
		ok   bool
	}{
		{ManifestPath(42), 42, ManifestName, true},
		{CheckpointPrefix(7) + "seg.tmp", 7, "seg.tmp", true},
		{CheckpointPrefix(7) + "a/b", 7, "a/b", true},
		{"checkpoints/chk-42/MANIFEST", 0, "", false},
		{"checkpoints/" + CheckpointDir(0) + "/MANIFEST", 0, "", false},
		{"checkpoints/" + CheckpointDir(3), 0, "", false},
		{"segments/ab/" + strings.Repeat("ab", 32) + ".seg", 0, "", false},
		{"", 0, "", false},
	} {
		id, file, ok := ParseCheckpointObject(tc.name)
		if id != tc.id || file != tc.file || ok != tc.ok {
			t.Errorf("ParseCheckpointObject(%q) = %d, %q, %t; want %d, %q, %t", tc.name, id, file, ok, tc.id, tc.file, tc.ok)
		}
	}
}

func TestParseSegmentPath(t *testing.T) {
	hash := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		name, hash string
		ok         bool
	}{
		{SegmentPath(hash), hash, true},
		{SegmentsPrefix + "ff/" + hash + ".seg", "", false}, // wrong fan-out
		{SegmentsPrefix + "0f/" + strings.ToUpper(hash) + ".seg", "", false},
		{SegmentsPrefix + "0f/" + hash, "", false},
		{"x/" + hash + ".seg", "", false},
	} {
		h, ok := ParseSegmentPath(tc.name)
		if h != tc.hash || ok != tc.ok {
			t.Errorf("ParseSegmentPath(%q) = %q, %t; want %q, %t", tc.name, h, ok, tc.hash, tc.ok)
		}
	}
	if got := SegmentFanoutPrefix(hash); !strings.HasPrefix(SegmentPath(hash), got) || got != "segments/0f/" {
		t.Errorf("SegmentFanoutPrefix = %q", got)
	}
	if !IsLeasePath(LeasesPrefix+"job") || IsLeasePath("leasesx/job") {
		t.Error("IsLeasePath")
	}
}

// FuzzLayout: names come from store listings, so the parsers take any
// string; whatever they accept must build back to the same name.
func FuzzLayout(f *testing.F) {
	f.Add(ManifestPath(1))
	f.Add(SegmentPath(strings.Repeat("ab", 32)))
	f.Add("checkpoints/chk-1/MANIFEST")
	f.Fuzz(func(t *testing.T, name string) {
		if id, file, ok := ParseCheckpointObject(name); ok && CheckpointPrefix(id)+file != name {
			t.Fatalf("ParseCheckpointObject(%q) = %d, %q does not build back", name, id, file)
		}
		if hash, ok := ParseSegmentPath(name); ok && SegmentPath(hash) != name {
			t.Fatalf("ParseSegmentPath(%q) = %q does not build back", name, hash)
		}
	})
}
