package s3test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServer_Start(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ctx := context.Background()
		srv, err := Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stopped := false
		defer func() {
			if !stopped {
				srv.Stop()
			}
		}()
		bucket := srv.NewBucket(t)
		body := "hello from a real S3 server"
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("a/b"), Body: strings.NewReader(body),
		}); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b")})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || string(got) != body {
			t.Fatalf("GetObject = %q, %v; want %q", got, err, body)
		}

		pid := srv.cmd.Process.Pid
		if err := srv.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		stopped = true
		if srv.cmd.ProcessState == nil {
			t.Fatalf("process %d not waited for after Stop", pid)
		}
		if _, err := os.Stat(srv.dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("server directory %s not removed: %v", srv.dir, err)
		}
		if err := srv.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
	})

	t.Run("ErrBadCredentials", func(t *testing.T) {
		var sh Shared
		srv := sh.Get(t)
		defer sh.Stop()
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		bad := s3.New(s3.Options{
			Region: Region, BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true,
			Credentials: aws.AnonymousCredentials{},
			HTTPClient:  &http.Client{Transport: tr},
		})
		_, err := bad.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("anon")})
		if err == nil {
			t.Fatal("anonymous CreateBucket succeeded; the server does not check credentials")
		}
	})
}

func TestBinary(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		t.Setenv(BinaryEnv, "")
		p, err := Binary(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("go", "version", "-m", p).CombinedOutput()
		want := "github.com/versity/versitygw\t" + VersitygwVersion
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("go version -m %s = %q, %v; want the pinned module %q", p, out, err, want)
		}
	})
	t.Run("ErrEnvMissing", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "versitygw")
		t.Setenv(BinaryEnv, missing)
		_, err := Binary(context.Background())
		if err == nil || !strings.Contains(err.Error(), BinaryEnv+"="+missing) {
			t.Fatalf("Binary() error = %v; want one naming %s", err, BinaryEnv)
		}
	})
	t.Run("ErrOutsideRepository", func(t *testing.T) {
		t.Setenv(BinaryEnv, "")
		_, err := toolsModuleFrom(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "tools/go.mod") || !strings.Contains(err.Error(), BinaryEnv) {
			t.Fatalf("toolsModuleFrom(temp) error = %v; want one naming tools/go.mod and %s", err, BinaryEnv)
		}
	})
}

func TestStartLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "starts")
	t.Setenv(StartLogEnv, log)
	srv, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Base(os.Args[0]) + "\t" + srv.Endpoint + "\n"
	if string(b) != want {
		t.Fatalf("start log = %q; want %q", b, want)
	}
}
