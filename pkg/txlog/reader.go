package txlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// Segment is one segment object in a store, as listed.
type Segment struct {
	Name     string    // object name, "txlog/<stream>/<first>.log"
	Stream   string    // the stream
	FirstLSN uint64    // from the name
	Size     int64     // bytes
	ModTime  time.Time // when the object was written
}

// Streams returns the names of the streams that have objects under txlog/
// in store, sorted.
func Streams(ctx context.Context, store store.Store) ([]string, error) {
	var streams []string
	for info, err := range store.List(ctx, logPrefix) {
		if err != nil {
			return nil, fmt.Errorf("txlog: list streams: %w", err)
		}
		stream, _, ok := strings.Cut(strings.TrimPrefix(info.Name, logPrefix), "/")
		if !ok || ValidateStream(stream) != nil {
			continue
		}
		if !slices.Contains(streams, stream) {
			streams = append(streams, stream)
		}
	}
	// Listing order is by full name, and "a-b/..." sorts before "a/...".
	slices.Sort(streams)
	return streams, nil
}

// Segments returns stream's segments in store, in LSN order. Objects in the
// stream's directory that are not canonically named segments are left out
// (Verify reports them). A stream without segments gives an empty slice.
func Segments(ctx context.Context, store store.Store, stream string) ([]Segment, error) {
	segs, _, err := listStream(ctx, store, stream)
	return segs, err
}

// listStream lists the stream's segments and the other objects beside them.
func listStream(ctx context.Context, store store.Store, stream string) (segs []Segment, strays []store.ObjectInfo, err error) {
	if err := ValidateStream(stream); err != nil {
		return nil, nil, err
	}
	prefix := logPrefix + stream + "/"
	for info, err := range store.List(ctx, prefix) {
		if err != nil {
			return nil, nil, fmt.Errorf("txlog: list stream %q: %w", stream, err)
		}
		first, ok := parseSegmentFile(strings.TrimPrefix(info.Name, prefix))
		if !ok {
			strays = append(strays, info)
			continue
		}
		segs = append(segs, Segment{Name: info.Name, Stream: stream, FirstLSN: first, Size: info.Size, ModTime: info.ModTime})
	}
	// Names hold 20 digits, so the listing's lexical order is LSN order.
	return segs, strays, nil
}

// segmentScan reads one segment object from a store.
type segmentScan struct {
	obj store.Object
	sr  *SegmentReader
}

// openScan opens seg and checks its header against its name and stream.
// Header damage is a *format.CorruptError; a store failure is wrapped.
func openScan(ctx context.Context, store store.Store, seg Segment) (*segmentScan, error) {
	obj, err := store.Open(ctx, seg.Name)
	if err != nil {
		return nil, fmt.Errorf("txlog: open %s: %w", seg.Name, err)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(obj, 0, obj.Size()), 256<<10)
	sr, err := NewSegmentReader(br, seg.Name)
	if err == nil {
		err = checkSegmentHeader(sr.Header(), seg.Name, seg.Stream, seg.FirstLSN)
	}
	if err != nil {
		obj.Close()
		return nil, err
	}
	return &segmentScan{obj: obj, sr: sr}, nil
}

// tornAt reports whether err, which ended the scan of the stream's last
// segment, is a torn tail.
func (s *segmentScan) tornAt(err error) (bool, error) {
	return isTornTail(err, s.obj, s.sr.Offset(), s.obj.Size())
}

