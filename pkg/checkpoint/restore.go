package checkpoint

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// Errors of Restore.
var (
	// ErrTargetNotEmpty means the restore target already holds objects and
	// RestoreOptions.Force was not set.
	ErrTargetNotEmpty = errors.New("restore target is not empty")
	// ErrSameStore means the restore target is the source store itself.
	ErrSameStore = errors.New("restore target is the source store")
)

// DefaultRestoreConcurrency is how many segments Restore copies at once:
// enough to hide an object store's latency, few enough that the spooled
// copies stay small.
const DefaultRestoreConcurrency = 4

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// DryRun plans the restore and checks the source's manifests and the
	// presence and sizes of its segments, and writes nothing. The target
	// may then be nil, meaning one that does not exist yet.
	DryRun bool
	// Force restores into a target that already holds objects. Its marker,
	// if any, must be of the same job; same-named objects are replaced.
	Force bool
	// Progress, if set, is called from one goroutine at a time as segments
	// are read and written, with done advancing to total (the bytes of all
	// segments).
	Progress func(done, total int64)
	// SpoolDir holds each segment of a source that is not local (S3)
	// between reading and writing, where it is verified ("" = os.TempDir).
	// It needs room for Concurrency of the largest segments.
	SpoolDir string
	// Concurrency is the number of segments copied at once (0 or less means
	// DefaultRestoreConcurrency).
	Concurrency int
}

// RestorePlan says what a restore copies, and whether it completed.
type RestorePlan struct {
	// Checkpoint is the restored checkpoint.
	Checkpoint uint64 `json:"checkpoint_id"`
	// Chain lists the checkpoints whose manifests are copied, oldest first:
	// the last full checkpoint at or before Checkpoint, then each
	// incremental one up to it, so the copy's parent chain is complete.
	Chain []uint64 `json:"chain_checkpoint_ids"`
	// Source and Target are the stores' addresses, as Open takes them
	// (store.Address); an S3 store's endpoint is in SourceEndpoint and
	// TargetEndpoint.
	Source         string `json:"source"`
	SourceEndpoint string `json:"source_endpoint,omitempty"`
	Target         string `json:"target"`
	TargetEndpoint string `json:"target_endpoint,omitempty"`
	// Segments and SegmentBytes count the distinct segments the chain's
	// manifests reference.
	Segments     int   `json:"segment_count"`
	SegmentBytes int64 `json:"segment_bytes"`
	// ManifestBytes is the size of the copied manifests.
	ManifestBytes int64 `json:"manifest_bytes"`
	// Files and Bytes count every object written: segments, manifests and
	// the store marker.
	Files int   `json:"file_count"`
	Bytes int64 `json:"written_bytes"`
	// Requests estimates the store operations of the restore: listings,
	// reads and writes on both stores (a multipart transfer counts as one).
	Requests int  `json:"request_count"`
	DryRun   bool `json:"dry_run"`
	// Completed is true once the last manifest is written.
	Completed bool `json:"completed"`
}

// restoreSource is what planning learned: each manifest's bytes as stored
// and the segments to copy.
type restoreSource struct {
	manifests []rawManifest // oldest first
	segments  []format.SegmentRef
	users     map[string]uint64 // segment hash -> newest checkpoint naming it, for messages
}

type rawManifest struct {
	m    *format.Manifest
	data []byte
}

