package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/arkstate/arkstate/internal/faults"
	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// s3Server is started by the first test that needs it and stopped by TestMain.
var s3Server s3test.Shared

func TestS3Store(t *testing.T) {
	srv := s3Server.Get(t)
	bucket := srv.NewBucket(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		return storetest.NewS3(t, bucket, fmt.Sprintf("suite/%d", n.Add(1)), storetest.S3Options(srv))
	})
}

func TestS3Store_List(t *testing.T) {
	t.Run("OKPrefixIsolation", func(t *testing.T) {
		ctx := context.Background()
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		root := storetest.NewS3(t, bucket, "", storetest.S3Options(srv))
		inner := storetest.NewS3(t, bucket, "/jobs/a/", storetest.S3Options(srv))
		for _, s := range []store.Store{root, inner} {
			if err := s.Put(ctx, "ARKSTATE", strings.NewReader("m"), 1); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for info, err := range root.List(ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info.Name)
		}
		if want := []string{"ARKSTATE", "jobs/a/ARKSTATE"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("root List = %q; want %q", got, want)
		}
		got = nil
		for info, err := range inner.List(ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info.Name)
		}
		if fmt.Sprint(got) != "[ARKSTATE]" {
			t.Fatalf("prefixed List = %q; want only its own object", got)
		}
		if want := "s3://" + bucket + "/jobs/a (endpoint " + srv.Endpoint + ")"; inner.Location() != want {
			t.Fatalf("Location() = %q; want %q", inner.Location(), want)
		}
	})
}

