package checkpoint

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/arkstate/arkstate/internal/crashpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// ErrUnreadableManifest means retention found a manifest it could not read
// (damaged, or a parent that is missing) and so deleted nothing: the
// manifest may name segments, or be the ancestor a kept checkpoint needs.
var ErrUnreadableManifest = errors.New("a manifest cannot be read; nothing was deleted")

// DefaultGCGrace is the age below which GC keeps unreferenced objects: a
// writer uploads a checkpoint's segments before it commits the manifest
// that names them, and takes far less than this to do so.
const DefaultGCGrace = time.Hour

// OrphanKind classifies an object GC found unreferenced.
type OrphanKind string

// Orphan kinds.
const (
	// OrphanSegment is a segment no retained manifest names.
	OrphanSegment OrphanKind = "segment"
	// OrphanUnfinished is an object in a checkpoint directory without a
	// MANIFEST: a checkpoint that never completed, or a pruned one whose
	// deletion was interrupted.
	OrphanUnfinished OrphanKind = "unfinished_checkpoint"
	// OrphanTemporary is an upload that never became an object: a directory
	// store's temporary file or an S3 multipart upload never completed.
	OrphanTemporary OrphanKind = "temporary_upload"
	// OrphanUnknown is an object under segments/ that is not named like a
	// segment. GC reports it and leaves it alone.
	OrphanUnknown OrphanKind = "unknown"
)

// Why GC reports each kind.
const (
	reasonSegment    = "segment not referenced by any checkpoint"
	reasonUnfinished = "checkpoint directory without MANIFEST (unfinished or failed checkpoint)"
	reasonTemporary  = "temporary upload"
	reasonUnknown    = "object under segments/ that is not named as a segment"
)

// What GC did with an orphan (Orphan.Action).
const (
	ActionDeleted     = "deleted"
	ActionWouldDelete = "would delete"
	ActionGrace       = "kept: within grace period"
	ActionBlocked     = "kept: a manifest cannot be read"
	ActionUnknown     = "kept: not an arkstate object"
)

// Orphan is one unreferenced object: what it is, why it is an orphan, its
// size and what GC did with it.
type Orphan struct {
	Name    string     `json:"name"`
	Kind    OrphanKind `json:"kind"`
	Reason  string     `json:"reason"`
	Bytes   int64      `json:"size_bytes"`
	ModTime time.Time  `json:"modified_at"`
	// Upload is the S3 multipart upload id of a temporary upload.
	Upload string `json:"upload,omitempty"`
	Action string `json:"action"`
}

// UnreadableManifest is a manifest GC or prune could not read.
type UnreadableManifest struct {
	Checkpoint uint64 `json:"checkpoint_id"`
	File       string `json:"file"`
	Error      string `json:"error"`
}

// GCOptions configure GC.
type GCOptions struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Grace keeps orphans whose last modification is more recent than
	// this: a running writer's segments are unreferenced until it commits.
	// Zero means DefaultGCGrace; a negative value keeps nothing back.
	Grace time.Duration
	// Maintenance, when set, is checked before every delete: gc stops
	// deleting once its hold is lost. A command run beside a job must hold
	// one (Repo.AcquireMaintenance); a writer's own retention needs none.
	Maintenance *Maintenance
	// Progress, when set, is called after each delete with the bytes of
	// the orphans handled so far and of all those to delete.
	Progress func(done, total int64)
}

// GCReport is what GC found and did.
type GCReport struct {
	DryRun bool `json:"dry_run"`
	// Grace is the grace period applied; GraceMS is it in milliseconds,
	// the unit of every duration in the CLI's JSON.
	Grace   time.Duration `json:"-"`
	GraceMS int64         `json:"grace_ms"`
	// Checkpoints are the retained checkpoints whose manifests were read.
	Checkpoints []uint64 `json:"checkpoint_ids"`
	// Segments counts the segment objects in the store; Referenced those
	// a retained manifest names.
	Segments   int `json:"segment_count"`
	Referenced int `json:"referenced_count"`
	// Orphans lists every unreferenced object by name.
	Orphans      []Orphan `json:"orphans"`
	Deleted      int      `json:"deleted_count"`
	DeletedBytes int64    `json:"deleted_bytes"`
	// Unreadable lists manifests that could not be read; when it is not
	// empty GC deleted nothing.
	Unreadable []UnreadableManifest `json:"unreadable_manifests"`
}

