package checkpoint

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// Problem kinds (Problem.Kind): a stable, machine-readable class for each
// way a checkpoint can be damaged.
const (
	// ProblemMissing: an object a manifest names does not exist.
	ProblemMissing = "missing"
	// ProblemSize: a segment's size is not the one its manifest records.
	ProblemSize = "size_mismatch"
	// ProblemChecksum: a stored checksum (manifest body, segment footer,
	// index or block) does not match the bytes.
	ProblemChecksum = "checksum"
	// ProblemTruncated: a structure ends before it is complete.
	ProblemTruncated = "truncated"
	// ProblemMalformed: a structure decodes but breaks the format's rules.
	ProblemMalformed = "malformed"
	// ProblemBadMagic: the object is not an arkstate file of the expected kind.
	ProblemBadMagic = "bad_magic"
	// ProblemVersion: the object was written by a format version this build
	// cannot read.
	ProblemVersion = "unsupported_version"
	// ProblemTooLarge: a length field exceeds the format's bound.
	ProblemTooLarge = "too_large"
	// ProblemHash: a segment's SHA-256 is not the hash it is named and
	// referenced by (found by deep checks only).
	ProblemHash = "hash_mismatch"
	// ProblemParent: an incremental checkpoint's parent manifest does not
	// exist.
	ProblemParent = "missing_parent"
	// ProblemMismatch: a manifest disagrees with a segment's index or with
	// the manifest of the checkpoint that wrote one of its layers.
	ProblemMismatch = "manifest_mismatch"
)

// MaxSampleSlices is the largest T of a Sample: slices are chosen by the
// first byte of a segment's hash, which has 256 values.
const MaxSampleSlices = 256

// Sample selects slice N of T of the segments for deep checks: those whose
// hash's first byte, modulo T, is N-1. Running slices 1/T through T/T
// deep-checks every segment exactly once, so a large store can be covered
// over T runs (one a night, say). The zero Sample selects every segment.
type Sample struct {
	N, T int
}

// ParseSample parses "N/T" with 1 <= N <= T <= MaxSampleSlices.
func ParseSample(s string) (Sample, error) {
	ns, ts, ok := strings.Cut(s, "/")
	n, errN := strconv.Atoi(ns)
	t, errT := strconv.Atoi(ts)
	if !ok || errN != nil || errT != nil {
		return Sample{}, fmt.Errorf("sample %q is not N/T (for example 1/7)", s)
	}
	sm := Sample{N: n, T: t}
	if err := sm.validate(); err != nil {
		return Sample{}, err
	}
	return sm, nil
}

func (s Sample) validate() error {
	if s == (Sample{}) {
		return nil
	}
	if s.T < 1 || s.T > MaxSampleSlices || s.N < 1 || s.N > s.T {
		return fmt.Errorf("sample %d/%d: want N/T with 1 <= N <= T <= %d", s.N, s.T, MaxSampleSlices)
	}
	return nil
}

// Contains reports whether the segment with the given hash (64 hex digits)
// falls in the sample.
func (s Sample) Contains(hash string) bool {
	if s.T == 0 {
		return true
	}
	b, err := strconv.ParseUint(hash[:min(2, len(hash))], 16, 8)
	if err != nil {
		return false
	}
	return int(b)%s.T == s.N-1
}

// String renders "N/T", or "" for the zero Sample.
func (s Sample) String() string {
	if s.T == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.N, s.T)
}

// VerifyOptions select what Verify checks.
type VerifyOptions struct {
	// IDs are the checkpoints to verify. With no IDs and All unset, Verify
	// checks the latest checkpoint.
	IDs []uint64
	// All verifies every complete checkpoint (IDs is then ignored).
	All bool
	// Deep reads every block of every segment, checking each checksum and
	// entry (format.SegmentReader.Verify), and the SHA-256 of the whole
	// object against the hash it is named by. Without it only manifests,
	// chains, segment sizes, footers and indexes are checked.
	Deep bool
	// Sample restricts the deep checks to one slice of the segments, and
	// implies Deep for that slice. Structure checks still cover every
	// segment.
	Sample Sample
	// Concurrency is how many objects are checked at once (default 8).
	Concurrency int
	// Progress, when set, is called after each segment is checked with
	// the bytes of the segments checked so far and of all of them (as the
	// manifests record their sizes), from one goroutine at a time.
	Progress func(done, total int64)
}

