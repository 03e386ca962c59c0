package txlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"

	"github.com/arkstate/arkstate/internal/fsutil"
	"github.com/arkstate/arkstate/pkg/format"
)

// SyncPolicy says when Append's records are fsynced.
type SyncPolicy int

// Sync policies. The zero value is SyncGroup.
const (
	// SyncGroup returns from Append once the record is fsynced. One fsync
	// covers every record written while the previous fsync ran, so
	// concurrent appenders share the cost (group commit). Records that
	// nobody waits for (Submit) may wait up to 5 ms to be written with
	// others.
	SyncGroup SyncPolicy = iota
	// SyncEach fsyncs every record on its own, in LSN order: the baseline
	// group commit is measured against.
	SyncEach
	// SyncInterval returns from Append once the record is written to the
	// operating system, and fsyncs every Options.Interval, on Sync and on
	// Close. A process crash loses nothing acknowledged; a machine crash
	// may lose the last interval.
	SyncInterval
)

// String returns the policy's name as configuration spells it.
func (p SyncPolicy) String() string {
	switch p {
	case SyncGroup:
		return "group"
	case SyncEach:
		return "each"
	case SyncInterval:
		return "interval"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// ParseSyncPolicy parses "group", "each" or "interval".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	for _, p := range []SyncPolicy{SyncGroup, SyncEach, SyncInterval} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("txlog: unknown sync policy %q (want group, each or interval)", s)
}

// Defaults of Options.
const (
	DefaultSegmentSize  = 64 << 20
	DefaultSyncInterval = 100 * time.Millisecond
)

// Options configures a Log. The zero value is usable.
type Options struct {
	// Sync is the fsync policy; the default is SyncGroup.
	Sync SyncPolicy
	// Interval is SyncInterval's period; default DefaultSyncInterval.
	Interval time.Duration
	// SegmentSize is the size at which a new segment is started; default
	// DefaultSegmentSize. A segment exceeds it only to hold a single record
	// larger than that.
	SegmentSize int64
	// StartLSN is the first LSN of a stream that has no segment yet, for a
	// log restarted next to a checkpoint that already covers LSNs; default 1.
	StartLSN uint64
	// Now stamps records that Append receives with a zero Time, and new
	// segment headers; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Sync < SyncGroup || o.Sync > SyncInterval:
		return o, fmt.Errorf("txlog: unknown sync policy %d", int(o.Sync))
	case o.Interval < 0:
		return o, fmt.Errorf("txlog: negative sync interval %v", o.Interval)
	case o.SegmentSize < 0:
		return o, fmt.Errorf("txlog: negative segment size %d", o.SegmentSize)
	}
	if o.Interval == 0 {
		o.Interval = DefaultSyncInterval
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.StartLSN == 0 {
		o.StartLSN = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Names of the writer's own files in a stream directory. They start with
// the dir store's reserved prefix, so no object name can collide with them
// and a store.DirStore never lists them.
const (
	lockFileName = ".arkstate-txlog-lock"
	tempPrefix   = ".arkstate-tmp-txlog-"
)

// TailCut describes the torn tail that Open cut off the last segment: the
// bytes of records that a crash interrupted before they were acknowledged.
type TailCut struct {
	Segment string // object name, "txlog/<stream>/<first>.log"
	Offset  int64  // new size of the segment: the end of its last intact record
	Bytes   int64  // bytes removed
	Reason  error  // the *format.CorruptError that ended the scan
}

// Stats counts what a Log did since Open.
type Stats struct {
	NextLSN    uint64 // LSN the next Append will get
	WrittenLSN uint64 // last LSN written to the operating system; 0 if none
	DurableLSN uint64 // last LSN known to be fsynced; 0 if none
	Appends    uint64 // records appended
	Batches    uint64 // group writes: runs of the committer that wrote records
	Fsyncs     uint64 // fsync calls on segment files and the stream directory
	Bytes      uint64 // record bytes written
	Rolls      uint64 // segments started after the first
	Segments   int    // segments on disk
}

// Log is the single writer of one stream in a local directory. Its methods
// are safe for concurrent use.
//
// Records are appended by one committer goroutine: Append encodes the
// record into the current batch and waits; the committer takes the whole
// batch, writes it with one write per segment touched, and fsyncs once for
// all of it (under SyncGroup). While it waits for the disk, the next batch
// fills up.
type Log struct {
	stream string
	sdir   string
	opts   Options
	lock   *flock.Flock
	tail   *TailCut

	mu       sync.Mutex
	next     uint64 // LSN for the next Append; 0 once LSNs are exhausted
	lastTime int64  // largest record time appended
	cur      *batch
	spare    []byte // a committed batch's buffer, for reuse
	closed   bool
	failed   error

	kick   chan struct{} // wakes the committer; capacity 1
	quit   chan struct{}
	exited chan struct{}

	// Owned by the committer; fmu also lets Truncate and Close in.
	fmu      sync.Mutex
	segs     []segFile // on disk, oldest first; the last is active
	f        *os.File  // active segment; nil before the first write
	fsize    int64
	frecs    int64
	unsynced bool  // written since the last fsync
	broken   error // sticky write or fsync failure

	written, durable                        atomic.Uint64
	appends, batches, fsyncs, nbytes, rolls atomic.Uint64
	nsegs                                   atomic.Int64
}

type segFile struct {
	first uint64
	path  string
}

// batch is the records waiting for one committer run. Appenders add to it
// under Log.mu and wait on done; the committer owns it once it is swapped
// out.
type batch struct {
	buf   []byte
	ends  []int  // end offset in buf of each record
	first uint64 // LSN of the first record
	sync  bool   // a Sync call waits on it
	seal  bool   // a Seal call waits on it
	// waited says an Append, or a Submit over maxQueued, waits on it:
	// the committer takes it at once instead of letting it fill.
	waited bool
	done   chan struct{}
	err    error
}

// Open opens the stream's log under dir (the store root: segments are
// dir/txlog/<stream>/<first LSN>.log), creating it if needed, and takes the
// stream's writer lock (ErrLocked if another Log holds it).
//
// The last segment is scanned to find the next LSN. A torn tail, a record cut
// short (format.ErrTruncated) or zero bytes after the last intact record, is
// what a crash leaves of unacknowledged writes: it is cut off, fsynced and
// reported by TailCut. Any other damage in the last segment is returned as
// a *format.CorruptError and the log is not opened, because cutting there
// could discard acknowledged records. Sealed segments are not read; Verify
// checks them.
func Open(dir, stream string, opts Options) (*Log, error) {
	if err := ValidateStream(stream); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("txlog: open %s: %w", dir, err)
	}
	sdir := filepath.Join(root, "txlog", stream)
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return nil, fmt.Errorf("txlog: open stream %q: %w", stream, err)
	}
	// The directories may be new: make their entries durable before any
	// segment in them is acknowledged.
	for _, d := range []string{filepath.Dir(sdir), root} {
		if err := syncDir(d); err != nil {
			return nil, fmt.Errorf("txlog: open stream %q: %w", stream, err)
		}
	}
	lock := flock.New(filepath.Join(sdir, lockFileName), flock.SetPermissions(0o644))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("txlog: lock stream %q: %w", stream, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrLocked, sdir)
	}
	l := &Log{
		stream: stream,
		sdir:   sdir,
		opts:   opts,
		lock:   lock,
		kick:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	l.cur = l.newBatch()
	if err := l.load(); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		lock.Close()
		return nil, err
	}
	go l.run()
	return l, nil
}

