package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/arkstate/arkstate/internal/faults"
	"github.com/arkstate/arkstate/internal/s3test"
)

const faultsConfig = `streams:
  - id: wordcount
    input:  {type: generate, seed: 11, count: %d, rate: %d}
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}
    output: %s
state:
  enabled: true
  backend_type: %s
  path: ./state
  checkpoint_interval_ms: 100
  retained_checkpoints: 3
  lease_ttl_ms: 15000
  exactly_once: true
%s`

// TestRunS3Faults runs the real binary against the real S3 server through
// the fault proxy, for both the store and the output, and breaks S3 in
// each phase of a checkpoint for a second and a half: 503s on segment
// uploads, connection resets on manifest writes, 500s on the output's
// completions, cut and trickling bodies on reads, and every request
// refused. During each outage /healthz must say 503 with a reason, after
// it 200 again, and the committed output must equal an uninterrupted run's.
func TestRunS3Faults(t *testing.T) {
	const count, rate = 100000, 5000 // about 20 s
	want := referenceCounts(t, fmt.Sprintf(faultsConfig, count, 0, "{type: file, path: out/}", "local", ""))

	srv, bucket, env := startS3Env(t)
	proxy, err := faults.New(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	dir := t.TempDir()
	out := fmt.Sprintf("{type: s3, bucket: %s, prefix: job/out, endpoint: %q, region: %s, path_style: true}", bucket, proxy.URL, s3test.Region)
	extra := fmt.Sprintf("  s3_config: {bucket: %s, prefix: job/state, region: %s, endpoint: %q, path_style: true, use_ssl: false}\n", bucket, s3test.Region, proxy.URL)
	cfg := writePipeline(t, dir, fmt.Sprintf(faultsConfig, count, rate, out, "s3", extra))
	cmd := exec.Command(arkstateBinary(t), "run", "-c", cfg, "--metrics-addr", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logged lockedBuffer
	exited := make(chan error, 1)
	addrs := make(chan string, 1)
	go func() {
		addrRE := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logged.Write([]byte(sc.Text() + "\n"))
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	var base string
	select {
	case base = <-addrs:
	case err := <-exited:
		t.Fatalf("run exited before serving: %v\n%s", err, logged.String())
	case <-time.After(time.Minute):
		t.Fatal("no monitor address logged")
	}
	healthz := func() (int, string) {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitHealth := func(what string, status int, within time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := healthz()
			if code == status {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /healthz stayed %d (%s), want %d\n%s", what, code, body, status, logged.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitHealth("start", http.StatusOK, time.Minute)

	phases := []struct {
		name string
		rule faults.Rule
	}{
		{"503 on segment uploads", faults.Rule{Method: http.MethodPut, Path: "/job/state/segments/", Fault: faults.SlowDown}},
		{"connection resets on manifest writes", faults.Rule{Method: http.MethodPut, Path: "/MANIFEST", Fault: faults.Drop}},
		{"500 on the output's completions", faults.Rule{Method: http.MethodPost, Path: "/job/out/", Query: "uploadId", Fault: faults.InternalError}},
		{"cut bodies on reads", faults.Rule{Method: http.MethodGet, Fault: faults.CutBody}},
		{"trickling bodies on reads", faults.Rule{Method: http.MethodGet, Fault: faults.SlowBody, Delay: 300 * time.Millisecond}},
		{"every request refused", faults.Rule{Fault: faults.SlowDown}},
	}
	for _, p := range phases {
		injected := proxy.Injected()
		proxy.Add(p.rule)
		reason := waitHealth(p.name, http.StatusServiceUnavailable, 30*time.Second)
		if !strings.Contains(reason, `"reason"`) || !(strings.Contains(reason, "checkpoint") || strings.Contains(reason, "commit")) {
			t.Fatalf("%s: /healthz 503 without a reason: %s", p.name, reason)
		}
		time.Sleep(1500 * time.Millisecond)
		proxy.Clear()
		if proxy.Injected() == injected {
			t.Fatalf("%s: no fault was injected", p.name)
		}
		waitHealth(p.name+", after", http.StatusOK, time.Minute)
		t.Logf("%s: %d faults injected; unhealthy with %s; healthy again", p.name, proxy.Injected()-injected, strings.Join(strings.Fields(reason), " "))
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("run failed: %v\n%s", err, logged.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("run did not finish\n%s", logged.String())
	}
	if got := committedS3(t, srv, bucket, "job/out/"); !maps.Equal(got, want) {
		t.Fatalf("after the faults the committed counts differ from an uninterrupted run's (%d vs %d keys)", len(got), len(want))
	}
}
