package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// Offline inspection: what `arkstate checkpoint ls` and `show` print, and
// what library users call to look at a store without running a job.

// inspectConcurrency is how many objects the offline operations read at
// once. On S3 each read is a round trip of several milliseconds, so a few
// requests in flight hide the latency; on a local disk it is harmless.
const inspectConcurrency = 8

// Checkpoint statuses (CheckpointSummary.Status).
const (
	// StatusOK means the manifest was read and checked, and the parent of an
	// incremental checkpoint exists. It does not mean the segments were
	// checked: that is Verify's job.
	StatusOK = "ok"
	// StatusDamaged means the manifest could not be read or validated, or an
	// incremental checkpoint's parent is missing; CheckpointSummary.Error
	// says which.
	StatusDamaged = "damaged"
)

// CheckpointSummary is one checkpoint as List sees it, from its manifest
// alone. Sizes are the sizes the manifests record.
type CheckpointSummary struct {
	// ID is the checkpoint id.
	ID uint64 `json:"checkpoint_id"`
	// CreatedAt is when the checkpoint completed; zero when the manifest is
	// damaged.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Kind is format.KindFull or format.KindIncremental; empty when damaged.
	Kind string `json:"kind,omitempty"`
	// Parent is the checkpoint an incremental one builds on.
	Parent uint64 `json:"parent_checkpoint_id,omitempty"`
	// Operators lists the operator ids with keyed state, sorted.
	Operators []string `json:"operators"`
	// Keys counts live state entries: one per value-state key, per map
	// entry, per list. It is the sum of the entry counts of the layers,
	// which is exact when every key-group range has a single (base) layer —
	// a base holds only live entries — and otherwise an upper bound, since a
	// delta's put may overwrite an entry below it and a tombstone deletes
	// one. KeysExact says which. The segments are not read.
	Keys uint64 `json:"key_count"`
	// KeysExact is true when Keys is exact (see Keys).
	KeysExact bool `json:"key_count_exact"`
	// Layers is the number of layers over all operators and ranges.
	Layers int `json:"layer_count"`
	// Segments is the number of distinct segments the checkpoint references.
	Segments int `json:"segment_count"`
	// LogicalBytes is the sum of the sizes of all its layers, counting a
	// segment once per layer that names it: what restoring it reads.
	LogicalBytes int64 `json:"logical_bytes"`
	// StoredBytes is the sum of the sizes of its distinct segments.
	StoredBytes int64 `json:"stored_bytes"`
	// ExclusiveBytes is the part of StoredBytes in segments that no other
	// readable manifest references: what deleting this checkpoint alone
	// would free. A damaged manifest's references are unknown, so while
	// one exists this may overstate what is exclusive.
	ExclusiveBytes int64 `json:"exclusive_bytes"`
	// SharedBytes is StoredBytes less ExclusiveBytes.
	SharedBytes int64 `json:"shared_bytes"`
	// Status is StatusOK or StatusDamaged.
	Status string `json:"status"`
	// Error says why the checkpoint is damaged.
	Error string `json:"error,omitempty"`
}

// MarshalJSON leaves out what an unreadable manifest does not tell (it
// has no kind): its counts and sizes would read as real zeros. A readable
// manifest of a damaged checkpoint (a missing parent) keeps them.
func (s CheckpointSummary) MarshalJSON() ([]byte, error) {
	type plain CheckpointSummary
	if s.Status == StatusOK || s.Kind != "" {
		return json.Marshal(plain(s))
	}
	return json.Marshal(struct {
		ID     uint64 `json:"checkpoint_id"`
		Status string `json:"status"`
		Error  string `json:"error,omitempty"`
	}{s.ID, s.Status, s.Error})
}