// Restore copies checkpoint id of src into dst so that dst can be used as
// the job's store: the store marker, every segment the checkpoint and its
// ancestors back to their last full checkpoint reference, and those
// manifests. It copies bytes as stored, so the copy is identical to the
// source.
//
// Each segment is verified before it is written: its SHA-256 must equal its
// name, its size the manifest's, and every block must pass format Verify.
// Segments are written first and manifests last, oldest first, so an
// interrupted restore never leaves a manifest that names a missing segment
// or parent. Damaged input is refused with an error naming the checkpoint
// and the file (a *format.CorruptError for damage); if dst was empty, what
// the failed restore wrote is then removed again.
//
// A non-empty dst is refused with ErrTargetNotEmpty unless opts.Force. The
// returned plan describes the copy also when it failed part way.
func Restore(ctx context.Context, src *Repo, id uint64, dst store.Store, opts RestoreOptions) (*RestorePlan, error) {
	source, err := planRestore(ctx, src, id)
	if err != nil {
		return nil, err
	}
	plan := &RestorePlan{Checkpoint: id, DryRun: opts.DryRun, Segments: len(source.segments)}
	plan.Source, plan.SourceEndpoint = store.Address(src.store)
	for _, rm := range source.manifests {
		plan.Chain = append(plan.Chain, rm.m.CheckpointID)
		plan.ManifestBytes += int64(len(rm.data))
	}
	for _, ref := range source.segments {
		plan.SegmentBytes += ref.Size
	}
	plan.Files = len(source.segments) + len(source.manifests) + 1
	plan.Bytes = plan.SegmentBytes + plan.ManifestBytes + markerSizeEstimate
	fanouts := map[string]bool{}
	for _, ref := range source.segments {
		fanouts[ref.Hash[:2]] = true
	}
	// Reads: manifests, fan-out listings, segments. Writes: the emptiness
	// listing, marker write and read-back, segments, manifests.
	plan.Requests = len(source.manifests) + len(fanouts) + len(source.segments) +
		3 + len(source.segments) + len(source.manifests)

	if dst == nil {
		if !opts.DryRun {
			return plan, fmt.Errorf("checkpoint: restore %d: no target store", id)
		}
		return plan, nil
	}
	plan.Target, plan.TargetEndpoint = store.Address(dst)
	empty, err := checkRestoreTarget(ctx, src, dst, opts.Force)
	if err != nil {
		return plan, fmt.Errorf("checkpoint: restore %d: %w", id, err)
	}
	if opts.DryRun {
		return plan, nil
	}
	if _, err := InitRepo(ctx, dst, src.marker.JobID, src.marker.KeyGroups); err != nil {
		return plan, fmt.Errorf("checkpoint: restore %d: %w", id, err)
	}
	written, err := copySegments(ctx, src, dst, source, opts)
	if err == nil {
		err = writeManifests(ctx, dst, source.manifests, opts.Force)
	}
	if err != nil {
		if empty {
			err = errors.Join(err, undoRestore(ctx, dst, written))
		}
		return plan, fmt.Errorf("checkpoint: restore %d to %s: %w", id, dst.Location(), err)
	}
	plan.Completed = true
	return plan, nil
}

// markerSizeEstimate is about the size of an ARKSTATE marker; the plan
// counts it in Bytes.
const markerSizeEstimate = 160