// load lists the segments, removes temporary files of an interrupted roll
// and recovers the last segment.
func (l *Log) load() error {
	ents, err := os.ReadDir(l.sdir)
	if err != nil {
		return fmt.Errorf("txlog: open stream %q: %w", l.stream, err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			// A roll that crashed before its link; we hold the lock, so
			// no live writer owns it.
			if err := os.Remove(filepath.Join(l.sdir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("txlog: open stream %q: %w", l.stream, err)
			}
			continue
		}
		first, ok := parseSegmentFile(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		// ReadDir sorts by name, which with 20-digit names is LSN order.
		l.segs = append(l.segs, segFile{first: first, path: filepath.Join(l.sdir, name)})
	}
	l.nsegs.Store(int64(len(l.segs)))
	if len(l.segs) == 0 {
		l.next = l.opts.StartLSN
		return nil
	}
	return l.recoverLast()
}

// recoverLast scans the last segment, cuts a torn tail and leaves the file
// open at its end for appending.
func (l *Log) recoverLast() error {
	seg := l.segs[len(l.segs)-1]
	name := SegmentName(l.stream, seg.first)
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("txlog: open %s: %w", name, err)
	}
	l.f = f
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("txlog: open %s: %w", name, err)
	}
	size := fi.Size()
	sr, err := NewSegmentReader(bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10), name)
	if err != nil {
		return fmt.Errorf("txlog: open stream %q: %w", l.stream, err)
	}
	if err := checkSegmentHeader(sr.Header(), name, l.stream, seg.first); err != nil {
		return fmt.Errorf("txlog: open stream %q: %w", l.stream, err)
	}
	var count int64
	for {
		rec, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			torn, terr := isTornTail(err, f, sr.Offset(), size)
			if terr != nil {
				return fmt.Errorf("txlog: open %s: %w", name, terr)
			}
			if !torn {
				return fmt.Errorf("txlog: open stream %q: damage in the last segment: %w", l.stream, err)
			}
			if err := l.cut(f, name, sr.Offset(), size, err); err != nil {
				return err
			}
			break
		}
		count++
		l.lastTime = max(l.lastTime, rec.Time)
	}
	l.fsize = sr.Offset()
	l.frecs = count
	if _, err := f.Seek(l.fsize, io.SeekStart); err != nil {
		return fmt.Errorf("txlog: open %s: %w", name, err)
	}
	// Earlier segments are sealed, hence durable, up to this one's first LSN.
	l.next = seg.first
	if last, ok := sr.Last(); ok {
		l.next = last + 1 // 0, meaning exhausted, after the largest LSN
	}
	l.written.Store(l.next - 1)
	l.durable.Store(l.next - 1)
	return nil
}