// List summarises every complete checkpoint of repo (every checkpoint whose
// MANIFEST exists), ascending by id. It reads each manifest once and no
// segment. A manifest that cannot be read or validated is reported as a
// StatusDamaged row rather than skipped or failing the listing; an error is
// returned only when the store itself cannot be read.
func List(ctx context.Context, repo *Repo) ([]CheckpointSummary, error) {
	ids, err := repo.IDs(ctx)
	if err != nil {
		return nil, err
	}
	ms, damaged, err := repo.inspectManifests(ctx, ids, inspectConcurrency)
	if err != nil {
		return nil, err
	}
	// How many readable manifests reference each segment, for exclusivity.
	refs := make(map[string]int)
	for _, m := range ms {
		for hash := range distinctSegments(m) {
			refs[hash]++
		}
	}
	exists := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		exists[id] = true
	}
	out := make([]CheckpointSummary, 0, len(ids))
	for _, id := range ids {
		s := CheckpointSummary{ID: id, Status: StatusOK, Operators: []string{}}
		m, ok := ms[id]
		if !ok {
			if errors.Is(damaged[id], ErrCheckpointNotFound) {
				continue // deleted (pruned) since it was listed: not damage
			}
			s.Status, s.Error = StatusDamaged, damaged[id].Error()
			out = append(out, s)
			continue
		}
		s.CreatedAt, s.Kind, s.Parent = m.CreatedAt, m.Kind, m.Parent
		s.KeysExact = true
		for _, op := range m.Operators {
			s.Operators = append(s.Operators, op.ID)
			for _, rs := range op.Ranges {
				if len(rs.Layers) > 1 {
					s.KeysExact = false
				}
				for _, l := range rs.Layers {
					s.Keys += l.Entries
					s.LogicalBytes += l.Size
					s.Layers++
				}
			}
		}
		slices.Sort(s.Operators)
		for hash, size := range distinctSegments(m) {
			s.Segments++
			s.StoredBytes += size
			if refs[hash] == 1 {
				s.ExclusiveBytes += size
			}
		}
		s.SharedBytes = s.StoredBytes - s.ExclusiveBytes
		if m.Kind == format.KindIncremental && !exists[m.Parent] {
			s.Status = StatusDamaged
			s.Error = fmt.Sprintf("parent checkpoint %d is missing (%s does not exist)", m.Parent, format.ManifestPath(m.Parent))
		}
		out = append(out, s)
	}
	return out, nil
}

// distinctSegments returns each segment m references once, with the size
// the manifest records for it.
func distinctSegments(m *format.Manifest) map[string]int64 {
	segs := make(map[string]int64)
	for _, op := range m.Operators {
		for _, rs := range op.Ranges {
			for _, l := range rs.Layers {
				segs[l.Hash] = l.Size
			}
		}
	}
	return segs
}

