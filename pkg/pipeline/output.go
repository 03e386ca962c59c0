package pipeline

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/arkstate/arkstate/internal/crashpoint"
	"github.com/arkstate/arkstate/internal/fsutil"
	"github.com/arkstate/arkstate/pkg/format"
	"golang.org/x/sys/unix"
)

// Output is where a pipeline's results go. Each subtask of the last stage
// writes through its own Sink; the Output commits what the sinks
// pre-committed once the checkpoint that covers them is complete.
type Output interface {
	// Name identifies the output in checkpoint manifests.
	Name() string
	// NewSink returns subtask's writer.
	NewSink(subtask int) (Sink, error)
	// Commit makes pre-committed transactions visible. It is idempotent:
	// committing a transaction twice is harmless.
	Commit(ctx context.Context, txns []format.PendingTxn) error
	// Recover runs before processing resumes from a checkpoint: it commits
	// the transactions the checkpoint lists as pre-committed and aborts
	// every other pending one.
	Recover(ctx context.Context, commit []format.PendingTxn) error
}

// Preparer is an Output whose pre-committed transactions need work before
// the checkpoint listing them may be written — typically making them
// durable. The coordinator calls Prepare off the processing path.
type Preparer interface {
	Prepare(ctx context.Context, txns []format.PendingTxn) error
}

// Sink writes one subtask's records. Records written after Begin(epoch)
// belong to that epoch; PreCommit makes them durable but not yet visible.
type Sink interface {
	Begin(epoch uint64)
	Write(rec Record) error
	// PreCommit returns the transactions holding the epoch's records, to be
	// committed when the checkpoint of that epoch completes. An output
	// without transactions (at-least-once) returns none.
	PreCommit(epoch uint64) ([]format.PendingTxn, error)
	Close() error
}

// FileOutput writes JSON lines into part files in Dir. With ExactlyOnce each
// epoch's records of each subtask go to Dir/.pending/part-<epoch>-<subtask>-<writer>.jsonl,
// made durable at the barrier and renamed into Dir when the checkpoint
// completes; readers of Dir see only committed parts. Without it parts are
// renamed at the barrier: a crash may then repeat records.
type FileOutput struct {
	Dir         string
	ExactlyOnce bool

	identOnce sync.Once
	id        fileIdent
}

const pendingDir = ".pending"

// Name implements Output: "file:" and the directory's absolute, cleaned
// path, so that the name a checkpoint records does not depend on how the
// configuration's path was spelled or which directory the run started in.
func (o *FileOutput) Name() string { return "file:" + o.ident().absDir }

// ident works out, once, what names this output and its parts: the
// directory's absolute path (filepath.Abs asks for the working directory
// each time), a random writer id, and the host.
func (o *FileOutput) ident() *fileIdent {
	o.identOnce.Do(func() {
		id := &o.id
		var err error
		if id.absDir, err = filepath.Abs(o.Dir); err != nil {
			id.absDir = filepath.Clean(o.Dir)
		}
		b := make([]byte, 4)
		_, _ = rand.Read(b) // never fails
		id.writer = hex.EncodeToString(b)
		id.host, _ = os.Hostname()
	})
	return &o.id
}

// fileIdent is what FileOutput.ident works out.
type fileIdent struct {
	absDir string
	// writer is the random part of this process's part names. It keeps
	// two processes that believe they write the same epoch (a frozen
	// writer that thaws after a standby took over) from truncating each
	// other's pending parts.
	writer string
	host   string
}

// OwnsOutput reports whether name, an output name from a manifest, is this
// output's. Manifests written before names were absolute hold the
// directory as configured, relative to that run's working directory; it is
// read relative to this run's, the only guess there is.
func (o *FileOutput) OwnsOutput(name string) bool {
	dir, ok := strings.CutPrefix(name, "file:")
	if !ok {
		return false
	}
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return false
		}
		dir = abs
	}
	return filepath.Clean(dir) == o.ident().absDir
}

// CheckWritable makes sure the output directory can be created and
// written, without writing anything: the nearest existing directory on its
// path must be a directory this process may write. A run checks every
// output, store and input this way before it writes anything, so that a
// configuration error leaves no trace.
func (o *FileOutput) CheckWritable() error {
	dir := filepath.Clean(o.Dir)
	for {
		fi, err := os.Stat(dir)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("output %s: %s is not a directory", o.Dir, dir)
		case err == nil:
			if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("output %s is not writable: %s: %w", o.Dir, dir, err)
			}
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("output %s: %w", o.Dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("output %s: no part of the path exists", o.Dir)
		}
		dir = parent
	}
}