// cut truncates the torn tail after off and makes the new size durable.
func (l *Log) cut(f *os.File, name string, off, size int64, reason error) error {
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("txlog: cut torn tail of %s at %d: %w", name, off, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("txlog: cut torn tail of %s at %d: %w", name, off, err)
	}
	l.fsyncs.Add(1)
	l.tail = &TailCut{Segment: name, Offset: off, Bytes: size - off, Reason: reason}
	return nil
}

// TailCut returns the torn tail Open cut off, or nil if the log ended
// cleanly.
func (l *Log) TailCut() *TailCut { return l.tail }

// Stream returns the stream's name.
func (l *Log) Stream() string { return l.stream }

func (l *Log) newBatch() *batch {
	b := &batch{done: make(chan struct{}), buf: l.spare}
	l.spare = nil
	return b
}

// Append appends rec with the next LSN and returns that LSN once the record
// is durable (SyncGroup, SyncEach) or written to the operating system
// (SyncInterval). rec is not modified; the appended copy gets the LSN and,
// if rec.Time is zero, the current time, never earlier than the previous
// record's, so that times along the log do not decrease.
//
// A record that format.AppendRecord refuses is an error and consumes no
// LSN. A failed write or fsync fails this and every later Append with
// ErrFailed. Append has no context: once a record is in a batch its write
// cannot be withdrawn, and returning early would leave its outcome unknown.
func (l *Log) Append(rec *format.Record) (uint64, error) {
	if rec == nil {
		return 0, errors.New("txlog: append nil record")
	}
	b, lsn, _, err := l.enqueue([]*format.Record{rec}, true)
	if err != nil {
		return 0, err
	}
	l.signal()
	<-b.done
	if b.err != nil {
		return 0, b.err
	}
	return lsn, nil
}

// maxQueued bounds the bytes Submit queues ahead of the disk: beyond it,
// Submit waits like Append, so a log slower than its writers holds them
// back instead of growing without bound.
const maxQueued = 8 << 20

// Submit appends recs in order, like Append, and returns the LSN of the
// last without waiting for the write: the committer writes them (and
// fsyncs, under the log's policy) in the background, and Sync waits for
// them. It waits only while more than 8 MiB are queued. A record that
// format.AppendRecord refuses fails the call, and none of recs is
// appended; a failed write surfaces in later calls (ErrFailed).
func (l *Log) Submit(recs []*format.Record) (uint64, error) {
	if len(recs) == 0 {
		return 0, errors.New("txlog: submit no records")
	}
	b, last, queued, err := l.enqueue(recs, false)
	if err != nil {
		return 0, err
	}
	if err := l.submitted(b, queued); err != nil {
		return 0, err
	}
	return last, nil
}

// submitted wakes the committer for b, whose size was queued, and waits
// for b to be written if the queue is over maxQueued.
func (l *Log) submitted(b *batch, queued int) error {
	l.signal()
	if queued > maxQueued {
		<-b.done
		return b.err
	}
	return nil
}

