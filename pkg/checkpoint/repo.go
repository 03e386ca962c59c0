package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// Errors of the checkpoint layer (the Store's own are pkg/store's).
var (
	// ErrNotRepo means the store has no ARKSTATE marker: it is empty or not
	// an arkstate checkpoint store.
	ErrNotRepo = errors.New("not an arkstate store (no ARKSTATE marker)")
	// ErrJobMismatch means the store belongs to another job or was created
	// with another key-group count than the caller's configuration.
	ErrJobMismatch = errors.New("store belongs to a different job")
	// ErrCheckpointNotFound means no complete checkpoint has the given id.
	ErrCheckpointNotFound = errors.New("checkpoint not found")
	// ErrNoCheckpoints means the store holds no complete checkpoint.
	ErrNoCheckpoints = errors.New("store has no checkpoints")
	// ErrInvalidRef means a checkpoint reference is neither a positive
	// number, a chk-<id> directory name nor "latest".
	ErrInvalidRef = errors.New("not a checkpoint id")
	// ErrCheckpointExists means another writer committed that id first.
	ErrCheckpointExists = errors.New("checkpoint already committed")
)

// MarkerName is the store marker object, written when a store is created.
const MarkerName = "ARKSTATE"

// MarkerFormat identifies the marker's JSON.
const MarkerFormat = "arkstate-store"

// MarkerVersion1 is the store layout of docs/ARCHITECTURE.md: checkpoints/, segments/,
// txlog/ and leases/ under one root.
const MarkerVersion1 = 1

// maxMarkerSize bounds the marker read: it is a few hundred bytes.
const maxMarkerSize = 64 << 10

// Marker is the content of the ARKSTATE object.
type Marker struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	JobID     string    `json:"job_id"`
	KeyGroups uint32    `json:"key_groups"`
}

// Repo is a checkpoint store: the layout of docs/ARCHITECTURE.md over a Store.
type Repo struct {
	store  store.Store
	marker Marker
}

// Store returns the underlying store.
func (r *Repo) Store() store.Store { return r.store }

// Marker returns the store's marker.
func (r *Repo) Marker() Marker { return r.marker }

// InitRepo opens the checkpoint store in s, creating its marker if the store
// is new. An existing store must belong to jobID with keyGroups key groups:
// restoring a job's state into another job, or with another key-group count,
// would silently misplace every key.
func InitRepo(ctx context.Context, s store.Store, jobID string, keyGroups uint32) (*Repo, error) {
	if jobID == "" || keyGroups == 0 {
		return nil, fmt.Errorf("checkpoint: init store %s: job id and key-group count are required", s.Location())
	}
	m := Marker{Format: MarkerFormat, Version: MarkerVersion1, CreatedAt: time.Now().UTC().Truncate(time.Millisecond), JobID: jobID, KeyGroups: keyGroups}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	_, err = s.PutIf(ctx, MarkerName, bytes.NewReader(body), int64(len(body)), store.Condition{IfNoneMatch: true})
	if err != nil && !errors.Is(err, store.ErrPreconditionFailed) {
		return nil, fmt.Errorf("checkpoint: init store: %w", err)
	}
	r, err := OpenRepo(ctx, s)
	if err != nil {
		return nil, err
	}
	if r.marker.JobID != jobID || r.marker.KeyGroups != keyGroups {
		return nil, fmt.Errorf("%w: %s holds job %q with %d key groups, the configuration says job %q with %d",
			ErrJobMismatch, s.Location(), r.marker.JobID, r.marker.KeyGroups, jobID, keyGroups)
	}
	return r, nil
}