// Problem is one piece of damage. The same damaged object is reported once,
// with every checked checkpoint it affects.
type Problem struct {
	// Checkpoints are the checked checkpoints the damage affects, ascending.
	Checkpoints []uint64 `json:"checkpoint_ids"`
	// File is the damaged (or missing) object's name in the store.
	File string `json:"file"`
	// Kind classifies the damage (the Problem* constants).
	Kind string `json:"kind"`
	// Problem says what is wrong, with the structure and offset where known.
	Problem string `json:"problem"`
	// Advice says what an operator can do about it.
	Advice string `json:"advice"`
}

// VerifyTotals count what Verify checked.
type VerifyTotals struct {
	// Checkpoints is the number of checkpoints checked.
	Checkpoints int `json:"checkpoint_count"`
	// Segments is the number of distinct segments they reference; each is
	// checked once however many checkpoints share it.
	Segments int `json:"segment_count"`
	// SegmentBytes is the size of those segments, as found in the store.
	SegmentBytes int64 `json:"segment_bytes"`
	// DeepSegments and DeepBytes count the segments deep-checked (read in
	// full), damaged or not; a segment missing or of the wrong size is not
	// read.
	DeepSegments int   `json:"deep_segment_count"`
	DeepBytes    int64 `json:"deep_bytes"`
	// Problems is len(VerifyReport.Problems).
	Problems int `json:"problem_count"`
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// Checkpoints lists the checkpoints checked, ascending.
	Checkpoints []uint64 `json:"checkpoint_ids"`
	// Deep is true when segments were read in full (Deep or Sample).
	Deep bool `json:"deep"`
	// Sample is the slice deep-checked ("N/T"), empty for all.
	Sample string       `json:"sample,omitempty"`
	Totals VerifyTotals `json:"totals"`
	// Problems lists the damage found, ordered by the first checkpoint each
	// affects, then by file; empty when the checkpoints are intact.
	Problems []Problem `json:"problems"`
	// Empty is true when there was nothing to verify: the store holds no
	// checkpoint (OK is then true; whether that is fine is the caller's
	// call: a store that lost every manifest looks the same).
	Empty bool `json:"empty"`
}

// OK reports whether no damage was found.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify checks checkpoints of repo and reports every problem it finds.
//
// For each checkpoint it checks that the manifest parses (envelope,
// checksum, every rule of format.Manifest.Validate, id and job), that an
// incremental checkpoint's parent manifest exists, and that every layer
// written by an earlier checkpoint is listed by that checkpoint's manifest
// when it still exists. For each distinct segment it checks that the object
// exists with the recorded size, that its footer and index decode, and that
// the index agrees with the manifest (entry count, key groups within the
// range); opts.Deep adds every block and the SHA-256 of the object.
//
// Damage is collected, never fatal: one bad object does not stop the checks
// of the others. Verify returns an error only when the store cannot be read
// (or ctx ends), when opts are invalid, or when a checkpoint named in
// opts.IDs does not exist (ErrCheckpointNotFound).
func Verify(ctx context.Context, repo *Repo, opts VerifyOptions) (*VerifyReport, error) {
	if err := opts.Sample.validate(); err != nil {
		return nil, fmt.Errorf("checkpoint: verify: %w", err)
	}
	v := &verifier{
		repo:      repo,
		opts:      opts,
		deep:      opts.Deep || opts.Sample.T != 0,
		limit:     cmp.Or(max(opts.Concurrency, 0), inspectConcurrency),
		problems:  make(map[problemKey]*Problem),
		manifests: make(map[uint64]*format.Manifest),
		bad:       make(map[uint64]error),
		hashBufs:  newHashBufs(),
	}
	ids, err := v.targets(ctx)
	if errors.Is(err, ErrNoCheckpoints) {
		ids, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		r := v.report(nil)
		r.Empty = true
		return r, nil
	}
	checked, err := v.checkManifests(ctx, ids)
	if err != nil {
		return nil, err
	}
	if err := v.checkChains(ctx, checked); err != nil {
		return nil, err
	}
	if err := v.checkSegments(ctx, checked); err != nil {
		return nil, err
	}
	return v.report(checked), nil
}

type verifier struct {
	repo  *Repo
	opts  VerifyOptions
	deep  bool
	limit int

	// manifests holds every manifest read and valid, bad every one that
	// could not be read (damaged or missing), targets and ancestors alike.
	manifests map[uint64]*format.Manifest
	bad       map[uint64]error

	hashBufs *sync.Pool // windows of hashingReaderAt

	mu       sync.Mutex
	problems map[problemKey]*Problem
	totals   VerifyTotals
}