// SubmitTails is Submit for records of type t that the caller encoded up
// to their LSN and time with format.AppendRecordTail: record i is
// tails[ends[i-1]:ends[i]], the first starting at 0. The log frames each
// with the next LSN and the current time, so a writer of many records
// does its encoding outside the lock that hands LSNs out. Tails that
// AppendRecordTail did not produce make records readers refuse.
func (l *Log) SubmitTails(t format.RecordType, tails []byte, ends []int) (uint64, error) {
	if len(ends) == 0 {
		return 0, errors.New("txlog: submit no records")
	}
	now := l.opts.Now().UnixNano()
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	if l.next == 0 || uint64(len(ends))-1 > math.MaxUint64-l.next {
		l.mu.Unlock()
		return 0, fmt.Errorf("txlog: append to stream %q: all 2^64-1 LSNs are used", l.stream)
	}
	b := l.cur
	if len(b.ends) == 0 {
		b.first = l.next
	}
	tm := max(now, l.lastTime)
	start := 0
	for _, end := range ends {
		b.buf = format.AppendFramedRecord(b.buf, t, l.next, tm, tails[start:end])
		b.ends = append(b.ends, len(b.buf))
		l.next++
		start = end
	}
	last, queued := l.next-1, len(b.buf)
	l.lastTime = tm
	b.waited = b.waited || queued > maxQueued
	l.mu.Unlock()
	if err := l.submitted(b, queued); err != nil {
		return 0, err
	}
	return last, nil
}

// enqueue adds recs to the current batch with the next LSNs and returns
// the batch, the LSN of the last record and the batch's size then (read
// under the lock: other appenders grow the batch). Either all of recs are
// added or none.
func (l *Log) enqueue(recs []*format.Record, wait bool) (*batch, uint64, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return nil, 0, 0, err
	}
	b := l.cur
	mark, marks := len(b.buf), len(b.ends)
	next, lastTime := l.next, l.lastTime
	var now int64 // read once per call: a clock read costs more than encoding a record
	for _, rec := range recs {
		if rec == nil {
			b.buf, b.ends = b.buf[:mark], b.ends[:marks]
			return nil, 0, 0, errors.New("txlog: append nil record")
		}
		if next == 0 {
			b.buf, b.ends = b.buf[:mark], b.ends[:marks]
			return nil, 0, 0, fmt.Errorf("txlog: append to stream %q: all 2^64-1 LSNs are used", l.stream)
		}
		r := *rec
		r.LSN = next
		if r.Time == 0 {
			if now == 0 {
				now = l.opts.Now().UnixNano()
			}
			r.Time = max(now, lastTime)
		}
		buf, err := format.AppendRecord(b.buf, &r)
		if err != nil {
			b.buf, b.ends = b.buf[:mark], b.ends[:marks]
			return nil, 0, 0, fmt.Errorf("txlog: append to stream %q: %w", l.stream, err)
		}
		if len(b.ends) == 0 {
			b.first = r.LSN
		}
		b.buf = buf
		b.ends = append(b.ends, len(buf))
		next++
		lastTime = max(lastTime, r.Time)
	}
	l.next, l.lastTime = next, lastTime
	b.waited = b.waited || wait || len(b.buf) > maxQueued
	return b, next - 1, len(b.buf), nil
}

// Sync returns once every record appended before it is durable. Under
// SyncGroup and SyncEach that is already true when Append returns; under
// SyncInterval it forces the fsync that would otherwise wait for the timer,
// for example before a checkpoint barrier is acknowledged.
func (l *Log) Sync() error { return l.flush(false) }

// Seal returns once every record appended before it is durable in a
// sealed segment: it closes the active segment, if it holds records, and
// starts the next. A log whose store is elsewhere (S3) is sealed before
// each checkpoint commits, so that Upload can copy every record the
// checkpoint needs before anyone can see the checkpoint.
func (l *Log) Seal() error { return l.flush(true) }

// flush marks the current batch to be fsynced, and sealed with seal, and
// waits until the committer has done so.
func (l *Log) flush(seal bool) error {
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	b := l.cur
	b.sync = true
	b.seal = b.seal || seal
	l.mu.Unlock()
	l.signal()
	<-b.done
	return b.err
}

func (l *Log) usableLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