// OpenRepo opens an existing checkpoint store.
func OpenRepo(ctx context.Context, s store.Store) (*Repo, error) {
	data, err := readSmall(ctx, s, MarkerName, maxMarkerSize)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotRepo, s.Location())
	}
	if err != nil {
		return nil, err
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &format.CorruptError{File: MarkerName, Offset: -1, Record: "marker", Err: fmt.Errorf("%w: %v", format.ErrMalformed, err)}
	}
	if m.Format != MarkerFormat {
		return nil, &format.CorruptError{File: MarkerName, Offset: -1, Record: "marker", Err: fmt.Errorf("%w: format %q", format.ErrBadMagic, m.Format)}
	}
	if m.Version != MarkerVersion1 {
		return nil, &format.CorruptError{File: MarkerName, Offset: -1, Record: "marker", Err: fmt.Errorf("%w: store layout version %d", format.ErrUnsupportedVersion, m.Version)}
	}
	if m.KeyGroups == 0 || m.JobID == "" {
		return nil, &format.CorruptError{File: MarkerName, Offset: -1, Record: "marker", Err: fmt.Errorf("%w: job id and key groups are required", format.ErrMalformed)}
	}
	return &Repo{store: s, marker: m}, nil
}

// readSmall reads a whole object that must not exceed limit bytes.
func readSmall(ctx context.Context, s store.Store, name string, limit int64) ([]byte, error) {
	rc, info, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if info.Size > limit {
		return nil, &format.CorruptError{File: name, Offset: -1, Record: "object", Err: fmt.Errorf("%w: %d bytes, limit %d", format.ErrTooLarge, info.Size, limit)}
	}
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read %s: %w", name, err)
	}
	return data, nil
}