func TestS3Store_Get(t *testing.T) {
	t.Run("OKParallelRanges", func(t *testing.T) {
		// Many chunks with a small concurrency: the reader must deliver them
		// in order while at most a few are fetched ahead.
		ctx := context.Background()
		srv := s3Server.Get(t)
		opts := storetest.S3Options(srv)
		opts.Concurrency = 2
		s := storetest.NewS3(t, srv.NewBucket(t), "", opts)
		data := make([]byte, 4*store.MinPartSize+17)
		for i := range data {
			data[i] = byte(i * 7 / 5)
		}
		if err := s.Put(ctx, "big", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		rc, info, err := s.Get(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) || info.Size != int64(len(data)) {
			t.Fatalf("Get = %d bytes (info size %d), %v; want %d equal bytes", len(got), info.Size, err, len(data))
		}
		// Closing early stops the prefetching (goleak checks it is gone).
		rc, _, err = s.Get(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if _, err := rc.Read(make([]byte, 1)); err == nil {
			t.Fatal("Read after Close succeeded")
		}
	})
	t.Run("ErrReplacedDuringRead", func(t *testing.T) {
		ctx := context.Background()
		srv := s3Server.Get(t)
		opts := storetest.S3Options(srv)
		opts.Concurrency = 1
		s := storetest.NewS3(t, srv.NewBucket(t), "", opts)
		data := bytes.Repeat([]byte("v1"), 3*store.MinPartSize/2)
		if err := s.Put(ctx, "obj", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		obj, err := s.Open(ctx, "obj")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if err := s.Put(ctx, "obj", strings.NewReader("v2"), 2); err != nil {
			t.Fatal(err)
		}
		_, err = obj.ReadAt(make([]byte, 10), 0)
		if !errors.Is(err, store.ErrPreconditionFailed) {
			t.Fatalf("ReadAt of a replaced object: %v; want ErrPreconditionFailed", err)
		}
	})
}

// assertClean fails if msg holds a secret or spans lines.
func assertClean(t *testing.T, err error, secrets ...string) {
	t.Helper()
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Fatalf("error %q contains a secret", msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Fatalf("error %q spans lines", msg)
	}
}

func TestNewS3(t *testing.T) {
	ctx := context.Background()
	t.Run("OKEndpointWithoutScheme", func(t *testing.T) {
		srv := s3Server.Get(t)
		opts := storetest.S3Options(srv)
		opts.Endpoint = strings.TrimPrefix(srv.Endpoint, "http://")
		opts.DisableSSL = true
		s := storetest.NewS3(t, srv.NewBucket(t), "", opts)
		if err := s.Put(ctx, "x", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s.Location(), srv.Endpoint) {
			t.Fatalf("Location() = %q; want the endpoint with its scheme", s.Location())
		}
	})
	t.Run("ErrNoSuchBucket", func(t *testing.T) {
		srv := s3Server.Get(t)
		_, err := store.NewS3(ctx, "no-such-bucket", "p", storetest.S3Options(srv))
		if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), `"no-such-bucket"`) ||
			!strings.Contains(err.Error(), srv.Endpoint) || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("NewS3 with a missing bucket: %v; want ErrConfig naming bucket and endpoint", err)
		}
		assertClean(t, err, srv.SecretKey)
	})
	t.Run("ErrWrongSecret", func(t *testing.T) {
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		opts := storetest.S3Options(srv)
		opts.SecretAccessKey = "wrong-secret-0123456789abcdefghij"
		_, err := store.NewS3(ctx, bucket, "", opts)
		if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), bucket) || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("NewS3 with a wrong secret: %v; want ErrConfig about credentials naming the bucket", err)
		}
		assertClean(t, err, opts.SecretAccessKey, srv.SecretKey)
	})
	t.Run("ErrUnknownAccessKey", func(t *testing.T) {
		srv := s3Server.Get(t)
		bucket := srv.NewBucket(t)
		opts := storetest.S3Options(srv)
		opts.AccessKeyID = "AKUNKNOWN"
		_, err := store.NewS3(ctx, bucket, "", opts)
		if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), bucket) || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("NewS3 with an unknown key: %v; want ErrConfig about credentials naming the bucket", err)
		}
		assertClean(t, err, srv.SecretKey)
	})
	t.Run("ErrConnectionRefused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		opts := store.S3Options{
			Endpoint: "http://" + addr, PathStyle: true, Region: "us-east-1",
			AccessKeyID: "AK", SecretAccessKey: "refused-secret-value",
			MaxAttempts: 2, MaxBackoff: time.Millisecond,
		}
		_, err = store.NewS3(ctx, "bucket", "", opts)
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("NewS3 with nothing listening: %v; want ErrUnavailable naming %s", err, addr)
		}
		assertClean(t, err, opts.SecretAccessKey)
	})
	// No credentials anywhere is a configuration error that says where
	// it looked, at once; before, every request failed and the command
	// exited 3, "unavailable", which a script retries for ever.
	t.Run("ErrNoCredentials", func(t *testing.T) {
		dir := t.TempDir()
		for k, v := range map[string]string{
			"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
			"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
			"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
			"AWS_EC2_METADATA_DISABLED": "true",
		} {
			t.Setenv(k, v)
		}
		_, err := store.NewS3(ctx, "bucket", "", store.S3Options{Endpoint: "http://127.0.0.1:1", PathStyle: true, Region: "us-east-1"})
		if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), "no S3 credentials") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
			t.Fatalf("NewS3 without credentials: %v; want ErrConfig saying which credentials were looked for", err)
		}
	})
	// An endpoint given without a scheme is HTTPS; one that speaks plain
	// HTTP is a configuration error said at once, not retried and then
	// called an outage.
	t.Run("ErrPlainHTTPEndpoint", func(t *testing.T) {
		var conns atomic.Int32
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		defer srv.Close()
		opts := store.S3Options{Endpoint: strings.TrimPrefix(srv.URL, "http://"), PathStyle: true, Region: "us-east-1",
			AccessKeyID: "AK", SecretAccessKey: "plain-http-secret", MaxAttempts: 5, MaxBackoff: time.Millisecond}
		_, err := store.NewS3(ctx, "bucket", "", opts)
		if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), "plain HTTP") {
			t.Fatalf("NewS3 over HTTPS to a plain-HTTP endpoint: %v; want ErrConfig saying so", err)
		}
		if n := conns.Load(); n != 1 {
			t.Fatalf("%d connections to the endpoint: the HTTPS attempt was retried", n)
		}
		assertClean(t, err, opts.SecretAccessKey)
	})
	t.Run("ErrConfig", func(t *testing.T) {
		base := store.S3Options{Endpoint: "http://127.0.0.1:1", AccessKeyID: "AK", SecretAccessKey: "cfg-secret-value"}
		for _, tc := range []struct {
			name, bucket, prefix, want string
			edit                       func(*store.S3Options)
		}{
			{"endpoint credentials", "bucket", "", "must not contain credentials", func(o *store.S3Options) {
				o.Endpoint = "http://AK:cfg-secret-value@127.0.0.1:1"
			}},
			{"endpoint scheme", "bucket", "", "is not http or https", func(o *store.S3Options) { o.Endpoint = "ftp://host" }},
			{"part size", "bucket", "", "part size", func(o *store.S3Options) { o.PartSize = 1 << 20 }},
			{"half credentials", "bucket", "", "both", func(o *store.S3Options) { o.AccessKeyID = "" }},
			{"bucket name", "b", "", `"b"`, func(*store.S3Options) {}},
			{"bucket characters", "bad/bucket", "", "character", func(*store.S3Options) {}},
			{"prefix", "bucket", "a/../b", `".."`, func(*store.S3Options) {}},
		} {
			opts := base
			tc.edit(&opts)
			_, err := store.NewS3(ctx, tc.bucket, tc.prefix, opts)
			if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v; want ErrConfig mentioning %q", tc.name, err, tc.want)
				continue
			}
			assertClean(t, err, "cfg-secret-value")
		}
	})
	t.Run("OKOptionsNotPrinted", func(t *testing.T) {
		opts := store.S3Options{AccessKeyID: "AK", SecretAccessKey: "printed-secret", SessionToken: "printed-token"}
		for _, s := range []string{fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts), fmt.Sprintf("%v", &opts)} {
			if strings.Contains(s, "printed-secret") || strings.Contains(s, "printed-token") {
				t.Fatalf("formatted options %q contain a secret", s)
			}
		}
	})
}

