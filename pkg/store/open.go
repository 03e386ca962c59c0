package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// OpenOptions carries what a store address cannot say.
type OpenOptions struct {
	// S3 configures s3:// addresses: endpoint, region, path-style, SSL,
	// static credentials, part sizes and retries.
	S3 S3Options
	// MustExist refuses a local directory that does not exist instead of
	// creating it. The local side of a hybrid store is created either way:
	// an empty local side reads everything from the remote store, which is
	// how a standby on another machine starts.
	MustExist bool
	// Hybrid tunes hybrid:// stores.
	Hybrid HybridOptions
}

// opener opens the store named by a parsed address of its scheme.
type opener func(ctx context.Context, u *url.URL, opts OpenOptions) (Store, error)

// schemes is the table of address schemes. It is built here, in one place,
// rather than by registration from init functions, so that what Open accepts
// is visible at a glance.
func schemes() map[string]opener {
	return map[string]opener{
		"file":   openFileURL,
		"hybrid": openHybridURL,
		"mem":    openMemURL,
		"s3":     openS3URL,
	}
}

// schemeRE matches a URL scheme. It needs two characters so that a Windows
// drive letter ("C:\state") reads as a path.
var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]+):`)

// AddressScheme returns the scheme of a store address, lowercased, and
// false for a plain path (a Windows drive letter is a path).
func AddressScheme(address string) (string, bool) {
	m := schemeRE.FindStringSubmatch(address)
	if m == nil {
		return "", false
	}
	return strings.ToLower(m[1]), true
}

// Open opens the store at address: a plain path or file:///path (a local
// directory, created if missing), mem://name (a new, empty memory store),
// s3://bucket/prefix, or hybrid:///local/dir?remote=ADDRESS (a local
// directory copied to the remote store ADDRESS, usually an s3:// one; see
// HybridStore). Every process that opens a store, `arkstate run` and the
// CLI's commands alike, opens it here. A malformed address or unknown scheme fails with an
// error wrapping ErrConfig that names it; credentials belong in opts, and an
// address carrying them is refused without being repeated.
func Open(ctx context.Context, address string, opts OpenOptions) (Store, error) {
	m := schemeRE.FindStringSubmatch(address)
	if m == nil {
		if address == "" {
			return nil, &Error{Op: "open store", Kind: ErrConfig, Err: errors.New("empty store address")}
		}
		if opts.MustExist {
			return OpenDir(address)
		}
		return NewDir(address)
	}
	scheme := strings.ToLower(m[1])
	table := schemes()
	open, ok := table[scheme]
	if !ok {
		known := make([]string, 0, len(table))
		for k := range table {
			known = append(known, k+"://")
		}
		slices.Sort(known)
		return nil, &Error{Op: "open store", Kind: ErrConfig,
			Err: fmt.Errorf("unknown scheme %q in store address (want a path or %s)", scheme, strings.Join(known, ", "))}
	}
	if !strings.HasPrefix(address[len(scheme)+1:], "//") {
		return nil, &Error{Op: "open store", Kind: ErrConfig,
			Err: fmt.Errorf("store address with scheme %q must start with %s://", scheme, scheme)}
	}
	u, err := url.Parse(address)
	if err != nil {
		// url's error quotes the whole address, which may hold credentials.
		return nil, &Error{Op: "open store", Kind: ErrConfig, Err: fmt.Errorf("malformed %s:// store address", scheme)}
	}
	if u.User != nil {
		return nil, &Error{Op: "open store", Location: scheme + "://" + u.Host + u.Path, Kind: ErrConfig,
			Err: errors.New("store address must not contain credentials: pass them as options or through the AWS configuration")}
	}
	if (u.RawQuery != "" && scheme != "hybrid") || u.Fragment != "" {
		return nil, &Error{Op: "open store", Location: scheme + "://" + u.Host + u.Path, Kind: ErrConfig,
			Err: errors.New("store address must not have a query or fragment")}
	}
	return open(ctx, u, opts)
}

func openFileURL(_ context.Context, u *url.URL, opts OpenOptions) (Store, error) {
	p, err := fileURLPath(u)
	if err != nil {
		return nil, err
	}
	if opts.MustExist {
		return OpenDir(filepath.FromSlash(p))
	}
	return NewDir(filepath.FromSlash(p))
}

// fileURLPath returns the local path a file:// URL names, or why it names
// none.
func fileURLPath(u *url.URL) (string, error) {
	if u.Host != "" && u.Host != "localhost" {
		return "", &Error{Op: "open store", Location: "file://" + u.Host + u.Path, Kind: ErrConfig,
			Err: fmt.Errorf("file:// address names host %q; only local paths (file:///path) are supported", u.Host)}
	}
	p := u.Path
	// file:///C:/state is a Windows drive path.
	if len(p) >= 3 && p[0] == '/' && p[2] == ':' {
		p = p[1:]
	}
	if p == "" {
		return "", &Error{Op: "open store", Location: "file://", Kind: ErrConfig, Err: errors.New("file:// address has no path")}
	}
	return p, nil
}

func openMemURL(_ context.Context, u *url.URL, _ OpenOptions) (Store, error) {
	return NewMem(u.Host + u.Path), nil
}

func openS3URL(ctx context.Context, u *url.URL, opts OpenOptions) (Store, error) {
	if u.Host == "" {
		return nil, &Error{Op: "open store", Location: "s3://", Kind: ErrConfig, Err: errors.New("s3:// address has no bucket")}
	}
	return NewS3(ctx, u.Host, u.Path, opts.S3)
}

// HybridAddress returns the hybrid:// address of a local directory, made
// absolute, copied to the store at remote.
func HybridAddress(localDir, remote string) (string, error) {
	abs, err := filepath.Abs(localDir)
	if err != nil {
		return "", &Error{Op: "open store", Location: localDir, Kind: ErrConfig, Err: err}
	}
	u := url.URL{Scheme: "hybrid", Path: filepath.ToSlash(abs), RawQuery: url.Values{"remote": {remote}}.Encode()}
	if !strings.HasPrefix(u.Path, "/") { // a Windows drive path
		u.Path = "/" + u.Path
	}
	return u.String(), nil
}

func openHybridURL(ctx context.Context, u *url.URL, opts OpenOptions) (Store, error) {
	where := "hybrid://" + u.Host + u.Path
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, &Error{Op: "open store", Location: where, Kind: ErrConfig, Err: errors.New("malformed query in hybrid:// address")}
	}
	for k := range q {
		if k != "remote" {
			return nil, &Error{Op: "open store", Location: where, Kind: ErrConfig,
				Err: fmt.Errorf("hybrid:// address has unknown parameter %q (want only remote=ADDRESS)", k)}
		}
	}
	remoteAddr := q.Get("remote")
	if len(q["remote"]) != 1 || remoteAddr == "" {
		return nil, &Error{Op: "open store", Location: where, Kind: ErrConfig,
			Err: errors.New("hybrid:// address needs exactly one remote=ADDRESS, e.g. hybrid:///var/lib/job/state?remote=s3://bucket/prefix")}
	}
	if m := schemeRE.FindStringSubmatch(remoteAddr); m != nil && strings.EqualFold(m[1], "hybrid") {
		return nil, &Error{Op: "open store", Location: where, Kind: ErrConfig, Err: errors.New("the remote of a hybrid:// address cannot be hybrid itself")}
	}
	localURL := *u
	localURL.Scheme, localURL.RawQuery = "file", ""
	if _, err := fileURLPath(&localURL); err != nil {
		return nil, err
	}
	// The remote before the local directory is created: a wrong bucket or
	// credentials leave nothing behind.
	remote, err := Open(ctx, remoteAddr, opts)
	if err != nil {
		return nil, err
	}
	localOpts := opts
	localOpts.MustExist = false
	local, err := openFileURL(ctx, &localURL, localOpts)
	if err != nil {
		remote.Close()
		return nil, err
	}
	return NewHybridWithOptions(local, remote, opts.Hybrid), nil
}
