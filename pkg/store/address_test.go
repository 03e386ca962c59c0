package store_test

import (
	"context"
	"testing"

	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// The address of every kind of store opens that store again, with the
// endpoint beside it rather than inside it.
func TestAddress(t *testing.T) {
	ctx := context.Background()
	srv := s3Server.Get(t)
	bucket := srv.NewBucket(t)
	opts := store.OpenOptions{S3: storetest.S3Options(srv)}
	for _, addr := range []string{
		"file://" + t.TempDir(),
		"mem://address-test",
		"s3://" + bucket + "/a/b",
		"s3://" + bucket,
		"hybrid://" + t.TempDir() + "?remote=s3://" + bucket + "/h",
	} {
		s, err := store.Open(ctx, addr, opts)
		if err != nil {
			t.Fatalf("Open(%q): %v", addr, err)
		}
		got, endpoint := store.Address(s)
		s.Close()
		if got != addr && addr[:6] != "hybrid" { // hybrid's remote comes back query-escaped
			t.Errorf("Address of %q = %q", addr, got)
		}
		if wantEndpoint := addr[:2] == "s3" || addr[:6] == "hybrid"; wantEndpoint != (endpoint == srv.Endpoint) {
			t.Errorf("Address of %q: endpoint %q", addr, endpoint)
		}
		again, err := store.Open(ctx, got, opts)
		if err != nil {
			t.Fatalf("Open(Address) = Open(%q): %v", got, err)
		}
		if same, _ := store.Address(again); same != got {
			t.Errorf("Address(Open(%q)) = %q", got, same)
		}
		again.Close()
	}
}