func (l *Log) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run is the committer goroutine.
func (l *Log) run() {
	defer close(l.exited)
	var tick <-chan time.Time
	if l.opts.Sync == SyncInterval {
		t := time.NewTicker(l.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	// A batch nobody waits for (Submit's) is given commitDelay to fill
	// before it is written, so that a busy writer's small submissions make
	// few writes and fsyncs.
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	defer delay.Stop()
	delayed := false
	for {
		select {
		case <-l.kick:
			if l.mayWait() {
				if !delayed {
					delay.Reset(commitDelay)
					delayed = true
				}
				continue
			}
			if delayed {
				delay.Stop()
				delayed = false
			}
			l.commit()
		case <-delay.C:
			delayed = false
			l.commit()
		case <-tick:
			l.fmu.Lock()
			err := l.syncLocked()
			l.fmu.Unlock()
			if err != nil {
				l.fail(err)
			}
		case <-l.quit:
			// Close has stopped new appends; write what is queued.
			l.commit()
			return
		}
	}
}

// commitDelay is how long the committer lets a batch that nobody waits
// for fill before it writes it; commitDelayBytes is the size at which it
// stops waiting.
const (
	commitDelay      = 5 * time.Millisecond
	commitDelayBytes = 1 << 20
)

// mayWait reports whether the current batch may wait to fill: nobody
// waits for it and it is small.
func (l *Log) mayWait() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.cur
	return !b.sync && !b.waited && len(b.buf) < commitDelayBytes
}

// commit writes the current batch and releases its waiters.
func (l *Log) commit() {
	l.mu.Lock()
	b := l.cur
	if len(b.ends) == 0 && !b.sync {
		l.mu.Unlock()
		return
	}
	l.cur = l.newBatch()
	l.mu.Unlock()

	err := l.writeBatch(b)
	if err != nil {
		l.fail(err)
	} else if len(b.ends) > 0 {
		l.appends.Add(uint64(len(b.ends)))
		l.batches.Add(1)
	}
	b.err = err
	close(b.done)

	// Keep the buffer for the next batch unless one huge record grew it.
	if cap(b.buf) <= 4<<20 {
		l.mu.Lock()
		l.spare = b.buf[:0]
		l.mu.Unlock()
	}
}

// fail records the first write or fsync failure for Append to report.
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	l.mu.Unlock()
}

func (l *Log) writeBatch(b *batch) error {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	err := l.writeRecords(b)
	if err == nil && (l.opts.Sync == SyncGroup || b.sync) {
		err = l.syncLocked()
	}
	if err == nil && b.seal && l.frecs > 0 {
		err = l.roll(l.written.Load() + 1)
	}
	if err != nil {
		l.broken = fmt.Errorf("%w: stream %q: %w", ErrFailed, l.stream, err)
		return l.broken
	}
	return nil
}

// writeRecords writes b's records, rolling to a new segment before a record
// that would take a non-empty segment past the segment size. Records that go
// to the same segment go in one write, except under SyncEach.
func (l *Log) writeRecords(b *batch) error {
	lsn := b.first
	span, start := 0, 0
	for _, end := range b.ends {
		size := int64(end - start)
		if l.f == nil || (l.frecs > 0 && l.fsize+size > l.opts.SegmentSize) {
			if err := l.put(b.buf[span:start], lsn-1); err != nil {
				return err
			}
			if err := l.roll(lsn); err != nil {
				return err
			}
			span = start
		}
		l.fsize += size
		l.frecs++
		if l.opts.Sync == SyncEach {
			if err := l.put(b.buf[span:end], lsn); err != nil {
				return err
			}
			if err := l.syncLocked(); err != nil {
				return err
			}
			span = end
		}
		start = end
		lsn++
	}
	return l.put(b.buf[span:], lsn-1)
}

// put writes p, whose last record has LSN last, to the active segment.
func (l *Log) put(p []byte, last uint64) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := l.f.Write(p); err != nil {
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	l.unsynced = true
	l.written.Store(last)
	l.nbytes.Add(uint64(len(p)))
	return nil
}

// syncLocked fsyncs the active segment if anything was written since the
// last fsync.
func (l *Log) syncLocked() error {
	if !l.unsynced || l.broken != nil {
		return l.broken
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", l.f.Name(), err)
	}
	l.unsynced = false
	l.fsyncs.Add(1)
	l.durable.Store(l.written.Load())
	return nil
}

// roll seals the active segment (fsync, close) and starts the one whose
// first record has LSN first. A sealed segment is never written again, so
// Upload may copy it and Verify treats any damage in it as real.
func (l *Log) roll(first uint64) error {
	if l.f != nil {
		if err := l.syncLocked(); err != nil {
			return err
		}
		if err := l.f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", l.f.Name(), err)
		}
		l.f = nil
		l.rolls.Add(1)
	}
	f, err := createSegment(l.sdir, l.stream, first, l.opts.Now())
	if err != nil {
		return err
	}
	l.fsyncs.Add(2) // the header and the directory
	l.f = f
	l.fsize = SegmentHeaderSize
	l.frecs = 0
	l.segs = append(l.segs, segFile{first: first, path: f.Name()})
	l.nsegs.Store(int64(len(l.segs)))
	return nil
}