// problemKey merges reports of the same damage reached from several
// checkpoints into one Problem.
type problemKey struct{ file, kind, text string }

func (v *verifier) add(file, kind, text, advice string, checkpoints ...uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := problemKey{file, kind, text}
	p := v.problems[k]
	if p == nil {
		p = &Problem{File: file, Kind: kind, Problem: text, Advice: advice}
		v.problems[k] = p
	}
	for _, id := range checkpoints {
		if !slices.Contains(p.Checkpoints, id) {
			p.Checkpoints = append(p.Checkpoints, id)
		}
	}
}

// addDamage reports err, which isInspectDamage accepted, as a problem of file.
func (v *verifier) addDamage(file string, err error, advice string, checkpoints ...uint64) {
	kind, text := describeDamage(file, err)
	v.add(file, kind, text, advice, checkpoints...)
}

// targets resolves the checkpoints to check.
func (v *verifier) targets(ctx context.Context) ([]uint64, error) {
	switch {
	case v.opts.All:
		return v.repo.IDs(ctx)
	case len(v.opts.IDs) > 0:
		ids := slices.Clone(v.opts.IDs)
		slices.Sort(ids)
		return slices.Compact(ids), nil
	}
	id, err := v.repo.Latest(ctx)
	if err != nil {
		return nil, err
	}
	return []uint64{id}, nil
}

// read reads the manifests of ids not read yet into v.manifests and v.bad.
func (v *verifier) read(ctx context.Context, ids []uint64) error {
	var todo []uint64
	for _, id := range ids {
		_, ok := v.manifests[id]
		if _, isBad := v.bad[id]; !ok && !isBad && !slices.Contains(todo, id) {
			todo = append(todo, id)
		}
	}
	ms, bad, err := v.repo.inspectManifests(ctx, todo, v.limit)
	if err != nil {
		return err
	}
	maps.Copy(v.manifests, ms)
	maps.Copy(v.bad, bad)
	return nil
}

// checkManifests reads the target manifests and reports the damaged ones.
// It returns the targets that exist: with All, a checkpoint deleted (pruned)
// after it was listed is not checked; a missing id the caller named is an
// error.
func (v *verifier) checkManifests(ctx context.Context, ids []uint64) ([]uint64, error) {
	if err := v.read(ctx, ids); err != nil {
		return nil, err
	}
	var checked []uint64
	for _, id := range ids {
		err := v.bad[id]
		switch {
		case err == nil:
		case errors.Is(err, ErrCheckpointNotFound) && v.opts.All:
			continue
		case errors.Is(err, ErrCheckpointNotFound):
			return nil, err
		default:
			name := format.ManifestPath(id)
			v.addDamage(name, err, adviceManifest(name), id)
		}
		checked = append(checked, id)
	}
	return checked, nil
}

// checkChains checks each valid target against the checkpoints it builds
// on: its parent must exist, and a layer recorded as written by an earlier
// checkpoint must be in that checkpoint's manifest if it still exists (a
// full checkpoint's history may have been pruned, or restored from
// elsewhere, so an absent writer other than the parent is not damage).
func (v *verifier) checkChains(ctx context.Context, checked []uint64) error {
	var need []uint64
	for _, id := range checked {
		m := v.manifests[id]
		if m == nil {
			continue
		}
		if m.Parent != 0 {
			need = append(need, m.Parent)
		}
		for _, op := range m.Operators {
			for _, rs := range op.Ranges {
				for _, l := range rs.Layers {
					if l.Checkpoint != id {
						need = append(need, l.Checkpoint)
					}
				}
			}
		}
	}
	if err := v.read(ctx, need); err != nil {
		return err
	}
	written := make(map[uint64]map[string]format.SegmentRef) // per writer: the layers it wrote
	for _, id := range checked {
		m := v.manifests[id]
		if m == nil {
			continue
		}
		if p := m.Parent; p != 0 {
			parent := format.ManifestPath(p)
			switch err := v.bad[p]; {
			case err == nil:
			case errors.Is(err, ErrCheckpointNotFound):
				v.add(parent, ProblemParent, fmt.Sprintf("checkpoint %d is incremental on checkpoint %d, whose manifest does not exist", id, p),
					adviceManifest(parent), id)
			default:
				v.addDamage(parent, err, adviceManifest(parent), id)
			}
		}
		for _, op := range m.Operators {
			for _, rs := range op.Ranges {
				for j, l := range rs.Layers {
					w := v.manifests[l.Checkpoint]
					if l.Checkpoint == id || w == nil {
						continue
					}
					if written[w.CheckpointID] == nil {
						written[w.CheckpointID] = layersWrittenBy(w)
					}
					text := ""
					switch wl, ok := written[w.CheckpointID][l.Hash]; {
					case !ok:
						text = fmt.Sprintf("operator %q range [%d,%d] layer %d: segment %s is recorded as written by checkpoint %d, whose manifest does not list it",
							op.ID, rs.Start, rs.End, j, shortHash(l.Hash), w.CheckpointID)
					case wl.Size != l.Size || wl.Entries != l.Entries:
						text = fmt.Sprintf("operator %q range [%d,%d] layer %d: segment %s is recorded with %d bytes and %d entries, checkpoint %d's manifest says %d bytes and %d entries",
							op.ID, rs.Start, rs.End, j, shortHash(l.Hash), l.Size, l.Entries, w.CheckpointID, wl.Size, wl.Entries)
					default:
						continue
					}
					name := format.ManifestPath(id)
					v.add(name, ProblemMismatch, text, adviceManifest(name), id)
				}
			}
		}
	}
	return nil
}

