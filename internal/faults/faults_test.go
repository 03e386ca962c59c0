package faults

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start runs a backend that serves body and records the Host it was asked
// for, and a proxy in front of it.
func start(t *testing.T, body []byte) (*Proxy, *http.Client, *string) {
	t.Helper()
	var host string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host = r.Host
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	t.Cleanup(backend.Close)
	p, err := New(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return p, &http.Client{Transport: tr}, &host
}

func do(t *testing.T, c *http.Client, method, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestProxy_ServeHTTP(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	t.Run("OKPassThrough", func(t *testing.T) {
		p, c, host := start(t, body)
		resp, got, err := do(t, c, http.MethodGet, p.URL+"/bucket/key")
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("GET through the proxy = %v, %d bytes, %v", resp, len(got), err)
		}
		if *host != strings.TrimPrefix(p.URL, "http://") {
			t.Fatalf("backend saw Host %q; want the proxy's %q", *host, p.URL)
		}
		if p.Requests() != 1 || p.Injected() != 0 {
			t.Fatalf("Requests, Injected = %d, %d; want 1, 0", p.Requests(), p.Injected())
		}
	})
	t.Run("OKStatusFaults", func(t *testing.T) {
		p, c, _ := start(t, body)
		for _, tc := range []struct {
			fault  Fault
			status int
			code   string
		}{
			{SlowDown, 503, "<Code>SlowDown</Code>"},
			{InternalError, 500, "<Code>InternalError</Code>"},
			{TooManyRequests, 429, ""},
		} {
			p.Add(Rule{Method: http.MethodPut, Path: "/key", Fault: tc.fault, Times: 2})
			for i := range 2 {
				resp, got, err := do(t, c, http.MethodPut, p.URL+"/bucket/key")
				if err != nil || resp.StatusCode != tc.status || !strings.Contains(string(got), tc.code) {
					t.Fatalf("%v try %d: %v, %q, %v; want %d %s", tc.fault, i, resp, got, err, tc.status, tc.code)
				}
			}
			resp, _, err := do(t, c, http.MethodPut, p.URL+"/bucket/key")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%v: third request = %v, %v; want it passed through after Times", tc.fault, resp, err)
			}
		}
		if p.Injected() != 6 {
			t.Fatalf("Injected = %d; want 6", p.Injected())
		}
	})
	t.Run("OKSelectors", func(t *testing.T) {
		p, c, _ := start(t, body)
		p.Add(Rule{Method: http.MethodPost, Path: "/other", Query: "uploads", Fault: SlowDown,
			Match: func(r *http.Request) bool { return r.Header.Get("X-Test") == "" }})
		for _, u := range []string{"/bucket/key?uploads", "/bucket/other", "/bucket/other?x"} {
			if resp, _, err := do(t, c, http.MethodPost, p.URL+u); err != nil || resp.StatusCode != 200 {
				t.Fatalf("POST %s = %v, %v; want no fault", u, resp, err)
			}
		}
		if resp, _, err := do(t, c, http.MethodGet, p.URL+"/bucket/other?uploads"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET = %v, %v; want no fault", resp, err)
		}
		if resp, _, err := do(t, c, http.MethodPost, p.URL+"/bucket/other?uploads"); err != nil || resp.StatusCode != 503 {
			t.Fatalf("matching POST = %v, %v; want 503", resp, err)
		}
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/bucket/other?uploads", nil)
		req.Header.Set("X-Test", "1")
		if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST failing Match = %v, %v; want no fault", resp, err)
		} else {
			resp.Body.Close()
		}
		p.Clear()
		if resp, _, err := do(t, c, http.MethodPost, p.URL+"/bucket/other?uploads"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST after Clear = %v, %v; want no fault", resp, err)
		}
	})
	t.Run("ErrDrop", func(t *testing.T) {
		p, c, _ := start(t, body)
		p.Add(Rule{Fault: Drop, Times: 1})
		if _, _, err := do(t, c, http.MethodPut, p.URL+"/bucket/key"); err == nil {
			t.Fatal("dropped request succeeded")
		}
	})
	t.Run("ErrCutBody", func(t *testing.T) {
		p, c, _ := start(t, body)
		p.Add(Rule{Fault: CutBody, Times: 1})
		_, got, err := do(t, c, http.MethodGet, p.URL+"/bucket/key")
		if err == nil || len(got) >= len(body) {
			t.Fatalf("cut body read %d of %d bytes with error %v; want a short read and an error", len(got), len(body), err)
		}
	})
	t.Run("OKSlowBody", func(t *testing.T) {
		p, c, _ := start(t, body)
		p.Add(Rule{Fault: SlowBody, Delay: 10 * time.Millisecond, Times: 1})
		start := time.Now()
		_, got, err := do(t, c, http.MethodGet, p.URL+"/bucket/key")
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("slow body = %d bytes, %v", len(got), err)
		}
		// 128 KiB in pieces of at most 16 KiB: at least 8 pauses.
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Fatalf("slow body took %v; want at least 80ms", d)
		}
	})
}