// createSegment writes a new segment's header to a temporary file, fsyncs
// it and links it into place, so that a crash leaves either no segment or
// one with a whole header. Linking fails rather than replace an existing
// segment. The returned file is open for appending records.
func createSegment(sdir, stream string, first uint64, now time.Time) (f *os.File, err error) {
	tmp, err := os.CreateTemp(sdir, tempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	defer func() {
		os.Remove(tmp.Name())
		if err != nil {
			tmp.Close()
		}
	}()
	if err := tmp.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	hdr := AppendSegmentHeader(nil, SegmentHeader{Version: SegmentVersion1, StreamTag: StreamTag(stream), FirstLSN: first, Created: now.UnixNano()})
	if _, err := tmp.Write(hdr); err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("create segment: fsync: %w", err)
	}
	final := filepath.Join(sdir, segmentFile(first))
	if err := os.Link(tmp.Name(), final); err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(sdir); err != nil {
		return nil, fmt.Errorf("create segment %s: %w", final, err)
	}
	// Reopen under the final name so that errors name the segment; the
	// temporary descriptor is closed by the deferred cleanup.
	f, err = os.OpenFile(final, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	tmp.Close()
	return f, nil
}

// Truncate deletes the oldest segments whose records all precede before,
// typically one past the LSN a completed checkpoint covers, and returns
// their object names. The active segment is never deleted, so the log
// always knows its next LSN.
func (l *Log) Truncate(before uint64) ([]string, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	l.fmu.Lock()
	defer l.fmu.Unlock()
	n := 0
	// Segment i's last LSN is segment i+1's first minus one.
	for n+1 < len(l.segs) && l.segs[n+1].first <= before {
		n++
	}
	if n == 0 {
		return nil, nil
	}
	var deleted []string
	var err error
	for _, s := range l.segs[:n] {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("txlog: truncate stream %q: %w", l.stream, rerr)
			break
		}
		deleted = append(deleted, SegmentName(l.stream, s.first))
	}
	l.segs = append([]segFile(nil), l.segs[len(deleted):]...)
	l.nsegs.Store(int64(len(l.segs)))
	if serr := syncDir(l.sdir); err == nil && serr != nil {
		err = fmt.Errorf("txlog: truncate stream %q: %w", l.stream, serr)
	}
	l.fsyncs.Add(1)
	return deleted, err
}

// Segments returns the log's segment files, oldest first (the last is the
// active one), with their sizes and modification times.
func (l *Log) Segments() ([]Segment, error) {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	out := make([]Segment, 0, len(l.segs))
	for _, s := range l.segs {
		fi, err := os.Stat(s.path)
		if err != nil {
			return nil, fmt.Errorf("txlog: stream %q: %w", l.stream, err)
		}
		out = append(out, Segment{Name: SegmentName(l.stream, s.first), Stream: l.stream, FirstLSN: s.first, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// Stats returns the Log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	next := l.next
	l.mu.Unlock()
	return Stats{
		NextLSN:    next,
		WrittenLSN: l.written.Load(),
		DurableLSN: l.durable.Load(),
		Appends:    l.appends.Load(),
		Batches:    l.batches.Load(),
		Fsyncs:     l.fsyncs.Load(),
		Bytes:      l.nbytes.Load(),
		Rolls:      l.rolls.Load(),
		Segments:   int(l.nsegs.Load()),
	}
}

// Close writes and fsyncs every record appended before it, stops the
// committer, closes the active segment and releases the stream's lock.
// Appends that race with Close either complete or fail with ErrClosed.
// Close is idempotent; it reports the failure of the final fsync or close.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.quit)
	<-l.exited

	l.fmu.Lock()
	defer l.fmu.Unlock()
	var err error
	if l.f != nil {
		err = l.syncLocked()
		if cerr := l.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("txlog: close stream %q: %w", l.stream, cerr)
		}
		l.f = nil
	}
	if lerr := l.lock.Close(); err == nil && lerr != nil {
		err = fmt.Errorf("txlog: unlock stream %q: %w", l.stream, lerr)
	}
	return err
}

// syncDir makes the entries changed in dir durable.
var syncDir = fsutil.SyncDir