// Replay calls fn for the records of stream with from <= LSN <= to, in LSN
// order across segments, stopping before the first record whose time is
// after until. from 0 means the oldest record in the store, to 0 no upper
// bound and a zero until no time bound. The record passed to fn is valid
// only during the call (use Record.Clone to keep it); an error from fn
// stops the replay and is returned as it is. A mutations record comes as
// its mutation records, one call each (format.Record.Mutations).
//
// Only the segments that can hold from or later are read. A from below the
// oldest segment, or more than one past the newest record, is
// ErrLSNNotFound: those records were truncated, or never written. A torn
// tail of the last segment ends the replay cleanly, since a writer may be
// appending to it or may have crashed; any other damage, and a gap between
// segments, is a *format.CorruptError. A stream without segments is
// ErrStreamNotFound.
func Replay(ctx context.Context, store store.Store, stream string, from, to uint64, until time.Time, fn func(*format.Record) error) error {
	if to != 0 && from > to {
		return fmt.Errorf("txlog: replay %q: from %d is after to %d", stream, from, to)
	}
	segs, _, err := listStream(ctx, store, stream)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		return fmt.Errorf("%w: %q in %s", ErrStreamNotFound, stream, store.Location())
	}
	start := 0
	if from > 0 {
		if from < segs[0].FirstLSN {
			return fmt.Errorf("%w: LSN %d precedes the oldest segment of stream %q, which starts at %d (truncated after a checkpoint?)",
				ErrLSNNotFound, from, stream, segs[0].FirstLSN)
		}
		// The last segment starting at or before from holds it, if any does.
		start = len(segs) - 1
		for start > 0 && segs[start].FirstLSN > from {
			start--
		}
	}
	var untilNano int64
	if !until.IsZero() {
		untilNano = until.UnixNano()
	}
	next := segs[start].FirstLSN // LSN the next record must carry
	for i := start; i < len(segs); i++ {
		seg := segs[i]
		if seg.FirstLSN != next {
			return gapError(segs[i-1], seg, next)
		}
		done, last, err := replaySegment(ctx, store, seg, i == len(segs)-1, from, to, untilNano, fn)
		if err != nil || done {
			return err
		}
		next = last + 1
	}
	// Compared as last LSNs, so that next wrapping to 0 after the largest
	// LSN reads as the end it is.
	if from > 0 && from-1 > next-1 {
		return fmt.Errorf("%w: LSN %d is past the end of stream %q, whose last record is %d", ErrLSNNotFound, from, stream, next-1)
	}
	return nil
}

// replaySegment replays one segment. done means a bound was reached. last is
// the segment's last LSN (first - 1 when empty).
func replaySegment(ctx context.Context, store store.Store, seg Segment, isLast bool, from, to uint64, untilNano int64, fn func(*format.Record) error) (done bool, last uint64, err error) {
	scan, err := openScan(ctx, store, seg)
	if err != nil {
		return false, 0, err
	}
	defer scan.obj.Close()
	for {
		rec, err := scan.sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if isLast {
				torn, terr := scan.tornAt(err)
				if terr != nil {
					return false, 0, fmt.Errorf("txlog: read %s: %w", seg.Name, terr)
				}
				if torn {
					break
				}
			}
			return false, 0, err
		}
		switch {
		case rec.LSN < from:
			continue
		case to != 0 && rec.LSN > to, untilNano != 0 && rec.Time > untilNano:
			return true, 0, nil
		}
		if rec.Type == format.RecordMutations {
			err = rec.Mutations(fn)
		} else {
			err = fn(rec)
		}
		if err != nil {
			return true, 0, err
		}
	}
	last, ok := scan.sr.Last()
	if !ok {
		last = seg.FirstLSN - 1
	}
	return false, last, nil
}

// gapError reports that next does not start where prev ended.
func gapError(prev, next Segment, want uint64) error {
	what := fmt.Sprintf("records %d to %d are missing between %s and this segment", want, next.FirstLSN-1, prev.Name)
	if next.FirstLSN < want {
		what = fmt.Sprintf("it starts at LSN %d, but %s already holds records up to %d", next.FirstLSN, prev.Name, want-1)
	}
	return &format.CorruptError{File: next.Name, Offset: -1, Record: "segment",
		Err: fmt.Errorf("%w: %w: %s", format.ErrMalformed, ErrGap, what)}
}

// SegmentStatus is Verify's verdict on one segment.
type SegmentStatus string

// Segment statuses.
const (
	StatusOK       SegmentStatus = "ok"        // every byte read and checked
	StatusTornTail SegmentStatus = "torn-tail" // ok up to a torn tail (last segment only)
	StatusDamaged  SegmentStatus = "damaged"   // unreadable from some offset on
)

// SegmentSummary is what Verify read from one segment.
type SegmentSummary struct {
	Segment
	Created   time.Time     // from the header; zero if the header is damaged
	Records   int64         // intact records
	LastLSN   uint64        // last intact record's LSN; FirstLSN-1 if none
	FirstTime time.Time     // first intact record's time; zero if none
	LastTime  time.Time     // last intact record's time; zero if none
	Status    SegmentStatus // ok, torn-tail or damaged
}

// ProblemKind classifies a Problem.
type ProblemKind string

// Problem kinds. Only ProblemDamage makes Report.Damaged true.
const (
	// ProblemDamage is lost or unreadable data: a bad header or record, a
	// sealed segment cut short, an LSN gap or overlap.
	ProblemDamage ProblemKind = "damage"
	// ProblemTornTail is an incomplete write at the end of the last segment:
	// what a crash leaves of records that were never acknowledged, or a
	// writer caught mid-append. The writer cuts it off on its next Open.
	ProblemTornTail ProblemKind = "torn-tail"
	// ProblemStray is an object in the stream's directory that is not a
	// segment; readers ignore it.
	ProblemStray ProblemKind = "stray"
	// ProblemUncovered is a checkpoint whose log position the stream no
	// longer (or never) covers: the records after it are gone, so state
	// after that checkpoint cannot be rebuilt from the log (CheckCoverage).
	ProblemUncovered ProblemKind = "uncovered-checkpoint"
)