// planRestore reads checkpoint id's manifest and its ancestors back to the
// last full checkpoint, collects the segments they name, and checks that
// each is stored with the recorded size.
func planRestore(ctx context.Context, src *Repo, id uint64) (*restoreSource, error) {
	var chain []rawManifest
	for cur := id; ; {
		m, data, err := src.manifestRaw(ctx, cur)
		if errors.Is(err, ErrCheckpointNotFound) && cur != id {
			child := chain[0].m
			return nil, fmt.Errorf("checkpoint %d: %w", id, &format.CorruptError{File: format.ManifestPath(cur), Offset: -1, Record: "manifest",
				Err: fmt.Errorf("%w: the MANIFEST is missing, but checkpoint %d builds on checkpoint %d", format.ErrTruncated, child.CheckpointID, cur)})
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", id, err)
		}
		chain = append([]rawManifest{{m, data}}, chain...)
		if m.Kind == format.KindFull {
			break
		}
		cur = m.Parent // Validate guarantees Parent < CheckpointID: the walk ends
	}

	src2 := &restoreSource{manifests: chain, users: map[string]uint64{}}
	byHash := map[string]format.SegmentRef{}
	for _, rm := range chain {
		for _, o := range rm.m.Operators {
			for _, rs := range o.Ranges {
				for _, l := range rs.Layers {
					if prev, ok := byHash[l.Hash]; ok && prev.Size != l.Size {
						return nil, fmt.Errorf("checkpoint %d: %w", id, &format.CorruptError{File: format.ManifestPath(rm.m.CheckpointID), Offset: -1, Record: "manifest",
							Err: fmt.Errorf("%w: segment %s has size %d, checkpoint %d says %d", format.ErrMalformed, l.Hash, l.Size, src2.users[l.Hash], prev.Size)})
					}
					byHash[l.Hash] = l
					src2.users[l.Hash] = rm.m.CheckpointID
				}
			}
		}
	}
	for _, ref := range byHash {
		src2.segments = append(src2.segments, ref)
	}
	slices.SortFunc(src2.segments, func(a, b format.SegmentRef) int { return cmp.Compare(a.Hash, b.Hash) })

	// One listing per fan-out directory finds missing and short segments
	// before anything is written; a Stat per segment would cost a request
	// each on S3 and a full read each on a directory store.
	stored := map[string]int64{}
	listed := map[string]bool{}
	for _, ref := range src2.segments {
		dir := format.SegmentFanoutPrefix(ref.Hash)
		if listed[dir] {
			continue
		}
		listed[dir] = true
		for info, err := range src.store.List(ctx, dir) {
			if err != nil {
				return nil, fmt.Errorf("checkpoint %d: %w", id, err)
			}
			stored[info.Name] = info.Size
		}
	}
	hybrid, _ := store.As[store.RemoteFallback](src.store)
	for _, ref := range src2.segments {
		name := format.SegmentPath(ref.Hash)
		size, ok := stored[name]
		if ok && size != ref.Size && hybrid != nil {
			// A hybrid listing shows the local copy; copySegment reads a
			// damaged one from the remote copy, so that one decides.
			info, err := hybrid.Remote().Stat(ctx, name)
			if err == nil {
				size = info.Size
			}
		}
		switch {
		case !ok:
			return nil, fmt.Errorf("checkpoint %d: %w", src2.users[ref.Hash], &format.CorruptError{File: name, Offset: -1, Record: "segment",
				Err: fmt.Errorf("%w: the segment is missing", format.ErrTruncated)})
		case size != ref.Size:
			return nil, fmt.Errorf("checkpoint %d: %w", src2.users[ref.Hash], &format.CorruptError{File: name, Offset: -1, Record: "segment",
				Err: fmt.Errorf("%w: %d bytes, the manifest says %d", format.ErrTruncated, size, ref.Size)})
		}
	}
	return src2, nil
}

// manifestRaw is Manifest that also returns the bytes as stored, so that a
// copy is byte-identical (fields a newer writer added survive it).
func (r *Repo) manifestRaw(ctx context.Context, id uint64) (*format.Manifest, []byte, error) {
	name := format.ManifestPath(id)
	data, err := readSmall(ctx, r.store, name, format.MaxManifestSize)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %d in %s", ErrCheckpointNotFound, id, r.store.Location())
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := format.DecodeManifest(data, name)
	if err != nil {
		return nil, nil, err
	}
	if m.CheckpointID != id {
		return nil, nil, &format.CorruptError{File: name, Offset: -1, Record: "manifest", Err: fmt.Errorf("%w: checkpoint_id %d in the directory of checkpoint %d", format.ErrMalformed, m.CheckpointID, id)}
	}
	if m.JobID != r.marker.JobID || m.KeyGroups != r.marker.KeyGroups {
		return nil, nil, &format.CorruptError{File: name, Offset: -1, Record: "manifest", Err: fmt.Errorf("%w: job %q with %d key groups in a store of job %q with %d", format.ErrMalformed, m.JobID, m.KeyGroups, r.marker.JobID, r.marker.KeyGroups)}
	}
	return m, data, nil
}

// checkRestoreTarget refuses the source itself, a non-empty target without
// force, and a target of another job. It reports whether the target is empty.
func checkRestoreTarget(ctx context.Context, src *Repo, dst store.Store, force bool) (empty bool, err error) {
	if dst.Location() == src.store.Location() {
		return false, fmt.Errorf("%w: %s", ErrSameStore, dst.Location())
	}
	empty, err = storeEmpty(ctx, dst)
	if err != nil || empty {
		return empty, err
	}
	if !force {
		return false, fmt.Errorf("%w: %s holds objects (use force to restore into it)", ErrTargetNotEmpty, dst.Location())
	}
	r, err := OpenRepo(ctx, dst)
	if errors.Is(err, ErrNotRepo) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.marker.JobID != src.marker.JobID || r.marker.KeyGroups != src.marker.KeyGroups {
		return false, fmt.Errorf("%w: %s holds job %q with %d key groups, the checkpoint is of job %q with %d",
			ErrJobMismatch, dst.Location(), r.marker.JobID, r.marker.KeyGroups, src.marker.JobID, src.marker.KeyGroups)
	}
	return false, nil
}