// GC deletes what no retained checkpoint needs: segments no manifest names,
// the contents of checkpoint directories without a MANIFEST, and temporary
// uploads, each only once it is older than the grace period. Segments are
// reference-counted across every manifest in the store; a manifest that
// cannot be read is reported and makes GC delete nothing, returning the
// report and an error wrapping ErrUnreadableManifest.
//
// GC lists manifests before segments and lists them again before deleting,
// so a checkpoint committed meanwhile keeps its segments; its new uploads
// are protected by the grace period. A writer that re-uses an old,
// unreferenced segment at the very moment GC deletes it can still lose it,
// so GC belongs to the job's coordinator or to a time when no job writes.
func GC(ctx context.Context, repo *Repo, opts GCOptions) (*GCReport, error) {
	return gc(ctx, repo, opts, nil)
}

// gc is GC treating the checkpoints in gone as already deleted (a dry-run
// prune). It marks, then sweeps.
func gc(ctx context.Context, repo *Repo, opts GCOptions, gone map[uint64]bool) (*GCReport, error) {
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultGCGrace
	}
	grace = max(grace, 0)
	rep := &GCReport{DryRun: opts.DryRun, Grace: grace, GraceMS: grace.Milliseconds(), Checkpoints: []uint64{}, Orphans: []Orphan{}, Unreadable: []UnreadableManifest{}}
	g := &gcRun{ctx: ctx, repo: repo, rep: rep, gone: gone, read: map[uint64]bool{}, refs: map[string]bool{}}
	g.temps, _ = store.As[store.Temporaries](repo.store)
	if err := g.mark(); err != nil {
		return nil, err
	}
	if err := g.sweep(opts, grace, time.Now()); err != nil {
		return rep, err
	}
	return rep, nil
}

// gcRun is the state of one GC pass.
type gcRun struct {
	ctx   context.Context
	repo  *Repo
	temps store.Temporaries // nil for a store without temporaries
	rep   *GCReport
	gone  map[uint64]bool
	read  map[uint64]bool // manifests already counted
	refs  map[string]bool // segment hashes named by a retained manifest
}

// mark fills the report's orphans: the contents of checkpoint directories
// without a MANIFEST, segments no retained manifest names, unknown objects
// under segments/ and temporary uploads. Manifests are listed before
// segments and again after, so that a checkpoint committed meanwhile keeps
// its segments.
func (g *gcRun) mark() error {
	rep := g.rep
	dirs, err := g.readManifests()
	if err != nil {
		return err
	}
	for _, d := range dirs {
		for _, info := range d.objects {
			rep.Orphans = append(rep.Orphans, Orphan{Name: info.Name, Kind: OrphanUnfinished, Reason: reasonUnfinished, Bytes: info.Size, ModTime: info.ModTime})
		}
	}
	for info, err := range g.repo.store.List(g.ctx, format.SegmentsPrefix) {
		if err != nil {
			return fmt.Errorf("checkpoint: gc: %w", err)
		}
		hash, ok := format.ParseSegmentPath(info.Name)
		switch {
		case !ok:
			rep.Orphans = append(rep.Orphans, Orphan{Name: info.Name, Kind: OrphanUnknown, Reason: reasonUnknown, Bytes: info.Size, ModTime: info.ModTime, Action: ActionUnknown})
			continue
		case g.refs[hash]:
			rep.Referenced++
		default:
			rep.Orphans = append(rep.Orphans, Orphan{Name: info.Name, Kind: OrphanSegment, Reason: reasonSegment, Bytes: info.Size, ModTime: info.ModTime})
		}
		rep.Segments++
	}
	if g.temps != nil {
		ts, err := g.temps.Temporaries(g.ctx)
		if err != nil {
			return fmt.Errorf("checkpoint: gc: %w", err)
		}
		for _, t := range ts {
			rep.Orphans = append(rep.Orphans, Orphan{Name: t.Name, Kind: OrphanTemporary, Reason: reasonTemporary, Bytes: t.Size, ModTime: t.ModTime, Upload: t.Upload})
		}
	}

	// A checkpoint committed since the first listing may name segments
	// that looked unreferenced.
	if _, err := g.readManifests(); err != nil {
		return err
	}
	rep.Orphans = slices.DeleteFunc(rep.Orphans, func(o Orphan) bool {
		if hash, ok := format.ParseSegmentPath(o.Name); ok && o.Kind == OrphanSegment && g.refs[hash] {
			rep.Referenced++
			return true
		}
		return false
	})
	slices.SortFunc(rep.Orphans, func(a, b Orphan) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Upload, b.Upload)) })
	slices.Sort(rep.Checkpoints)
	return nil
}