// Check creates the directories and makes sure they can be written, so a
// misconfigured output fails before anything runs.
func (o *FileOutput) Check() error {
	if err := fsutil.MkdirAll(filepath.Join(o.Dir, pendingDir), 0o755); err != nil {
		return fmt.Errorf("output %s: %w", o.Dir, err)
	}
	f, err := os.CreateTemp(filepath.Join(o.Dir, pendingDir), probePrefix+"*")
	if err != nil {
		return fmt.Errorf("output %s is not writable: %w", o.Dir, err)
	}
	f.Close()
	// Another process's Recover may have taken the probe for a leftover.
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("output %s: %w", o.Dir, err)
	}
	return nil
}

// probePrefix starts the names of Check's probe files. A process killed
// between creating and removing one leaves it behind; Recover removes it.
const probePrefix = "probe-"

// filePart is the Data of a file output transaction.
type filePart struct {
	Pending string `json:"pending"` // relative to Dir
	Final   string `json:"final"`
	// Host wrote the part. File output is local to one machine: a part
	// missing on another host is explained by this, not lost there.
	Host string `json:"host,omitempty"`
}

// missingPart is the error for a listed part that exists in neither place.
func (o *FileOutput) missingPart(t format.PendingTxn, p filePart) error {
	if host := o.ident().host; p.Host != "" && p.Host != host {
		return fmt.Errorf("output %s: transaction %s was written on host %q and this is %q: file output is local to one machine, so a standby on another machine cannot commit it; use the s3 output (or a shared directory) for a job that moves between machines: %w",
			o.Dir, t.TxnID, p.Host, host, ErrOutputUnreachable)
	}
	return fmt.Errorf("output %s: transaction %s: neither the pending nor the committed part exists", o.Dir, t.TxnID)
}

// ErrOutputUnreachable means a checkpoint lists output transactions this
// process cannot reach: written on another machine, or by an output this
// configuration does not have. Recovery stops rather than abort them.
var ErrOutputUnreachable = errors.New("the checkpoint's pending output cannot be reached from here")

// NewSink implements Output.
func (o *FileOutput) NewSink(subtask int) (Sink, error) {
	return &fileSink{o: o, subtask: subtask}, nil
}

type fileSink struct {
	o       *FileOutput
	subtask int
	epoch   uint64
	f       *os.File
	w       *bufio.Writer
	name    string
	buf     []byte
}

func (s *fileSink) Begin(epoch uint64) { s.epoch = epoch }