// inspectManifests reads the manifests of ids with up to limit reads in
// flight. Manifests that are damaged, or that vanished after being listed,
// are returned in damaged rather than as the error, which is kept for
// failures of the store itself (and cancellation).
func (r *Repo) inspectManifests(ctx context.Context, ids []uint64, limit int) (ok map[uint64]*format.Manifest, damaged map[uint64]error, err error) {
	ok = make(map[uint64]*format.Manifest, len(ids))
	damaged = make(map[uint64]error)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(limit, 1))
	for _, id := range ids {
		g.Go(func() error {
			m, err := r.Manifest(gctx, id)
			if err != nil && !isInspectDamage(err) {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				damaged[id] = err
			} else {
				ok[id] = m
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return ok, damaged, nil
}

// isInspectDamage tells damage to report (a corrupt or missing object) from a
// failure to read the store, which stops an offline operation.
func isInspectDamage(err error) bool {
	var ce *format.CorruptError
	return errors.As(err, &ce) || errors.Is(err, store.ErrNotExist) || errors.Is(err, ErrCheckpointNotFound)
}

// ShowOptions configure Show.
type ShowOptions struct {
	// Segments also reads the footer and index of every segment the
	// checkpoint references and returns their layouts.
	Segments bool
}

// PendingPrepared is when a pending transaction of a checkpoint was
// pre-committed, as the transaction log recorded it.
type PendingPrepared struct {
	Output     string    `json:"output"`
	TxnID      string    `json:"txn_id"`
	PreparedAt time.Time `json:"prepared_at"`
}

// CheckpointDetail is one checkpoint's manifest, and with
// ShowOptions.Segments the layout of its segments.
type CheckpointDetail struct {
	// Manifest is the checkpoint's validated manifest.
	Manifest *format.Manifest
	// Prepared says when each pending transaction was pre-committed, for
	// those the checkpoint's transaction log still records (none without
	// a log), so their age shows how long output has waited.
	Prepared []PendingPrepared
	// Segments holds one layout per distinct segment, in the order the
	// manifest first names them; nil unless ShowOptions.Segments was set.
	Segments []SegmentLayout
}

// MarshalJSON writes the checkpoint in the names of the CLI's JSON
// vocabulary (docs/CLI.md): the manifest's content, with "segments" added
// when layouts were read. The stored manifest's own field names are the
// format's (docs/FORMAT.md); a reader of this document does not need them.
func (d *CheckpointDetail) MarshalJSON() ([]byte, error) {
	m := d.Manifest
	v := detailJSON{
		JobID:        m.JobID,
		CheckpointID: m.CheckpointID,
		Parent:       m.Parent,
		Kind:         m.Kind,
		CreatedAt:    m.CreatedAt,
		KeyGroups:    m.KeyGroups,
		Operators:    make([]operatorJSON, len(m.Operators)),
		Sources:      m.Sources,
		Txlog:        m.Txlog,
		Pending:      m.Pending,
		Prepared:     d.Prepared,
		Segments:     d.Segments,
	}
	for i, op := range m.Operators {
		o := operatorJSON{Operator: op.ID, States: make([]stateJSON, len(op.States)), Ranges: make([]rangeJSON, len(op.Ranges))}
		for j, st := range op.States {
			o.States[j] = stateJSON{State: st.Name, Kind: st.Kind, Codec: st.Codec, TTLMS: st.TTLMillis}
		}
		for j, r := range op.Ranges {
			rj := rangeJSON{FirstKeyGroup: r.Start, LastKeyGroup: r.End, Layers: make([]layerJSON, len(r.Layers))}
			for k, l := range r.Layers {
				rj.Layers[k] = layerJSON{Hash: l.Hash, SizeBytes: l.Size, Kind: l.Kind, EntryCount: l.Entries, CheckpointID: l.Checkpoint}
			}
			o.Ranges[j] = rj
		}
		v.Operators[i] = o
	}
	return json.Marshal(v)
}

// detailJSON and the types below are CheckpointDetail's JSON form.
type detailJSON struct {
	JobID        string                  `json:"job_id"`
	CheckpointID uint64                  `json:"checkpoint_id"`
	Parent       uint64                  `json:"parent_checkpoint_id,omitempty"`
	Kind         string                  `json:"kind"`
	CreatedAt    time.Time               `json:"created_at"`
	KeyGroups    uint32                  `json:"key_groups"`
	Operators    []operatorJSON          `json:"operators"`
	Sources      []format.SourcePosition `json:"sources,omitempty"`
	Txlog        *format.TxlogPosition   `json:"txlog,omitempty"`
	Pending      []format.PendingTxn     `json:"pending,omitempty"`
	Prepared     []PendingPrepared       `json:"pending_prepared,omitempty"`
	Segments     []SegmentLayout         `json:"segments,omitempty"`
}

type operatorJSON struct {
	Operator string      `json:"operator"`
	States   []stateJSON `json:"states"`
	Ranges   []rangeJSON `json:"ranges"`
}

type stateJSON struct {
	State string `json:"state"`
	Kind  string `json:"kind"`
	Codec string `json:"codec"`
	TTLMS int64  `json:"ttl_ms"`
}

type rangeJSON struct {
	FirstKeyGroup uint32      `json:"first_key_group"`
	LastKeyGroup  uint32      `json:"last_key_group"`
	Layers        []layerJSON `json:"layers"`
}

type layerJSON struct {
	Hash         string `json:"hash"`
	SizeBytes    int64  `json:"size_bytes"`
	Kind         string `json:"kind"`
	EntryCount   uint64 `json:"entry_count"`
	CheckpointID uint64 `json:"checkpoint_id"`
}

// SegmentLayout is a segment's footer and index, read without reading any
// block.
type SegmentLayout struct {
	Hash        string         `json:"hash"`
	Object      string         `json:"object"` // the object name in the store
	Size        int64          `json:"size_bytes"`
	RawSize     int64          `json:"raw_size_bytes"` // uncompressed bytes of all blocks
	Entries     uint64         `json:"entry_count"`
	Tombstones  uint64         `json:"tombstone_count"`
	MinKeyGroup uint32         `json:"min_key_group"`
	MaxKeyGroup uint32         `json:"max_key_group"`
	States      []string       `json:"states"`
	Blocks      []SegmentBlock `json:"blocks"`
	// Describe is format's account of the layout for people
	// (SegmentReader.Describe); the fields above carry the same for programs.
	Describe string `json:"-"`
	// Error says why the segment could not be opened; the other fields
	// except Hash and Object are then zero.
	Error string `json:"error,omitempty"`
}

// MarshalJSON leaves out what a segment that could not be opened does not
// tell: its sizes and counts would read as real zeros.
func (l SegmentLayout) MarshalJSON() ([]byte, error) {
	type plain SegmentLayout
	if l.Error == "" {
		return json.Marshal(plain(l))
	}
	return json.Marshal(struct {
		Hash   string `json:"hash"`
		Object string `json:"object"`
		Error  string `json:"error"`
	}{l.Hash, l.Object, l.Error})
}

// SegmentBlock is one block's index entry.
type SegmentBlock struct {
	Offset        int64  `json:"offset"`
	StoredLen     int    `json:"stored_bytes"`
	RawLen        int    `json:"raw_bytes"`
	Entries       int    `json:"entry_count"`
	Checksum      uint32 `json:"crc32c"`
	FirstState    string `json:"first_state"`
	FirstKeyGroup uint32 `json:"first_key_group"`
	LastState     string `json:"last_state"`
	LastKeyGroup  uint32 `json:"last_key_group"`
}

// Show reads the checkpoint that ref names ("latest", an id or a
// chk-<id> directory name; see Repo.Resolve). A damaged manifest is an
// error (a *format.CorruptError). With opts.Segments a segment that is
// missing or damaged gets its Error set instead of failing Show; an error
// reading the store still fails it.
func Show(ctx context.Context, repo *Repo, ref string, opts ShowOptions) (*CheckpointDetail, error) {
	id, err := repo.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	m, err := repo.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &CheckpointDetail{Manifest: m}
	if m.Txlog != nil && len(m.Pending) > 0 {
		if d.Prepared, err = preparedTimes(ctx, repo, m); err != nil {
			return nil, err
		}
	}
	if !opts.Segments {
		return d, nil
	}
	var refs []format.SegmentRef
	seen := make(map[string]bool)
	for _, op := range m.Operators {
		for _, rs := range op.Ranges {
			for _, l := range rs.Layers {
				if !seen[l.Hash] {
					seen[l.Hash] = true
					refs = append(refs, l)
				}
			}
		}
	}
	d.Segments = make([]SegmentLayout, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inspectConcurrency)
	for i, ref := range refs {
		g.Go(func() error {
			l, err := repo.segmentLayout(gctx, ref)
			d.Segments[i] = l
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", id, err)
	}
	return d, nil
}

// segmentLayout opens one segment and describes it. Damage goes into the
// layout's Error; only a failure of the store is returned.
func (r *Repo) segmentLayout(ctx context.Context, ref format.SegmentRef) (SegmentLayout, error) {
	l := SegmentLayout{Hash: ref.Hash, Object: format.SegmentPath(ref.Hash), States: []string{}, Blocks: []SegmentBlock{}}
	seg, obj, err := r.OpenSegment(ctx, ref)
	if err != nil {
		if !isInspectDamage(err) {
			return l, err
		}
		l.Error = err.Error()
		return l, nil
	}
	defer obj.Close()
	info := seg.Info()
	l.Size, l.RawSize, l.Entries, l.Tombstones = info.Size, info.RawSize, info.Entries, info.Tombstones
	l.MinKeyGroup, l.MaxKeyGroup, l.States = info.MinKeyGroup, info.MaxKeyGroup, info.States
	if l.States == nil {
		l.States = []string{}
	}
	for _, b := range seg.Blocks() {
		l.Blocks = append(l.Blocks, SegmentBlock{
			Offset: b.Offset, StoredLen: b.StoredLen, RawLen: b.RawLen, Entries: b.Entries, Checksum: b.Checksum,
			FirstState: b.FirstState, FirstKeyGroup: b.FirstKeyGroup, LastState: b.LastState, LastKeyGroup: b.LastKeyGroup,
		})
	}
	var text strings.Builder
	if err := seg.Describe(&text); err != nil {
		return l, err
	}
	l.Describe = text.String()
	return l, nil
}

// preparedTimes finds in m's transaction log when each of its pending
// transactions was pre-committed. A log that was never written or is gone
// has nothing to tell; damage in it is an error.
func preparedTimes(ctx context.Context, repo *Repo, m *format.Manifest) ([]PendingPrepared, error) {
	type key struct{ output, txn string }
	want := map[key]bool{}
	for _, p := range m.Pending {
		want[key{p.Output, p.TxnID}] = true
	}
	var out []PendingPrepared
	err := txlog.Replay(ctx, repo.store, m.Txlog.Stream, 0, 0, time.Time{}, func(rec *format.Record) error {
		if rec.Type == format.RecordTxnPrepare && want[key{rec.Output, rec.TxnID}] {
			out = append(out, PendingPrepared{Output: rec.Output, TxnID: rec.TxnID, PreparedAt: time.Unix(0, rec.Time).UTC()})
		}
		return nil
	})
	if errors.Is(err, txlog.ErrStreamNotFound) {
		return nil, nil
	}
	return out, err
}