// faultStore returns a store whose requests pass through a fault proxy in
// front of the real server.
func faultStore(t *testing.T) (*store.S3Store, *faults.Proxy, *s3test.Server, string) {
	t.Helper()
	srv := s3Server.Get(t)
	p, err := faults.New(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	bucket := srv.NewBucket(t)
	opts := storetest.S3Options(srv)
	opts.Endpoint = p.URL
	opts.MaxAttempts = 4
	return storetest.NewS3(t, bucket, "", opts), p, srv, bucket
}

func TestS3Store_Faults(t *testing.T) {
	ctx := context.Background()
	large := bytes.Repeat([]byte("0123456789"), storetest.LargeSize/10)
	readAll := func(t *testing.T, s store.Store, name string) []byte {
		t.Helper()
		rc, _, err := s.Get(ctx, name)
		if err != nil {
			t.Fatalf("Get(%q): %v", name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("Get(%q): read: %v", name, err)
		}
		return b
	}
	t.Run("OKRetried", func(t *testing.T) {
		for _, fault := range []faults.Fault{faults.SlowDown, faults.InternalError, faults.TooManyRequests, faults.Drop} {
			t.Run(fault.String(), func(t *testing.T) {
				s, p, _, _ := faultStore(t)
				p.Add(faults.Rule{Method: http.MethodPut, Path: "/put", Fault: fault, Times: 2})
				if err := s.Put(ctx, "put", strings.NewReader("payload"), 7); err != nil {
					t.Fatalf("Put through two %v faults: %v", fault, err)
				}
				p.Add(faults.Rule{Method: http.MethodPut, Path: "/lease", Fault: fault, Times: 2})
				if _, err := s.PutIf(ctx, "lease", strings.NewReader("me"), 2, store.Condition{IfNoneMatch: true}); err != nil {
					t.Fatalf("PutIf through two %v faults: %v", fault, err)
				}
				p.Add(faults.Rule{Method: http.MethodGet, Path: "/put", Fault: fault, Times: 2})
				if got := readAll(t, s, "put"); string(got) != "payload" {
					t.Fatalf("Get through two %v faults = %q", fault, got)
				}
				if p.Injected() != 6 {
					t.Fatalf("%d faults injected; want 6", p.Injected())
				}
				_, err := s.PutIf(ctx, "lease", strings.NewReader("you"), 3, store.Condition{IfNoneMatch: true})
				if !errors.Is(err, store.ErrPreconditionFailed) {
					t.Fatalf("second create-only: %v; want ErrPreconditionFailed", err)
				}
			})
		}
	})
	t.Run("OKMultipartRetried", func(t *testing.T) {
		s, p, _, _ := faultStore(t)
		p.Add(faults.Rule{Method: http.MethodPut, Query: "partNumber", Fault: faults.InternalError, Times: 2})
		p.Add(faults.Rule{Method: http.MethodPost, Query: "uploads", Fault: faults.SlowDown, Times: 1})
		p.Add(faults.Rule{Method: http.MethodPost, Query: "uploadId", Fault: faults.Drop, Times: 1})
		if err := s.Put(ctx, "big", bytes.NewReader(large), int64(len(large))); err != nil {
			t.Fatalf("multipart Put through faults: %v", err)
		}
		if p.Injected() != 4 {
			t.Fatalf("%d faults injected; want 4", p.Injected())
		}
		if !bytes.Equal(readAll(t, s, "big"), large) {
			t.Fatal("large object differs after faulty upload")
		}
	})
	t.Run("OKBrokenBodies", func(t *testing.T) {
		// Bodies that break off after the SDK handed them over are fetched
		// again by the ranged readers.
		s, p, _, _ := faultStore(t)
		if err := s.Put(ctx, "big", bytes.NewReader(large), int64(len(large))); err != nil {
			t.Fatal(err)
		}
		notFirst := func(r *http.Request) bool {
			rg := r.Header.Get("Range")
			return rg != "" && !strings.HasPrefix(rg, "bytes=0-")
		}
		p.Add(faults.Rule{Method: http.MethodGet, Match: notFirst, Fault: faults.CutBody, Times: 2})
		if !bytes.Equal(readAll(t, s, "big"), large) {
			t.Fatal("large object differs after broken ranged bodies")
		}
		obj, err := s.Open(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		p.Add(faults.Rule{Method: http.MethodGet, Fault: faults.CutBody, Times: 1})
		buf := make([]byte, 1<<20)
		if _, err := obj.ReadAt(buf, 12345); err != nil || !bytes.Equal(buf, large[12345:12345+len(buf)]) {
			t.Fatalf("ReadAt through a broken body: %v", err)
		}
		if p.Injected() != 3 {
			t.Fatalf("%d faults injected; want 3", p.Injected())
		}
	})
	t.Run("OKSlowBody", func(t *testing.T) {
		s, p, _, _ := faultStore(t)
		data := bytes.Repeat([]byte("s"), 256<<10)
		if err := s.Put(ctx, "slow", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		p.Add(faults.Rule{Method: http.MethodGet, Fault: faults.SlowBody, Delay: 2 * time.Millisecond})
		if !bytes.Equal(readAll(t, s, "slow"), data) {
			t.Fatal("slow body differs")
		}
		// A deadline still bounds a read that trickles.
		p.Clear()
		p.Add(faults.Rule{Method: http.MethodGet, Fault: faults.SlowBody, Delay: 50 * time.Millisecond})
		dctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		rc, _, err := s.Get(dctx, "slow")
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get with a deadline through a trickling body: %v; want DeadlineExceeded", err)
		}
	})
	t.Run("ErrPermanent", func(t *testing.T) {
		for _, fault := range []faults.Fault{faults.SlowDown, faults.InternalError, faults.Drop} {
			t.Run(fault.String(), func(t *testing.T) {
				s, p, srv, _ := faultStore(t)
				p.Add(faults.Rule{Fault: fault})
				checks := map[string]error{}
				checks["Put"] = s.Put(ctx, "x", strings.NewReader("x"), 1)
				_, checks["PutIf"] = s.PutIf(ctx, "x", strings.NewReader("x"), 1, store.Condition{IfNoneMatch: true})
				_, _, checks["Get"] = s.Get(ctx, "x")
				_, checks["Stat"] = s.Stat(ctx, "x")
				for _, err := range s.List(ctx, "") {
					checks["List"] = err
				}
				for op, err := range checks {
					if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotExist) {
						t.Fatalf("%s under permanent %v: %v; want ErrUnavailable", op, fault, err)
					}
					if !strings.Contains(err.Error(), p.URL) {
						t.Fatalf("%s: error %q does not name the endpoint", op, err)
					}
					assertClean(t, err, srv.SecretKey)
				}
				// 5 operations, 4 attempts each.
				if p.Injected() < 5*4 {
					t.Fatalf("%d faults injected; want at least 20 (retries)", p.Injected())
				}
			})
		}
	})
	t.Run("ErrMultipartAborted", func(t *testing.T) {
		s, p, srv, bucket := faultStore(t)
		p.Add(faults.Rule{Method: http.MethodPut, Query: "partNumber", Fault: faults.InternalError})
		err := s.Put(ctx, "big", bytes.NewReader(large), int64(len(large)))
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("multipart Put with failing parts: %v; want ErrUnavailable", err)
		}
		p.Clear()
		out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 0 {
			t.Fatalf("%d multipart uploads left behind; want them aborted", len(out.Uploads))
		}
		if _, err := s.Stat(ctx, "big"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("Stat after failed upload: %v; want ErrNotExist", err)
		}
	})
}

// BenchmarkS3Put uploads 64 MiB to the real server: through the store
// (multipart, 8 MiB parts, 4 in flight) and, as baselines with the same
// bytes, as 8 PutObject calls of 8 MiB with 4 in flight and as one PutObject.
func BenchmarkS3Put(b *testing.B) {
	const total, part, conc = 64 << 20, 8 << 20, 4
	srv := s3Server.Get(b)
	bucket := srv.NewBucket(b)
	data := bytes.Repeat([]byte("arkstate"), total/8)
	ctx := context.Background()

	b.Run("store-multipart", func(b *testing.B) {
		opts := storetest.S3Options(srv)
		opts.PartSize, opts.MultipartThreshold, opts.Concurrency = part, part, conc
		s := storetest.NewS3(b, bucket, "bench", opts)
		b.SetBytes(total)
		for b.Loop() {
			if err := s.Put(ctx, "obj", bytes.NewReader(data), total); err != nil {
				b.Fatal(err)
			}
		}
	})

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * conc
	defer tr.CloseIdleConnections()
	client := s3.New(s3.Options{
		Region: s3test.Region, BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: tr},
	})
	putObject := func(key string, body []byte) error {
		_, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		})
		return err
	}
	b.Run("putobject-parallel", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			var wg sync.WaitGroup
			sem := make(chan struct{}, conc)
			errs := make(chan error, total/part)
			for i := range total / part {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					errs <- putObject(fmt.Sprintf("base/part-%d", i), data[i*part:(i+1)*part])
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("putobject-single", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			if err := putObject("base/single", data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