func storeEmpty(ctx context.Context, s store.Store) (bool, error) {
	for _, err := range s.List(ctx, "") {
		if err != nil {
			return false, err
		}
		return false, nil
	}
	return true, nil
}

// restoreProgress serialises progress callbacks from the copying workers.
// done counts each segment byte twice, once read and once written, and is
// reported halved, so it reaches total when the last segment is stored.
type restoreProgress struct {
	mu    sync.Mutex
	fn    func(done, total int64)
	done  int64
	total int64
}

func (p *restoreProgress) add(n int64) {
	if p.fn == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.fn(p.done/2, p.total)
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(int64(n))
	return n, err
}

// copySegments copies the segments with opts.Concurrency workers and
// returns the names it wrote, also on failure. The first failure stops the
// others.
func copySegments(ctx context.Context, src *Repo, dst store.Store, source *restoreSource, opts RestoreOptions) ([]string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	prog := &restoreProgress{fn: opts.Progress}
	for _, ref := range source.segments {
		prog.total += ref.Size
	}
	if opts.Progress != nil {
		opts.Progress(0, prog.total)
	}
	workers := opts.Concurrency
	if workers <= 0 {
		workers = DefaultRestoreConcurrency
	}
	workers = min(workers, len(source.segments))
	jobs := make(chan format.SegmentRef)
	var (
		mu      sync.Mutex
		written []string
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for ref := range jobs {
				err := copySegment(ctx, src, dst, ref, opts.SpoolDir, prog.add)
				if err != nil {
					cancel(fmt.Errorf("checkpoint %d: %w", source.users[ref.Hash], err))
					continue
				}
				mu.Lock()
				written = append(written, format.SegmentPath(ref.Hash))
				mu.Unlock()
			}
		})
	}
feed:
	for _, ref := range source.segments {
		select {
		case jobs <- ref:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return written, err
	}
	return written, nil
}

// copySegment verifies one segment and writes it to dst. From a store
// whose objects are local (directory, memory), it verifies the segment in
// place and streams the same open object to dst; from others (S3) it
// downloads the segment once into a spool file and works from there.
//
// Through a hybrid store, a segment whose local copy is damaged is copied
// from the remote copy of the same name (segments are immutable and named
// by their SHA-256, so it is the same segment), as RestoreBackend does; the
// store logs and counts it, and the local copy is left for verify to report.
func copySegment(ctx context.Context, src *Repo, dst store.Store, ref format.SegmentRef, spoolDir string, progress func(int64)) error {
	err := copySegmentFrom(ctx, src.store, dst, ref, spoolDir, progress)
	hybrid, ok := store.As[store.RemoteFallback](src.store)
	var ce *format.CorruptError
	if err == nil || !ok || !errors.As(err, &ce) || ce.File != format.SegmentPath(ref.Hash) {
		return err
	}
	hybrid.NoteLocalDamage(ce.File, err)
	return copySegmentFrom(ctx, hybrid.Remote(), dst, ref, spoolDir, progress)
}

func copySegmentFrom(ctx context.Context, src store.Store, dst store.Store, ref format.SegmentRef, spoolDir string, progress func(int64)) error {
	if _, local := store.As[store.LocalReads](src); local {
		return copySegmentInPlace(ctx, src, dst, ref, progress)
	}
	return copySegmentSpooled(ctx, src, dst, ref, spoolDir, progress)
}

// copySegmentInPlace verifies the segment's blocks through one open object,
// then streams that object to dst through a reader that fails the write
// unless the bytes hash to the segment's name. Reads of one open object
// all see the same version, so the bytes verified are the bytes written;
// a store never publishes an object whose reader failed.
func copySegmentInPlace(ctx context.Context, src store.Store, dst store.Store, ref format.SegmentRef, progress func(int64)) error {
	seg, obj, err := openSegment(ctx, src, ref)
	if err != nil {
		return err
	}
	defer obj.Close()
	if err := verifySegment(seg, ref); err != nil {
		return err
	}
	// Each byte counts twice (see restoreProgress): read and written.
	count := func(n int64) { progress(2 * n) }
	r := &hashCheckReader{r: countingReader{io.NewSectionReader(obj, 0, ref.Size), count}, h: sha256.New(), size: ref.Size, ref: ref}
	return dst.Put(ctx, format.SegmentPath(ref.Hash), r, ref.Size)
}