// IDs returns the ids of the checkpoints whose MANIFEST exists, ascending. A
// checkpoint directory without a MANIFEST is an unfinished checkpoint and is
// not listed (gc reports it).
func (r *Repo) IDs(ctx context.Context) ([]uint64, error) {
	var ids []uint64
	for o, err := range r.checkpointObjects(ctx) {
		if err != nil {
			return nil, err
		}
		if o.file == format.ManifestName {
			ids = append(ids, o.id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// checkpointObject is an object under checkpoints/: file of checkpoint id.
type checkpointObject struct {
	id   uint64
	file string
	info store.ObjectInfo
}

// checkpointObjects lists the objects of checkpoint directories, in
// listing order; names under checkpoints/ that are not a checkpoint's are
// left out. This is the one listing of checkpoints/.
func (r *Repo) checkpointObjects(ctx context.Context) iter.Seq2[checkpointObject, error] {
	return func(yield func(checkpointObject, error) bool) {
		for info, err := range r.store.List(ctx, format.CheckpointsPrefix) {
			if err != nil {
				yield(checkpointObject{}, fmt.Errorf("checkpoint: list checkpoints: %w", err))
				return
			}
			id, file, ok := format.ParseCheckpointObject(info.Name)
			if ok && !yield(checkpointObject{id: id, file: file, info: info}, nil) {
				return
			}
		}
	}
}

// Latest returns the id of the newest complete checkpoint.
func (r *Repo) Latest(ctx context.Context) (uint64, error) {
	ids, err := r.IDs(ctx)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("%w: %s", ErrNoCheckpoints, r.store.Location())
	}
	return ids[len(ids)-1], nil
}

// Resolve turns a user's checkpoint reference into an id: "latest", a
// number, or a directory name such as "chk-00000000000000000042".
func (r *Repo) Resolve(ctx context.Context, ref string) (uint64, error) {
	id, err := ParseRef(ref)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return r.Latest(ctx)
	}
	if _, err := r.store.Stat(ctx, format.ManifestPath(id)); err != nil {
		if errors.Is(err, store.ErrNotExist) {
			return 0, fmt.Errorf("%w: %d in %s", ErrCheckpointNotFound, id, r.store.Location())
		}
		return 0, err
	}
	return id, nil
}

// ParseRef parses a checkpoint reference without looking at a store: it
// returns the id, or 0 for "latest". Callers check references with it
// before any I/O; a malformed one is an error wrapping ErrInvalidRef.
func ParseRef(ref string) (uint64, error) {
	if ref == "latest" {
		return 0, nil
	}
	if id, ok := format.ParseCheckpointDir(ref); ok {
		return id, nil
	}
	if n, err := strconv.ParseUint(ref, 10, 64); err == nil && n > 0 {
		return n, nil
	}
	return 0, fmt.Errorf("%w: %q (want a number, chk-<id> or latest)", ErrInvalidRef, ref)
}

// Manifest reads and validates checkpoint id's manifest.
func (r *Repo) Manifest(ctx context.Context, id uint64) (*format.Manifest, error) {
	name := format.ManifestPath(id)
	data, err := readSmall(ctx, r.store, name, format.MaxManifestSize)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("%w: %d in %s", ErrCheckpointNotFound, id, r.store.Location())
	}
	if err != nil {
		return nil, err
	}
	m, err := format.DecodeManifest(data, name)
	if err != nil {
		return nil, err
	}
	if m.CheckpointID != id {
		return nil, &format.CorruptError{File: name, Offset: -1, Record: "manifest", Err: fmt.Errorf("%w: checkpoint_id %d in the directory of checkpoint %d", format.ErrMalformed, m.CheckpointID, id)}
	}
	if m.JobID != r.marker.JobID || m.KeyGroups != r.marker.KeyGroups {
		return nil, &format.CorruptError{File: name, Offset: -1, Record: "manifest", Err: fmt.Errorf("%w: job %q with %d key groups in a store of job %q with %d", format.ErrMalformed, m.JobID, m.KeyGroups, r.marker.JobID, r.marker.KeyGroups)}
	}
	return m, nil
}

// Commit writes m's manifest, the commit point of a checkpoint: create-only,
// so of two writers committing the same id exactly one wins and the other
// gets ErrCheckpointExists. Every segment m names must already be stored.
func (r *Repo) Commit(ctx context.Context, m *format.Manifest) error {
	if m.JobID != r.marker.JobID || m.KeyGroups != r.marker.KeyGroups {
		return fmt.Errorf("%w: manifest of job %q with %d key groups, store of job %q with %d", ErrJobMismatch, m.JobID, m.KeyGroups, r.marker.JobID, r.marker.KeyGroups)
	}
	data, err := format.EncodeManifest(m)
	if err != nil {
		return fmt.Errorf("checkpoint: commit %d: %w", m.CheckpointID, err)
	}
	_, err = r.store.PutIf(ctx, format.ManifestPath(m.CheckpointID), bytes.NewReader(data), int64(len(data)), store.Condition{IfNoneMatch: true})
	if errors.Is(err, store.ErrPreconditionFailed) {
		return fmt.Errorf("%w: %d in %s", ErrCheckpointExists, m.CheckpointID, r.store.Location())
	}
	if err != nil {
		return fmt.Errorf("checkpoint: commit %d: %w", m.CheckpointID, err)
	}
	return nil
}

// OpenSegment opens a segment a manifest names, checking that its size is
// the recorded one. The caller closes the returned Object after use.
func (r *Repo) OpenSegment(ctx context.Context, ref format.SegmentRef) (*format.SegmentReader, store.Object, error) {
	return openSegment(ctx, r.store, ref)
}

// openSegment is OpenSegment on store s.
func openSegment(ctx context.Context, s store.Store, ref format.SegmentRef) (*format.SegmentReader, store.Object, error) {
	name := format.SegmentPath(ref.Hash)
	if name == "" {
		return nil, nil, fmt.Errorf("checkpoint: invalid segment hash %q", ref.Hash)
	}
	obj, err := s.Open(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if obj.Size() != ref.Size {
		obj.Close()
		return nil, nil, &format.CorruptError{File: name, Offset: -1, Record: "segment", Err: fmt.Errorf("%w: %d bytes, the manifest says %d", format.ErrTruncated, obj.Size(), ref.Size)}
	}
	seg, err := format.OpenSegment(obj, obj.Size(), name)
	if err != nil {
		obj.Close()
		return nil, nil, err
	}
	return seg, obj, nil
}
