package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
	"unicode/utf8"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Name    string    // the object's name, relative to the store root
	Size    int64     // length in bytes
	ModTime time.Time // when the current content was written
	// ETag identifies the current content; it changes when the content does.
	// It is opaque: pass it back in Condition.IfMatch, never parse it. The dir
	// and mem stores use the hex SHA-256 of the content, S3 its own ETag.
	ETag string
}

// Condition makes PutIf a conditional write. At most one field may be set;
// the zero Condition writes unconditionally.
type Condition struct {
	// IfNoneMatch creates the object only if no object of that name exists.
	IfNoneMatch bool
	// IfMatch replaces the object only if it exists and its ETag equals this.
	IfMatch string
}

// Object is an open object for random access, the way segment readers use
// it. Reads at or past Size return io.EOF exactly as os.File.ReadAt does: a
// read that ends past Size returns the bytes that exist and io.EOF.
// ReadAt is safe for concurrent use.
type Object interface {
	io.ReaderAt
	io.Closer
	// Size is the object's length when it was opened.
	Size() int64
}

// Store is a flat object namespace with atomic whole-object writes.
//
// Names are slash-separated relative paths ("checkpoints/chk-00000000000000000042/MANIFEST",
// "segments/ab/ab12…seg", "leases/job") that satisfy ValidateName; a name is
// never interpreted outside the store root. Because the dir store maps names
// to files, a name must not also be a directory of other names: "a" and "a/b"
// cannot both exist.
//
// Every method that takes a context stops when it is done and then returns an
// error for which errors.Is(err, ctx.Err()) holds. Failures are *Error values
// classified with ErrConfig or ErrUnavailable where that applies. All methods
// are safe for concurrent use; after Close they return ErrClosed.
type Store interface {
	// Put stores exactly size bytes read from r under name, replacing any
	// object of that name. It is atomic: concurrent readers see the old object
	// or the whole new one, never a part. If r yields fewer or more than size
	// bytes, or anything fails, Put returns an error and the old object (or its
	// absence) is unchanged.
	Put(ctx context.Context, name string, r io.Reader, size int64) error

	// PutIf is Put under cond and returns the new object's info. When cond
	// does not hold it returns an error wrapping ErrPreconditionFailed and
	// changes nothing. Of any number of writers racing with the same
	// condition, exactly one wins.
	//
	// A write whose outcome is unknown (the connection broke after the
	// request was sent) may be retried and then fail with
	// ErrPreconditionFailed although the first attempt won; holders of leases
	// and pointers re-read the object to tell.
	PutIf(ctx context.Context, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error)

	// Get opens the whole object for sequential reading. The reader yields
	// exactly the content described by the returned info (ErrNotExist if
	// there is no such object); the caller closes it.
	Get(ctx context.Context, name string) (io.ReadCloser, ObjectInfo, error)

	// Open opens the object for random access (ErrNotExist if absent). If the
	// object is replaced while open, reads go on returning the version opened
	// or fail; they never mix two versions. ReadAt has no context of its own:
	// it uses ctx, so reads fail once ctx is done.
	Open(ctx context.Context, name string) (Object, error)

	// Stat returns the object's info, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, name string) (ObjectInfo, error)

	// List yields every object whose name starts with prefix (a plain string
	// prefix: "checkpoints/chk-" matches "checkpoints/chk-…/MANIFEST"), in
	// lexical byte order of Name. The empty prefix lists everything. An error
	// is yielded once, last. ETag is set where the store knows it without
	// reading the object (mem, s3) and empty otherwise (dir); call Stat for
	// it. Objects written or deleted during the iteration may or may not
	// appear.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]

	// Delete removes the object. Deleting an absent object is not an error.
	Delete(ctx context.Context, name string) error

	// Location is the store's address for messages, such as
	// "file:///var/lib/arkstate" or "s3://bucket/prefix (endpoint http://host:9000)".
	// It never contains credentials.
	Location() string

	// Close releases the store's resources. Objects opened from it must be
	// closed first. Close is idempotent.
	Close() error
}

// maxNameLen bounds names so that, with a prefix, they stay within S3's
// 1024-byte key limit and common file-system path limits.
const maxNameLen = 900

// ReservedPrefix starts the names of a store's own files (a directory
// store's temporary files and lock file). Object names may not use it in
// any segment, so List can skip those files without hiding objects.
const ReservedPrefix = ".arkstate-"

// ValidateName reports whether name is a valid object name: a non-empty,
// relative, slash-separated path of at most 900 bytes of UTF-8 with
//   - no empty, "." or ".." segment,
//   - no segment ending in a dot or space (Windows drops them),
//   - no segment starting with ".arkstate-" (the dir store's own files),
//   - no segment naming a Windows device ("nul", "com1.seg"),
//   - none of the characters \ : * ? " < > | nor control characters, which
//     some file systems refuse or interpret.
//
// The rules are the same for every store, so that a checkpoint can be copied
// between S3 and a directory on any system, and a valid name never addresses
// anything outside the store root. The error wraps ErrInvalidName and quotes
// name.
func ValidateName(name string) error {
	if err := checkPath(name, false); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, err)
	}
	return nil
}

// ValidatePrefix checks a List prefix: empty, or a name whose last segment
// may be partial or empty (a trailing slash). The error wraps
// ErrInvalidName.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkPath(prefix, true); err != nil {
		return fmt.Errorf("%w: prefix %q: %s", ErrInvalidName, prefix, err)
	}
	return nil
}

// PathProblem says what makes name an invalid object name, unwrapped, for
// callers that put it in their own message (an S3 store's prefix); nil when
// it is valid.
func PathProblem(name string) error { return checkPath(name, false) }

func checkPath(name string, isPrefix bool) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("longer than %d bytes", maxNameLen)
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case name[0] == '/':
		return errors.New("absolute path")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
		if strings.ContainsRune(`\:*?"<>|`, r) {
			return fmt.Errorf("character %q not allowed", r)
		}
	}
	segs := strings.Split(name, "/")
	if isPrefix {
		// A prefix's last segment is partial ("chk-", or empty after a
		// slash) and only matched as a string, so only its characters count.
		segs = segs[:len(segs)-1]
	}
	for _, seg := range segs {
		switch {
		case seg == "":
			return errors.New("empty path segment")
		case seg == "." || seg == "..":
			return fmt.Errorf("%q path segment", seg)
		case strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " "):
			// Windows silently drops them, so two names would share a file.
			return fmt.Errorf("segment %q ends with a dot or space", seg)
		case strings.HasPrefix(seg, ReservedPrefix):
			return fmt.Errorf("segment starts with reserved %q", ReservedPrefix)
		case isWindowsDevice(seg):
			// On Windows "nul" or "com1.seg" is a device, not a file.
			return fmt.Errorf("segment %q is a Windows device name", seg)
		}
	}
	return nil
}

// isWindowsDevice reports whether seg names a DOS device (CON, PRN, AUX,
// NUL, COM0-9, LPT0-9), with or without an extension, in any case.
func isWindowsDevice(seg string) bool {
	base, _, _ := strings.Cut(seg, ".")
	switch strings.ToUpper(base) {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	if len(base) == 4 {
		prefix := strings.ToUpper(base[:3])
		return (prefix == "COM" || prefix == "LPT") && base[3] >= '0' && base[3] <= '9'
	}
	return false
}