// layersWrittenBy indexes the layers m records as its own.
func layersWrittenBy(m *format.Manifest) map[string]format.SegmentRef {
	out := make(map[string]format.SegmentRef)
	for _, op := range m.Operators {
		for _, rs := range op.Ranges {
			for _, l := range rs.Layers {
				if l.Checkpoint == m.CheckpointID {
					out[l.Hash] = l
				}
			}
		}
	}
	return out
}

// segmentUse is everything the checked manifests say about one segment.
type segmentUse struct {
	hash string
	uses []layerUse
}

type layerUse struct {
	checkpoint uint64
	op         string
	start, end uint32
	ref        format.SegmentRef
}

// checkpoints returns the checkpoints that reference the segment.
func (s *segmentUse) checkpoints() []uint64 {
	var ids []uint64
	for _, u := range s.uses {
		if !slices.Contains(ids, u.checkpoint) {
			ids = append(ids, u.checkpoint)
		}
	}
	return ids
}

// checkSegments checks every distinct segment of the valid targets once,
// with up to v.limit segments in flight.
func (v *verifier) checkSegments(ctx context.Context, checked []uint64) error {
	byHash := make(map[string]*segmentUse)
	var order []*segmentUse
	for _, id := range checked {
		m := v.manifests[id]
		if m == nil {
			continue
		}
		for _, op := range m.Operators {
			for _, rs := range op.Ranges {
				for _, l := range rs.Layers {
					s := byHash[l.Hash]
					if s == nil {
						s = &segmentUse{hash: l.Hash}
						byHash[l.Hash] = s
						order = append(order, s)
					}
					s.uses = append(s.uses, layerUse{checkpoint: id, op: op.ID, start: rs.Start, end: rs.End, ref: l})
				}
			}
		}
	}
	v.totals.Segments = len(order)
	var total, done int64
	for _, s := range order {
		total += s.uses[0].ref.Size
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.limit)
	for _, s := range order {
		g.Go(func() error {
			err := v.checkSegment(gctx, s)
			if v.opts.Progress != nil {
				v.mu.Lock()
				done += s.uses[0].ref.Size
				v.opts.Progress(done, total)
				v.mu.Unlock()
			}
			return err
		})
	}
	return g.Wait()
}