// copySegmentSpooled reads one segment into a spool file while hashing it,
// checks it completely there, and only then writes it to dst.
func copySegmentSpooled(ctx context.Context, src store.Store, dst store.Store, ref format.SegmentRef, spoolDir string, progress func(int64)) error {
	name := format.SegmentPath(ref.Hash)
	rc, _, err := src.Get(ctx, name)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(spoolDir, "arkstate-restore-*.seg")
	if err != nil {
		return fmt.Errorf("spool %s: %w", name, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	h := sha256.New()
	// One byte past the recorded size tells a longer object from an exact one.
	n, err := io.Copy(io.MultiWriter(f, h), countingReader{io.LimitReader(rc, ref.Size+1), progress})
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if n != ref.Size {
		return &format.CorruptError{File: name, Offset: -1, Record: "segment",
			Err: fmt.Errorf("%w: read %d bytes, the manifest says %d", format.ErrTruncated, n, ref.Size)}
	}
	if err := checkSegmentHash(h, ref); err != nil {
		return err
	}
	seg, err := format.OpenSegment(f, n, name)
	if err != nil {
		return err
	}
	if err := verifySegment(seg, ref); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool %s: %w", name, err)
	}
	return dst.Put(ctx, name, countingReader{f, progress}, n)
}

// verifySegment reads every block of the segment and checks it against its
// manifest entry.
func verifySegment(seg *format.SegmentReader, ref format.SegmentRef) error {
	if err := seg.Verify(); err != nil {
		return err
	}
	if got := seg.Info().Entries; got != ref.Entries {
		return &format.CorruptError{File: format.SegmentPath(ref.Hash), Offset: -1, Record: "segment",
			Err: fmt.Errorf("%w: holds %d entries, the manifest says %d", format.ErrMalformed, got, ref.Entries)}
	}
	return nil
}

func checkSegmentHash(h hash.Hash, ref format.SegmentRef) error {
	if sum := hex.EncodeToString(h.Sum(nil)); sum != ref.Hash {
		return &format.CorruptError{File: format.SegmentPath(ref.Hash), Offset: -1, Record: "segment",
			Err: fmt.Errorf("%w: content has sha256 %s, its name says %s", format.ErrChecksum, sum, ref.Hash)}
	}
	return nil
}

// hashCheckReader passes size bytes through and fails, with the last of
// them and on every read after, when they do not hash to the segment's
// name. Every store checks that its reader is drained and fails the write
// on a reader error, so a segment with the wrong content is never stored.
type hashCheckReader struct {
	r    io.Reader
	h    hash.Hash
	size int64
	n    int64
	ref  format.SegmentRef
	err  error // sticky
}

func (c *hashCheckReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n >= c.size && (err == nil || err == io.EOF) {
		if herr := checkSegmentHash(c.h, c.ref); herr != nil {
			c.err = herr
			return n, herr
		}
	}
	return n, err
}

// writeManifests writes the manifests oldest first, each after its parent.
// Without force they are create-only, so a writer that appeared in the
// target meanwhile is not overwritten.
func writeManifests(ctx context.Context, dst store.Store, chain []rawManifest, force bool) error {
	for _, rm := range chain {
		name := format.ManifestPath(rm.m.CheckpointID)
		var err error
		if force {
			err = dst.Put(ctx, name, bytes.NewReader(rm.data), int64(len(rm.data)))
		} else {
			_, err = dst.PutIf(ctx, name, bytes.NewReader(rm.data), int64(len(rm.data)), store.Condition{IfNoneMatch: true})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// undoRestore removes what a failed restore wrote into a target that was
// empty before, so that the target is empty again rather than holding
// orphans. It runs even when ctx was cancelled.
func undoRestore(ctx context.Context, dst store.Store, written []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var errs []error
	for _, name := range append(written, MarkerName) {
		if err := dst.Delete(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("removing the partial restore: %w", errors.Join(errs...))
	}
	return nil
}