// sweep decides each marked orphan's action and deletes those that are
// due: nothing while a manifest is unreadable (blocked), nothing younger
// than grace at now, nothing in a dry run; and it checks the maintenance
// leases before each delete. A failed delete keeps the orphan and the
// sweep going; the error names every failure.
func (g *gcRun) sweep(opts GCOptions, grace time.Duration, now time.Time) error {
	rep := g.rep
	blocked := len(rep.Unreadable) > 0
	var errs []error
	var total, done int64
	for _, o := range rep.Orphans {
		if o.Action == "" && !blocked && !o.ModTime.IsZero() && now.Sub(o.ModTime) >= grace && !opts.DryRun {
			total += o.Bytes
		}
	}
	progress := func(b int64) {
		if opts.Progress != nil {
			done += b
			opts.Progress(done, total)
		}
	}
	for i := range rep.Orphans {
		o := &rep.Orphans[i]
		switch {
		case o.Action != "":
		case blocked:
			o.Action = ActionBlocked
		case o.ModTime.IsZero() || now.Sub(o.ModTime) < grace:
			o.Action = ActionGrace
		case opts.DryRun:
			o.Action = ActionWouldDelete
		default:
			if err := opts.Maintenance.Check(g.ctx); err != nil {
				return fmt.Errorf("checkpoint: gc: stopped before deleting %s: %w", o.Name, err)
			}
			var err error
			if o.Kind == OrphanTemporary {
				err = g.temps.RemoveTemporary(g.ctx, store.Temporary{Name: o.Name, Upload: o.Upload})
			} else {
				err = g.repo.store.Delete(g.ctx, o.Name)
			}
			progress(o.Bytes)
			if err != nil {
				errs = append(errs, err)
				o.Action = "kept: " + err.Error()
				continue
			}
			o.Action = ActionDeleted
			rep.Deleted++
			rep.DeletedBytes += o.Bytes
			crashpoint.Hit(crashpoint.BetweenGCDeletes)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("checkpoint: gc: %w", errors.Join(errs...))
	}
	if blocked {
		u := rep.Unreadable[0]
		return fmt.Errorf("checkpoint: gc: %w: checkpoint %d (%s): %s", ErrUnreadableManifest, u.Checkpoint, u.File, u.Error)
	}
	return nil
}

// checkpointDir is one directory under checkpoints/ and what it holds
// besides its MANIFEST.
type checkpointDir struct {
	id      uint64
	objects []store.ObjectInfo
}

// readManifests lists checkpoints/, reads each retained manifest not read
// yet and adds its segments to refs, and returns the directories that have
// no MANIFEST. Damaged manifests are recorded in the report.
func (g *gcRun) readManifests() ([]checkpointDir, error) {
	var ids []uint64
	others := map[uint64][]store.ObjectInfo{}
	for o, err := range g.repo.checkpointObjects(g.ctx) {
		if err != nil {
			return nil, fmt.Errorf("checkpoint: gc: %w", err)
		}
		switch {
		case g.gone[o.id]:
			// Pruned in this dry run.
		case o.file == format.ManifestName:
			ids = append(ids, o.id)
		default:
			others[o.id] = append(others[o.id], o.info)
		}
	}
	var dirs []checkpointDir
	for id, objs := range others {
		if !slices.Contains(ids, id) {
			dirs = append(dirs, checkpointDir{id: id, objects: objs})
		}
	}
	slices.SortFunc(dirs, func(a, b checkpointDir) int { return cmp.Compare(a.id, b.id) })
	for _, id := range ids {
		if g.read[id] {
			continue
		}
		m, err := g.repo.Manifest(g.ctx, id)
		var corrupt *format.CorruptError
		switch {
		case errors.Is(err, ErrCheckpointNotFound):
			continue // deleted since the listing: it retains nothing
		case errors.As(err, &corrupt):
			g.read[id] = true
			g.rep.Unreadable = append(g.rep.Unreadable, UnreadableManifest{Checkpoint: id, File: format.ManifestPath(id), Error: err.Error()})
			continue
		case err != nil:
			return nil, fmt.Errorf("checkpoint: gc: %w", err)
		}
		g.read[id] = true
		g.rep.Checkpoints = append(g.rep.Checkpoints, id)
		for _, o := range m.Operators {
			for _, rs := range o.Ranges {
				for _, l := range rs.Layers {
					g.refs[l.Hash] = true
				}
			}
		}
	}
	return dirs, nil
}

// PruneOptions configure Prune.
type PruneOptions struct {
	// KeepLast is how many of the newest checkpoints to keep, at least 1.
	KeepLast int
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Grace is passed to the GC that follows; see GCOptions.
	Grace time.Duration
	// Maintenance is checked before every delete, as in GCOptions.
	Maintenance *Maintenance
	// Progress, when set, follows the GC that frees the deleted
	// checkpoints' segments, where the bytes are (see GCOptions.Progress).
	Progress func(done, total int64)
}

// KeptCheckpoint is a checkpoint Prune keeps, and why.
type KeptCheckpoint struct {
	ID     uint64 `json:"checkpoint_id"`
	Reason string `json:"reason"`
}

// PruneReport is what Prune kept and deleted, and the GC that followed.
type PruneReport struct {
	KeepLast int              `json:"keep_last"`
	DryRun   bool             `json:"dry_run"`
	Kept     []KeptCheckpoint `json:"kept"`
	// Deleted lists the deleted checkpoints (in a dry run, those that
	// would be), oldest first.
	Deleted []uint64 `json:"deleted_checkpoint_ids"`
	// Unreadable lists manifests of kept checkpoints or their ancestors
	// that could not be read; when it is not empty nothing was deleted.
	Unreadable []UnreadableManifest `json:"unreadable_manifests"`
	// GC is the garbage collection that ran after the deletions; nil when
	// prune stopped before it.
	GC *GCReport `json:"gc"`
}

// Prune keeps the newest opts.KeepLast checkpoints and the ancestors they
// need (an incremental checkpoint needs its parent chain back to its last
// full checkpoint), deletes every other checkpoint, then runs GC to delete
// the segments only they named.
//
// A checkpoint is deleted by deleting its MANIFEST first, which removes it
// atomically from every listing, and then the rest of its directory. If the
// manifest of a kept checkpoint or of one of its ancestors cannot be read or
// is missing, Prune deletes nothing and returns the report with an error
// wrapping ErrUnreadableManifest.
func Prune(ctx context.Context, repo *Repo, opts PruneOptions) (*PruneReport, error) {
	if opts.KeepLast < 1 {
		return nil, fmt.Errorf("checkpoint: prune: keep-last must be at least 1, got %d", opts.KeepLast)
	}
	ids, err := repo.IDs(ctx)
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{KeepLast: opts.KeepLast, DryRun: opts.DryRun, Kept: []KeptCheckpoint{}, Deleted: []uint64{}, Unreadable: []UnreadableManifest{}}
	keep := map[uint64]string{}
	newest := ids[max(0, len(ids)-opts.KeepLast):]
	for _, id := range newest {
		keep[id] = fmt.Sprintf("one of the newest %d", opts.KeepLast)
	}
	for _, id := range slices.Backward(newest) {
		if err := keepAncestors(ctx, repo, id, keep, rep); err != nil {
			return nil, err
		}
	}
	for id, why := range keep {
		rep.Kept = append(rep.Kept, KeptCheckpoint{ID: id, Reason: why})
	}
	slices.SortFunc(rep.Kept, func(a, b KeptCheckpoint) int { return cmp.Compare(a.ID, b.ID) })
	if len(rep.Unreadable) > 0 {
		u := rep.Unreadable[0]
		return rep, fmt.Errorf("checkpoint: prune: %w: checkpoint %d (%s): %s", ErrUnreadableManifest, u.Checkpoint, u.File, u.Error)
	}

	gone := map[uint64]bool{}
	for _, id := range ids {
		if _, ok := keep[id]; ok {
			continue
		}
		gone[id] = true
		if !opts.DryRun {
			if err := opts.Maintenance.Check(ctx); err != nil {
				return rep, fmt.Errorf("checkpoint: prune: stopped before deleting checkpoint %d: %w", id, err)
			}
			if err := deleteCheckpoint(ctx, repo.store, id); err != nil {
				return rep, fmt.Errorf("checkpoint: prune: %w", err)
			}
		}
		rep.Deleted = append(rep.Deleted, id)
	}
	if !opts.DryRun {
		gone = nil // deleted for real: GC sees them gone
	}
	rep.GC, err = gc(ctx, repo, GCOptions{DryRun: opts.DryRun, Grace: opts.Grace, Maintenance: opts.Maintenance, Progress: opts.Progress}, gone)
	return rep, err
}

// keepAncestors marks the parent chain of checkpoint id back to its last
// full checkpoint as kept. A manifest on the chain that cannot be read, or
// a parent that is missing, is recorded in rep.Unreadable.
func keepAncestors(ctx context.Context, repo *Repo, id uint64, keep map[uint64]string, rep *PruneReport) error {
	for cur, child := id, uint64(0); ; {
		m, err := repo.Manifest(ctx, cur)
		var corrupt *format.CorruptError
		switch {
		case errors.Is(err, ErrCheckpointNotFound) && child != 0:
			rep.Unreadable = append(rep.Unreadable, UnreadableManifest{Checkpoint: cur, File: format.ManifestPath(cur),
				Error: fmt.Sprintf("missing, but checkpoint %d builds on it", child)})
			return nil
		case errors.As(err, &corrupt):
			rep.Unreadable = append(rep.Unreadable, UnreadableManifest{Checkpoint: cur, File: format.ManifestPath(cur), Error: err.Error()})
			return nil
		case err != nil:
			return err
		}
		if m.Kind == format.KindFull {
			return nil
		}
		child, cur = cur, m.Parent
		if _, ok := keep[cur]; ok {
			return nil // already kept, with its own chain
		}
		keep[cur] = fmt.Sprintf("ancestor of %d (incremental chain back to its last full checkpoint)", id)
	}
}

// deleteCheckpoint removes checkpoint id: its MANIFEST first, so the
// checkpoint disappears at once, then whatever else its directory holds.
func deleteCheckpoint(ctx context.Context, s store.Store, id uint64) error {
	if err := s.Delete(ctx, format.ManifestPath(id)); err != nil {
		return err
	}
	crashpoint.Hit(crashpoint.BetweenPruneDeletes)
	prefix := format.CheckpointPrefix(id)
	var names []string
	for info, err := range s.List(ctx, prefix) {
		if err != nil {
			return err
		}
		names = append(names, info.Name)
	}
	for _, name := range names {
		if err := s.Delete(ctx, name); err != nil {
			return err
		}
	}
	return nil
}