// checkSegment checks one segment. Damage is added to the report; the
// error is kept for failures of the store.
func (v *verifier) checkSegment(ctx context.Context, s *segmentUse) error {
	name := format.SegmentPath(s.hash)
	advice := adviceSegment(name)
	all := s.checkpoints()
	obj, err := v.repo.store.Open(ctx, name)
	if err != nil {
		if !errors.Is(err, store.ErrNotExist) {
			return err
		}
		v.add(name, ProblemMissing, "the segment does not exist", advice, all...)
		return nil
	}
	defer obj.Close()
	size := obj.Size()
	v.mu.Lock()
	v.totals.SegmentBytes += size
	v.mu.Unlock()

	sizeOK := false
	for _, u := range s.uses {
		if u.ref.Size == size {
			sizeOK = true
			continue
		}
		v.add(name, ProblemSize, fmt.Sprintf("the segment has %d bytes, the manifest records %d", size, u.ref.Size), advice, u.checkpoint)
	}
	if !sizeOK {
		return nil // every reader would fail on it; its bytes add nothing
	}

	deep := v.deep && v.opts.Sample.Contains(s.hash)
	var r io.ReaderAt = obj
	var hr *hashingReaderAt
	if deep {
		hr = newHashingReaderAt(obj, size, v.hashBufs)
		defer hr.Close()
		r = hr
		v.mu.Lock()
		v.totals.DeepSegments++
		v.totals.DeepBytes += size
		v.mu.Unlock()
	}
	seg, err := format.OpenSegment(r, size, name)
	if err != nil {
		return v.damageOrFail(name, err, advice, all)
	}
	info := seg.Info()
	for _, u := range s.uses {
		if u.ref.Entries != info.Entries {
			v.add(name, ProblemMismatch, fmt.Sprintf("the segment's index counts %d entries, the manifest records %d", info.Entries, u.ref.Entries),
				adviceSegmentOrManifest(name, u.checkpoint), u.checkpoint)
		}
		if info.Entries > 0 && (info.MinKeyGroup < u.start || info.MaxKeyGroup > u.end) {
			v.add(name, ProblemMismatch, fmt.Sprintf("the segment holds key groups %d..%d, outside range [%d,%d] of operator %q that names it",
				info.MinKeyGroup, info.MaxKeyGroup, u.start, u.end, u.op), adviceSegmentOrManifest(name, u.checkpoint), u.checkpoint)
		}
	}
	if !deep {
		return nil
	}
	if err := seg.Verify(); err != nil {
		return v.damageOrFail(name, err, advice, all)
	}
	sum, err := hr.Sum()
	if err != nil {
		return v.damageOrFail(name, err, advice, all)
	}
	if sum != s.hash {
		v.add(name, ProblemHash, fmt.Sprintf("the content's SHA-256 is %s, the name and the manifest say %s", sum, s.hash), advice, all...)
	}
	return nil
}

// damageOrFail reports err as damage of name, or returns it when it is a
// failure to read the store.
func (v *verifier) damageOrFail(name string, err error, advice string, checkpoints []uint64) error {
	if !isInspectDamage(err) {
		return err
	}
	v.addDamage(name, err, advice, checkpoints...)
	return nil
}

func (v *verifier) report(checked []uint64) *VerifyReport {
	r := &VerifyReport{
		Checkpoints: checked,
		Deep:        v.deep,
		Sample:      v.opts.Sample.String(),
		Totals:      v.totals,
		Problems:    []Problem{},
	}
	if r.Checkpoints == nil {
		r.Checkpoints = []uint64{}
	}
	for _, p := range v.problems {
		slices.Sort(p.Checkpoints)
		r.Problems = append(r.Problems, *p)
	}
	slices.SortFunc(r.Problems, func(a, b Problem) int {
		return cmp.Or(
			slices.Compare(a.Checkpoints, b.Checkpoints),
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Problem, b.Problem))
	})
	r.Totals.Checkpoints = len(checked)
	r.Totals.Problems = len(r.Problems)
	return r
}

// describeDamage classifies err and words it without the file name, which
// Problem carries in its own field.
func describeDamage(file string, err error) (kind, text string) {
	switch {
	case errors.Is(err, store.ErrNotExist), errors.Is(err, ErrCheckpointNotFound):
		kind = ProblemMissing
	case errors.Is(err, format.ErrChecksum):
		kind = ProblemChecksum
	case errors.Is(err, format.ErrTruncated):
		kind = ProblemTruncated
	case errors.Is(err, format.ErrBadMagic):
		kind = ProblemBadMagic
	case errors.Is(err, format.ErrUnsupportedVersion):
		kind = ProblemVersion
	case errors.Is(err, format.ErrTooLarge):
		kind = ProblemTooLarge
	default:
		kind = ProblemMalformed
	}
	var ce *format.CorruptError
	switch {
	case errors.As(err, &ce) && ce.File == file:
		text = ce.Record
		if ce.Offset >= 0 {
			text += fmt.Sprintf(" at offset %d", ce.Offset)
		}
		text += ": " + ce.Err.Error()
	case kind == ProblemMissing:
		text = "the object does not exist"
	default:
		text = err.Error()
	}
	return kind, text
}

func adviceManifest(name string) string {
	return fmt.Sprintf("restore %s from a replica or backup; until then restore an older checkpoint that verifies", name)
}

