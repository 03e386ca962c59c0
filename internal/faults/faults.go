// Package faults is an HTTP reverse proxy that injects failures into chosen
// requests on their way to a real server: S3 throttling and server errors,
// dropped connections, bodies that trickle or break off. Tests put it in
// front of the real S3 server to show that clients retry what they should
// and report what they cannot get past. It listens on loopback only.
package faults

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the proxy does to a matching request.
type Fault int

const (
	// SlowDown answers 503 with the S3 error code SlowDown (throttling).
	SlowDown Fault = iota
	// InternalError answers 500 with the S3 error code InternalError.
	InternalError
	// TooManyRequests answers 429 without an S3 error code.
	TooManyRequests
	// Drop closes the connection without answering.
	Drop
	// SlowBody forwards the request and trickles the response body in 16 KiB
	// pieces, pausing Rule.Delay before each.
	SlowBody
	// CutBody forwards the request, sends the headers and half the response
	// body, then breaks the connection.
	CutBody
)

func (f Fault) String() string {
	switch f {
	case SlowDown:
		return "SlowDown"
	case InternalError:
		return "InternalError"
	case TooManyRequests:
		return "TooManyRequests"
	case Drop:
		return "Drop"
	case SlowBody:
		return "SlowBody"
	case CutBody:
		return "CutBody"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Rule selects requests and the fault to inject into them. Empty selectors
// match everything.
type Rule struct {
	Method string // e.g. http.MethodPut
	Path   string // substring of the URL path, e.g. the object key
	Query  string // a query parameter that must be present, e.g. "partNumber"
	// Match, when set, must also hold, e.g. to select by header.
	Match func(*http.Request) bool
	Fault Fault
	// Times is how many matching requests get the fault; 0 or less means
	// every one until the rule is removed.
	Times int
	// Delay is SlowBody's pause per piece.
	Delay time.Duration
}

func (r *Rule) matches(req *http.Request) bool {
	if r.Method != "" && req.Method != r.Method {
		return false
	}
	if r.Path != "" && !strings.Contains(req.URL.Path, r.Path) {
		return false
	}
	if r.Query != "" && !req.URL.Query().Has(r.Query) {
		return false
	}
	return r.Match == nil || r.Match(req)
}

// Proxy forwards to a target server, injecting faults by its rules.
type Proxy struct {
	// URL is the proxy's address, "http://127.0.0.1:PORT".
	URL string

	srv       *httptest.Server
	transport *http.Transport

	mu       sync.Mutex
	rules    []*Rule
	requests atomic.Int64
	injected atomic.Int64
}

type faultKey struct{}

// New starts a proxy in front of target ("http://host:port"). The Host
// header is passed through unchanged, so that request signatures made for
// the proxy's address still verify at the target.
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faults: target %q: %w", target, err)
	}
	p := &Proxy{transport: http.DefaultTransport.(*http.Transport).Clone()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		Transport: p.transport,
		// Cut bodies are deliberate; the proxy's complaints about them are noise.
		ErrorLog: log.New(io.Discard, "", 0),
		ModifyResponse: func(resp *http.Response) error {
			if rule, ok := resp.Request.Context().Value(faultKey{}).(*Rule); ok {
				switch rule.Fault {
				case SlowBody:
					resp.Body = &slowBody{ReadCloser: resp.Body, delay: rule.Delay}
				case CutBody:
					resp.Body = &cutBody{ReadCloser: resp.Body, left: max(resp.ContentLength/2, 1)}
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A cut body aborts the response mid-way; anything else is a
			// proxy failure that the client should see as a gateway error.
			if r.Context().Err() == nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
			}
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		rule := p.take(r)
		if rule == nil {
			rp.ServeHTTP(w, r)
			return
		}
		p.injected.Add(1)
		switch rule.Fault {
		case SlowDown:
			s3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		case InternalError:
			s3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		case TooManyRequests:
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusTooManyRequests)
		case Drop:
			hj, ok := w.(http.Hijacker)
			if !ok {
				panic(http.ErrAbortHandler)
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
		case SlowBody, CutBody:
			rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), faultKey{}, rule)))
		}
	}))
	p.URL = p.srv.URL
	return p, nil
}

// take returns the first rule that matches r and still has uses, using one.
func (p *Proxy) take(r *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, rule := range p.rules {
		if !rule.matches(r) {
			continue
		}
		cp := *rule
		if rule.Times > 0 {
			rule.Times--
			if rule.Times == 0 {
				p.rules = append(p.rules[:i:i], p.rules[i+1:]...)
			}
		}
		return &cp
	}
	return nil
}

// s3Error answers like S3 does, with an XML error document (none for HEAD).
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	// Read the request body so the client sees the answer, not a reset.
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<Error><Code>%s</Code><Message>%s</Message><RequestId>faults</RequestId></Error>`, code, msg)
	}
}

// Add installs a rule after the existing ones.
func (p *Proxy) Add(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &r)
}

// Clear removes all rules.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Requests is the number of requests received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Injected is the number of faults injected.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	p.srv.Close()
	p.transport.CloseIdleConnections()
}

// slowBody trickles a body.
type slowBody struct {
	io.ReadCloser
	delay time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	time.Sleep(b.delay)
	return b.ReadCloser.Read(p[:min(len(p), 16<<10)])
}

// cutBody passes on left bytes and then fails, which makes the reverse
// proxy abort the response and close the client's connection.
type cutBody struct {
	io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.ReadCloser.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}