// Problem is one finding of Verify.
type Problem struct {
	Kind   ProblemKind
	File   string // object name
	Offset int64  // byte offset in File, or -1 when it concerns the whole object
	What   string // what is wrong, in one line
	Advice string // what an operator can do about it
	Err    error  // the underlying error, when there is one
}

// Report is the result of Verify on one stream.
type Report struct {
	Stream   string
	Location string // the store's address
	Segments []SegmentSummary
	Records  int64  // intact records in all segments
	FirstLSN uint64 // first LSN of the oldest segment; 0 if none
	LastLSN  uint64 // last intact record's LSN; 0 if none
	Problems []Problem
}

// Damaged reports whether any problem is damage or an uncovered checkpoint
// (torn tails and strays are not).
func (r *Report) Damaged() bool {
	return slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Kind == ProblemDamage || p.Kind == ProblemUncovered })
}

// CheckpointPosition is a checkpoint's position in a stream, as its
// manifest records it.
type CheckpointPosition struct {
	Checkpoint uint64
	LSN        uint64 // the last record the checkpoint covers
}

// CheckCoverage adds to rep a ProblemUncovered for each checkpoint whose
// position the stream's log does not cover: a replay from checkpoint N
// needs every record after its position, so the log must start at or
// before the position's next LSN and reach the position.
func CheckCoverage(rep *Report, checkpoints []CheckpointPosition) {
	for _, c := range checkpoints {
		var what string
		switch {
		case len(rep.Segments) == 0:
			what = fmt.Sprintf("checkpoint %d needs the log after LSN %d; the stream has no segments", c.Checkpoint, c.LSN)
		case rep.FirstLSN > c.LSN+1:
			what = fmt.Sprintf("checkpoint %d needs the log after LSN %d; the stream starts at LSN %d", c.Checkpoint, c.LSN, rep.FirstLSN)
		case rep.LastLSN < c.LSN:
			what = fmt.Sprintf("checkpoint %d covers the log up to LSN %d; the stream ends at LSN %d", c.Checkpoint, c.LSN, rep.LastLSN)
		default:
			continue
		}
		rep.Problems = append(rep.Problems, Problem{Kind: ProblemUncovered, File: logPrefix + rep.Stream + "/", Offset: -1, What: what,
			Advice: "restore the missing segments from a good copy; until then, state after this checkpoint cannot be rebuilt from the log (restoring the checkpoint itself is unaffected)"})
	}
}

// Advice for the operator, shared by the problems that need it.
const (
	adviceRestore  = "restore this segment from a good copy (for example the store the log is uploaded to); until then, replay stops here and state after it cannot be rebuilt from the log"
	adviceTornTail = "nothing to do: the records in it were never acknowledged, and the writer cuts the tail off when it next opens the log"
	adviceMissing  = "restore the missing segment from a good copy; if a checkpoint already covers these LSNs, the log before it is no longer needed"
	adviceStray    = "not a segment name: readers ignore it; move it away if it does not belong here"
)

// Verify reads every segment of stream in store and reports what it finds:
// damaged headers and records (file and offset), sealed segments cut
// short, LSN gaps and overlaps between segments, a torn tail of the last
// segment, and stray objects. Damage goes into the report, not the error;
// the error is for a store that cannot be read, an invalid stream name, or
// ErrStreamNotFound when the stream has no objects at all.
func Verify(ctx context.Context, store store.Store, stream string) (*Report, error) {
	segs, strays, err := listStream(ctx, store, stream)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 && len(strays) == 0 {
		return nil, fmt.Errorf("%w: %q in %s", ErrStreamNotFound, stream, store.Location())
	}
	rep := &Report{Stream: stream, Location: store.Location()}
	for _, s := range strays {
		rep.Problems = append(rep.Problems, Problem{Kind: ProblemStray, File: s.Name, Offset: -1,
			What: "object is not a segment", Advice: adviceStray})
	}
	if len(segs) > 0 {
		rep.FirstLSN = segs[0].FirstLSN
	}
	var prev *SegmentSummary
	for i, seg := range segs {
		sum, probs, err := verifySegment(ctx, store, seg, i == len(segs)-1)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			rep.Problems = append(rep.Problems, continuity(*prev, sum)...)
		}
		rep.Problems = append(rep.Problems, probs...)
		rep.Segments = append(rep.Segments, sum)
		rep.Records += sum.Records
		if sum.Records > 0 {
			rep.LastLSN = sum.LastLSN
		}
		prev = &rep.Segments[len(rep.Segments)-1]
	}
	return rep, nil
}

