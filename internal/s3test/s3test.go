// Package s3test runs a real S3 server for tests: the versitygw gateway over
// a temporary directory, listening on a loopback port, with fresh random
// credentials. The gateway is built from the version pinned in the
// repository's tools module, so `go test ./...` needs nothing but Go; tests
// that need S3 fail (never skip) when it cannot be built or started, and say
// why.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gofrs/flock"
	"go.uber.org/goleak"
)

// VersitygwVersion is the gateway release the tests are written against. It
// is pinned in the repository's tools module (tools/go.mod), which keeps the
// gateway's dependencies out of the library's go.mod.
const VersitygwVersion = "v1.8.0"

// BinaryEnv names an environment variable that, when set, is the path of the
// versitygw executable to run instead of the one built from tools/go.mod.
const BinaryEnv = "ARKSTATE_VERSITYGW"

// StartLogEnv names an environment variable that, when set, is a file to which
// every server start appends a line (the test binary's name and the
// endpoint), so a script can check that the S3 tests really ran.
const StartLogEnv = "ARKSTATE_S3TEST_LOG"

// Region is the region the server answers for.
const Region = "us-east-1"

// Server is a running versitygw process.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	AccessKey string
	SecretKey string

	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process has been waited for
	dir       string        // holds the gateway's root and its log
	logPath   string
	client    *s3.Client
	transport *http.Transport
	buckets   atomic.Int64
	stopOnce  sync.Once
	stopErr   error
}

var built struct {
	sync.Mutex
	path string
}

// Binary returns the versitygw executable the tests run: $ARKSTATE_VERSITYGW
// if set, else the version pinned in tools/go.mod, built by `go tool -n`.
// The go command keeps the executable in its build cache, so only the first
// call on a machine compiles (about a minute on 2 cores); later calls, in any
// test binary, take a fraction of a second. A file lock makes the test
// binaries that `go test ./...` runs at once wait for one build instead of
// compiling the gateway side by side.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		if fi.IsDir() {
			return "", fmt.Errorf("%s=%s: is a directory, not the versitygw executable", BinaryEnv, p)
		}
		return p, nil
	}
	built.Lock()
	defer built.Unlock()
	if built.path != "" {
		return built.path, nil
	}
	tools, err := toolsModule()
	if err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build versitygw: the go command is not on PATH (set %s to a versitygw executable instead): %w", BinaryEnv, err)
	}
	lock := flock.New(filepath.Join(os.TempDir(), "arkstate-versitygw-build.lock"))
	if _, err := lock.TryLockContext(ctx, 200*time.Millisecond); err != nil {
		return "", fmt.Errorf("build versitygw: lock %s: %w", lock.Path(), err)
	}
	defer lock.Unlock()
	cmd := exec.CommandContext(ctx, goCmd, "tool", "-n", "versitygw")
	cmd.Dir = tools
	// A go.work of the user's own would pull the tools module into a
	// workspace it is not part of.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build versitygw %s from %s: %v: %s", VersitygwVersion,
			filepath.Join(tools, "go.mod"), err, bytes.TrimSpace(stderr.Bytes()))
	}
	p := string(bytes.TrimSpace(stdout.Bytes()))
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		return "", fmt.Errorf("build versitygw: go tool -n printed %q, which is not an executable: %v", p, err)
	}
	built.path = p
	return p, nil
}

// toolsModule finds the repository's tools module by walking up from the
// working directory, which `go test` sets to the package's directory.
func toolsModule() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return toolsModuleFrom(wd)
}

func toolsModuleFrom(wd string) (string, error) {
	for dir := wd; ; {
		b, err := os.ReadFile(filepath.Join(dir, "tools", "go.mod"))
		if err == nil && bytes.Contains(b, []byte("tool github.com/versity/versitygw/cmd/versitygw")) {
			return filepath.Join(dir, "tools"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no tools/go.mod pinning versitygw in %s or above; run the tests inside the arkstate repository or set %s", wd, BinaryEnv)
		}
		dir = parent
	}
}

// Start launches versitygw with a posix backend in a new temporary directory
// and returns once it answers HTTP. The caller must Stop it.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	// The port is picked by binding and releasing it, so another process can
	// take it in between; the gateway then exits and we try another.
	for attempt := 1; ; attempt++ {
		srv, err := start(ctx, bin)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			return srv, err
		}
	}
}

