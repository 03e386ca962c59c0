package store

import (
	"errors"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, name := range []string{"a", "checkpoints/chk-00000000000000000001/MANIFEST", "segments/ab/x.seg"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	for name, why := range map[string]string{
		"":                       "empty",
		"/abs":                   "absolute",
		"a//b":                   "empty path segment",
		"a/../b":                 `".."`,
		"a/.arkstate-x":          "reserved",
		"a/nul.seg":              "Windows device",
		"a/b.":                   "dot or space",
		"a\\b":                   "not allowed",
		strings.Repeat("x", 901): "longer than",
	} {
		err := ValidateName(name)
		if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), why) {
			t.Errorf("ValidateName(%.20q) = %v; want ErrInvalidName saying %q", name, err, why)
		}
		if p := PathProblem(name); p == nil || errors.Is(p, ErrInvalidName) {
			t.Errorf("PathProblem(%.20q) = %v; want the bare reason", name, p)
		}
	}
	if err := ValidatePrefix("checkpoints/chk-"); err != nil {
		t.Errorf("a partial last segment is a valid prefix: %v", err)
	}
	if err := ValidatePrefix(""); err != nil {
		t.Errorf("the empty prefix lists everything: %v", err)
	}
	if err := ValidatePrefix("a//"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("ValidatePrefix(a//) = %v", err)
	}
}

type fakeStore struct{ Store }

type localStore struct{ fakeStore }

func (localStore) ReadsAreLocal() {}

type wrapper struct {
	Store
	inner Store
}

func (w wrapper) Unwrap() Store { return w.inner }

func TestAs(t *testing.T) {
	local := localStore{}
	if _, ok := As[LocalReads](local); !ok {
		t.Error("As misses the store itself")
	}
	if got, ok := As[LocalReads](wrapper{inner: wrapper{inner: local}}); !ok || got != LocalReads(local) {
		t.Error("As misses a store two wrappers down")
	}
	if _, ok := As[LocalReads](wrapper{inner: fakeStore{}}); ok {
		t.Error("As finds an ability no store in the chain has")
	}
	if _, ok := As[LocalReads](nil); ok {
		t.Error("As of nil")
	}
}