func adviceSegment(name string) string {
	return fmt.Sprintf("restore %s from a replica or backup (segments are immutable: any copy whose SHA-256 matches its name will do); until then restore a checkpoint that does not reference it", name)
}

func adviceSegmentOrManifest(name string, id uint64) string {
	return fmt.Sprintf("the segment or the manifest is wrong: restore %s and %s from a replica or backup; until then restore an older checkpoint that verifies", name, format.ManifestPath(id))
}

func shortHash(h string) string { return h[:min(12, len(h))] }

// hashingReaderAt computes the SHA-256 of an object while a segment reader
// reads it, so a deep check reads each byte once. Reads that continue at or
// near where the previous ones ended are served from a window refilled by
// large sequential reads, each byte hashed as it arrives; other reads (the
// footer and index at open, when the segment is large) go to the object
// directly. A segment reader reads its blocks in file order, so over S3 this
// turns one ranged GET per block into one per chunk.
type hashingReaderAt struct {
	mu     sync.Mutex
	r      io.ReaderAt
	size   int64
	sha    hash.Hash
	bufs   *sync.Pool // of *[]byte with capacity hashBufCap
	win    []byte     // object bytes [winOff, hashed)
	winOff int64
	hashed int64 // bytes [0, hashed) have been hashed, in order
}

// hashChunk is the sequential read size: large enough that a ranged GET's
// latency is small against its transfer, small enough to keep one window
// per worker in memory.
const hashChunk = 2 << 20

// hashBufCap holds a chunk plus the tail of the previous window that a
// block straddling the chunk boundary still needs.
const hashBufCap = hashChunk + hashChunk/2

// newHashBufs returns the pool windows are taken from, one per Verify, so a
// verify of many segments allocates a window per worker rather than per
// segment.
func newHashBufs() *sync.Pool {
	return &sync.Pool{New: func() any {
		b := make([]byte, 0, hashBufCap)
		return &b
	}}
}

func newHashingReaderAt(r io.ReaderAt, size int64, bufs *sync.Pool) *hashingReaderAt {
	return &hashingReaderAt{r: r, size: size, sha: sha256.New(), bufs: bufs}
}

// ReadAt implements io.ReaderAt with os.File's end-of-file behaviour.
func (h *hashingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if off >= h.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), h.size-off)]
	end := off + int64(len(want))
	if off < h.winOff || off > h.hashed+hashChunk {
		n, err := h.r.ReadAt(want, off)
		if err == nil && n < len(p) {
			err = io.EOF
		}
		return n, err
	}
	if end > h.hashed {
		if err := h.advance(off, end); err != nil {
			return 0, err
		}
	}
	n := copy(want, h.win[off-h.winOff:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// advance reads and hashes from h.hashed through at least end (a chunk at
// least), keeping the bytes from min(off, h.hashed) as the new window.
func (h *hashingReaderAt) advance(off, end int64) error {
	to := min(max(end, h.hashed+hashChunk), h.size)
	keepFrom := min(off, h.hashed)
	keep := int(h.hashed - keepFrom)
	n := int(to - h.hashed)
	need := keep + n
	if cap(h.win) >= need {
		// copy is a memmove: the kept tail slides to the front.
		copy(h.win[:keep], h.win[len(h.win)-keep:])
		h.win = h.win[:need]
	} else {
		var buf []byte
		if need <= hashBufCap {
			buf = (*h.bufs.Get().(*[]byte))[:need]
		} else {
			buf = make([]byte, need) // a block larger than a chunk
		}
		copy(buf, h.win[len(h.win)-keep:])
		h.release()
		h.win = buf
	}
	fresh := h.win[keep:]
	if got, err := h.r.ReadAt(fresh, h.hashed); got < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the object is shorter than when opened
		}
		return fmt.Errorf("read at offset %d: %w", h.hashed, err)
	}
	h.sha.Write(fresh)
	h.winOff, h.hashed = keepFrom, to
	return nil
}

// release returns the window's storage to the pool.
func (h *hashingReaderAt) release() {
	if cap(h.win) == hashBufCap {
		b := h.win[:0]
		h.bufs.Put(&b)
	}
	h.win = nil
}

// Sum reads and hashes whatever the segment reader did not read, returns
// the object's SHA-256 as lowercase hex and releases the window.
func (h *hashingReaderAt) Sum() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.release()
	for h.hashed < h.size {
		if err := h.advance(h.hashed, h.hashed); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.sha.Sum(nil)), nil
}

// Close releases the window without finishing the hash.
func (h *hashingReaderAt) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.release()
}