func (s *fileSink) Write(rec Record) error {
	if s.f == nil {
		s.name = fmt.Sprintf("part-%020d-%04d-%s.jsonl", s.epoch, s.subtask, s.o.ident().writer)
		f, err := os.OpenFile(filepath.Join(s.o.Dir, pendingDir, s.name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("output %s: %w", s.o.Dir, err)
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	b, err := appendRecord(s.buf[:0], rec)
	if err != nil {
		return fmt.Errorf("output %s: %w", s.o.Dir, err)
	}
	s.buf = append(b, '\n')
	_, err = s.w.Write(s.buf)
	return err
}

func (s *fileSink) PreCommit(epoch uint64) ([]format.PendingTxn, error) {
	if s.f == nil {
		return nil, nil
	}
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f, s.w = nil, nil
	if err != nil {
		return nil, fmt.Errorf("output %s: pre-commit epoch %d: %w", s.o.Dir, epoch, err)
	}
	data, _ := json.Marshal(filePart{Pending: filepath.ToSlash(filepath.Join(pendingDir, s.name)), Final: s.name, Host: s.o.ident().host})
	txn := format.PendingTxn{Output: s.o.Name(), TxnID: strings.TrimSuffix(s.name, ".jsonl"), Epoch: epoch, Data: data}
	if !s.o.ExactlyOnce {
		txns := []format.PendingTxn{txn}
		if err := s.o.Prepare(context.Background(), txns); err != nil {
			return nil, err
		}
		return nil, s.o.Commit(context.Background(), txns)
	}
	return []format.PendingTxn{txn}, nil
}

// Prepare implements Preparer: it makes the pending parts durable. It runs
// on the coordinator before the checkpoint that lists them is written, so
// the fsyncs do not stall processing at the barrier.
func (o *FileOutput) Prepare(_ context.Context, txns []format.PendingTxn) error {
	synced := false
	for _, t := range txns {
		if !o.OwnsOutput(t.Output) {
			continue
		}
		var p filePart
		if err := json.Unmarshal(t.Data, &p); err != nil || !validPartName(p.Final) {
			return fmt.Errorf("output %s: transaction %s has malformed data %s", o.Dir, t.TxnID, t.Data)
		}
		f, err := os.Open(filepath.Join(o.Dir, filepath.FromSlash(p.Pending)))
		if errors.Is(err, os.ErrNotExist) {
			// Committed already by a commit that failed part of the way,
			// or lost: listing a part that exists nowhere would promise
			// records that are gone.
			if _, serr := os.Stat(filepath.Join(o.Dir, p.Final)); serr == nil {
				continue
			}
			return o.missingPart(t, p)
		}
		if err != nil {
			return fmt.Errorf("output %s: prepare %s: %w", o.Dir, t.TxnID, err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("output %s: prepare %s: %w", o.Dir, t.TxnID, err)
		}
		synced = true
	}
	if !synced {
		return nil
	}
	return syncDir(filepath.Join(o.Dir, pendingDir))
}

func (s *fileSink) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Commit implements Output: it renames each pending part into place. A part
// already renamed is done; one missing in both places is an error, because
// its records would be lost.
func (o *FileOutput) Commit(_ context.Context, txns []format.PendingTxn) error {
	for _, t := range txns {
		if !o.OwnsOutput(t.Output) {
			continue
		}
		var p filePart
		if err := json.Unmarshal(t.Data, &p); err != nil || !validPartName(p.Final) || p.Pending != pendingDir+"/"+p.Final {
			return fmt.Errorf("output %s: transaction %s has malformed data %s", o.Dir, t.TxnID, t.Data)
		}
		final := filepath.Join(o.Dir, p.Final)
		err := os.Rename(filepath.Join(o.Dir, filepath.FromSlash(p.Pending)), final)
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(final); serr == nil {
				continue
			}
			return o.missingPart(t, p)
		}
		if err != nil {
			return fmt.Errorf("output %s: commit %s: %w", o.Dir, t.TxnID, err)
		}
		crashpoint.Hit(crashpoint.BetweenCommits)
	}
	return syncDir(o.Dir)
}

func validPartName(name string) bool {
	return strings.HasPrefix(name, "part-") && strings.HasSuffix(name, ".jsonl") && !strings.ContainsAny(name, `/\`) && !strings.Contains(name, "..")
}

// Recover implements Output.
func (o *FileOutput) Recover(ctx context.Context, commit []format.PendingTxn) error {
	if err := o.Commit(ctx, commit); err != nil {
		return err
	}
	crashpoint.Hit(crashpoint.RecoverAfterCommit)
	dir := filepath.Join(o.Dir, pendingDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("output %s: %w", o.Dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), probePrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("output %s: remove leftover %s: %w", o.Dir, e.Name(), err)
			}
			continue
		}
		if !validPartName(e.Name()) {
			continue
		}
		// Everything still pending belongs to an epoch the checkpoint does
		// not cover: its records will be produced again.
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("output %s: abort %s: %w", o.Dir, e.Name(), err)
		}
	}
	return syncDir(dir)
}

// syncDir makes the entries changed in dir durable.
func syncDir(dir string) error {
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WriterOutput writes JSON lines to an io.Writer (standard output) as they
// come: at-least-once, since a restarted pipeline writes again what came
// after its last checkpoint.
type WriterOutput struct {
	W  io.Writer
	mu sync.Mutex
}

// Name implements Output.
func (o *WriterOutput) Name() string { return "stdout" }

// NewSink implements Output.
func (o *WriterOutput) NewSink(int) (Sink, error) { return writerSink{o}, nil }

// Commit implements Output; there is nothing to commit.
func (o *WriterOutput) Commit(context.Context, []format.PendingTxn) error { return nil }

// Recover implements Output; there is nothing to recover.
func (o *WriterOutput) Recover(context.Context, []format.PendingTxn) error { return nil }

type writerSink struct{ o *WriterOutput }

func (s writerSink) Begin(uint64) {}

func (s writerSink) Write(rec Record) error {
	b, err := appendRecord(nil, rec)
	if err != nil {
		return err
	}
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	_, err = s.o.W.Write(append(b, '\n'))
	return err
}

func (s writerSink) PreCommit(uint64) ([]format.PendingTxn, error) { return nil, nil }

func (s writerSink) Close() error { return nil }
