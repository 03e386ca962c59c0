package store_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		opts := store.OpenOptions{S3: storetest.S3Options(srv)}
		for _, tc := range []struct {
			address, location string
		}{
			{filepath.Join(dir, "plain"), "file://" + filepath.ToSlash(filepath.Join(dir, "plain"))},
			{"file://" + filepath.ToSlash(filepath.Join(dir, "url")), "file://" + filepath.ToSlash(filepath.Join(dir, "url"))},
			{"file://localhost" + filepath.ToSlash(filepath.Join(dir, "local")), "file://" + filepath.ToSlash(filepath.Join(dir, "local"))},
			{"mem://unit", "mem://unit"},
			{"S3://" + bucket + "/jobs/x", "s3://" + bucket + "/jobs/x (endpoint " + srv.Endpoint + ")"},
			{"s3://" + bucket, "s3://" + bucket + " (endpoint " + srv.Endpoint + ")"},
		} {
			s, err := store.Open(ctx, tc.address, opts)
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.address, err)
			}
			if s.Location() != tc.location {
				t.Errorf("Open(%q).Location() = %q; want %q", tc.address, s.Location(), tc.location)
			}
			// Every opened store works.
			if err := s.Put(ctx, "ARKSTATE", strings.NewReader("v1"), 2); err != nil {
				t.Fatalf("Open(%q): Put: %v", tc.address, err)
			}
			rc, _, err := s.Get(ctx, "ARKSTATE")
			if err != nil {
				t.Fatalf("Open(%q): Get: %v", tc.address, err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(b) != "v1" {
				t.Fatalf("Open(%q): Get = %q, %v", tc.address, b, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("ErrConfig", func(t *testing.T) {
		for _, tc := range []struct {
			address, want string
		}{
			{"", "empty store address"},
			{"gs://bucket/prefix", `unknown scheme "gs"`},
			{"s3:bucket/prefix", "must start with s3://"},
			{"s3:///prefix", "no bucket"},
			{"s3://bucket/prefix?region=eu-west-1", "query"},
			{"s3://AKIDLEAK:addr-secret@bucket/prefix", "must not contain credentials"},
			{"file://remotehost/state", `host "remotehost"`},
			{"file://", "no path"},
			{"s3://a/prefix", `"a"`},
			{"hybrid:///tmp/x", "remote=ADDRESS"},
			{"hybrid:///tmp/x?remote=s3://b/p&remote=s3://c/p", "exactly one remote"},
			{"hybrid:///tmp/x?remote=s3://bucket/p&region=x", `unknown parameter "region"`},
			{"hybrid:///tmp/x?remote=hybrid:///tmp/y%3Fremote=s3://b/p", "cannot be hybrid"},
			{"hybrid://remotehost/x?remote=s3://bucket/p", `host "remotehost"`},
		} {
			s, err := store.Open(ctx, tc.address, store.OpenOptions{})
			if err == nil {
				s.Close()
				t.Errorf("Open(%q) succeeded", tc.address)
				continue
			}
			if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q) = %v; want ErrConfig mentioning %q", tc.address, err, tc.want)
			}
			assertClean(t, err, "addr-secret", "AKIDLEAK")
		}
	})
}