func start(ctx context.Context, bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "arkstate-s3test-")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://" + addr,
		AccessKey: "AK" + randomHex(9),
		SecretKey: "SK" + randomHex(18),
		exited:    make(chan struct{}),
		dir:       dir,
		logPath:   filepath.Join(dir, "versitygw.log"),
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, "--port", addr, "--region", Region, "posix", root)
	s.cmd.Env = append(os.Environ(),
		"ROOT_ACCESS_KEY_ID="+s.AccessKey,
		"ROOT_SECRET_ACCESS_KEY="+s.SecretKey,
	)
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	if err := logStart(s.Endpoint); err != nil {
		s.Stop()
		return nil, err
	}
	s.client = s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: s.transport},
	})
	return s, nil
}

// logStart records a start in $ARKSTATE_S3TEST_LOG, if set.
func logStart(endpoint string) error {
	p := os.Getenv(StartLogEnv)
	if p == "" {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", StartLogEnv, err)
	}
	// One short write with O_APPEND: lines of test binaries running at
	// once do not interleave.
	_, err = fmt.Fprintf(f, "%s\t%s\n", filepath.Base(os.Args[0]), endpoint)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", StartLogEnv, err)
	}
	return nil
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// waitReady polls the endpoint until the gateway answers any HTTP request.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Transport: s.transport, Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("versitygw exited during startup: %s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("versitygw did not answer on %s within %v: %s", s.Endpoint, timeout, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail returns the end of the gateway's log for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "no log: " + err.Error()
	}
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "empty log"
	}
	return "log: " + string(b)
}

// Stop ends the process, by its PID, with an interrupt and then a kill if it
// does not exit within five seconds, and removes its directory.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd.Process != nil {
			select {
			case <-s.exited:
			default:
				// Interrupt is not deliverable on Windows; Kill follows then.
				_ = s.cmd.Process.Signal(os.Interrupt)
				select {
				case <-s.exited:
				case <-time.After(5 * time.Second):
					if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
						s.stopErr = err
					}
					<-s.exited
				}
			}
		}
		s.transport.CloseIdleConnections()
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = err
		}
	})
	return s.stopErr
}

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %q: %w", name, err)
	}
	return nil
}

// NewBucket creates a bucket with a name unique to this server and fails t if
// it cannot.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test-%d-%s", s.buckets.Add(1), randomHex(4))
	if err := s.CreateBucket(context.Background(), name); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	return name
}

// Client returns an SDK client for the server with path-style addressing,
// for tests that check what the store wrote.
func (s *Server) Client() *s3.Client { return s.client }

// Shared starts one server on first use and keeps it for a whole test
// package, which saves starting the gateway for every test. Declare one per
// package and run the package's tests with its Main.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Get returns the shared server, starting it if needed, and fails t (never
// skips) if it cannot run.
func (sh *Shared) Get(t testing.TB) *Server {
	t.Helper()
	sh.once.Do(func() { sh.srv, sh.err = Start(context.Background()) })
	if sh.err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", sh.err)
	}
	return sh.srv
}

// Main is the TestMain of a package whose tests share sh. It keeps the AWS
// credential chain from reaching for an instance metadata service (a test
// talks to loopback only), runs the tests, stops the server, and only then
// checks for leaked goroutines, so that the one waiting for the server
// process is not counted. It exits the process.
func (sh *Shared) Main(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	if err := sh.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop S3 server: %v\n", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Stop stops the shared server if it was started.
func (sh *Shared) Stop() error {
	var err error
	sh.once.Do(func() { sh.err = errors.New("stopped before use") })
	if sh.srv != nil {
		err = sh.srv.Stop()
	}
	return err
}