// continuity checks that cur starts where prev ended. After a damaged
// segment prev's true end is unknown: only an overlap with its intact part
// is certain.
func continuity(prev, cur SegmentSummary) []Problem {
	want := prev.LastLSN + 1
	switch {
	case cur.FirstLSN == want:
		return nil
	case cur.FirstLSN < want:
		return []Problem{{Kind: ProblemDamage, File: cur.Name, Offset: -1,
			What:   fmt.Sprintf("LSN overlap: starts at %d, but %s holds records up to %d", cur.FirstLSN, prev.Name, prev.LastLSN),
			Advice: "two segments claim the same LSNs: one of them comes from another log; compare them with txlog replay and remove the stray one"}}
	case prev.Status == StatusDamaged:
		return nil
	}
	return []Problem{{Kind: ProblemDamage, File: cur.Name, Offset: -1,
		What:   fmt.Sprintf("LSN gap: records %d to %d are missing before this segment (after %s)", want, cur.FirstLSN-1, prev.Name),
		Advice: adviceMissing}}
}

// verifySegment reads one segment to its end or its first damage.
func verifySegment(ctx context.Context, store store.Store, seg Segment, isLast bool) (SegmentSummary, []Problem, error) {
	sum := SegmentSummary{Segment: seg, LastLSN: seg.FirstLSN - 1, Status: StatusOK}
	scan, err := openScan(ctx, store, seg)
	var ce *format.CorruptError
	switch {
	case errors.As(err, &ce):
		sum.Status = StatusDamaged
		return sum, []Problem{{Kind: ProblemDamage, File: seg.Name, Offset: ce.Offset,
			What: ce.Record + ": " + ce.Err.Error(), Advice: adviceRestore, Err: err}}, nil
	case err != nil:
		return sum, nil, err
	}
	defer scan.obj.Close()
	sum.Created = time.Unix(0, scan.sr.Header().Created).UTC()
	for {
		rec, err := scan.sr.Next()
		if err == io.EOF {
			return sum, nil, nil
		}
		if err != nil {
			p, err := scanProblem(scan, seg, isLast, err)
			if err != nil {
				return sum, nil, err
			}
			if p.Kind == ProblemTornTail {
				sum.Status = StatusTornTail
			} else {
				sum.Status = StatusDamaged
			}
			return sum, []Problem{p}, nil
		}
		t := time.Unix(0, rec.Time).UTC()
		if sum.Records == 0 {
			sum.FirstTime = t
		}
		sum.LastTime = t
		sum.LastLSN = rec.LSN
		sum.Records++
	}
}

// scanProblem turns the error that ended a segment's scan into a Problem,
// or returns it if it is a store failure rather than damage.
func scanProblem(scan *segmentScan, seg Segment, isLast bool, err error) (Problem, error) {
	var ce *format.CorruptError
	if !errors.As(err, &ce) {
		return Problem{}, fmt.Errorf("txlog: read %s: %w", seg.Name, err)
	}
	good := scan.sr.Offset()
	lastLSN, _ := scan.sr.Last()
	after := fmt.Sprintf("after LSN %d", lastLSN)
	if _, ok := scan.sr.Last(); !ok {
		after = "before the first record"
	}
	if isLast {
		torn, terr := scan.tornAt(err)
		if terr != nil {
			return Problem{}, fmt.Errorf("txlog: read %s: %w", seg.Name, terr)
		}
		if torn {
			return Problem{Kind: ProblemTornTail, File: seg.Name, Offset: good,
				What:   fmt.Sprintf("torn tail: %d bytes %s do not form a whole record (%v)", scan.obj.Size()-good, after, ce.Err),
				Advice: adviceTornTail, Err: err}, nil
		}
	}
	what := fmt.Sprintf("%s: %v; %d bytes %s are unreadable", ce.Record, ce.Err, scan.obj.Size()-good, after)
	if !isLast && errors.Is(err, format.ErrTruncated) {
		what = fmt.Sprintf("sealed segment cut short %s: %v (it was fsynced before the next segment began, so this is damage or an incomplete copy)", after, ce.Err)
	}
	return Problem{Kind: ProblemDamage, File: seg.Name, Offset: ce.Offset, What: what, Advice: adviceRestore, Err: err}, nil
}
