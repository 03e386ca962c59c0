package txlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/arkstate/arkstate/pkg/store"
)

// UploadResult says what Upload did.
type UploadResult struct {
	Uploaded []string // object names copied to the store
	Present  int      // sealed segments the store already held
}

// Upload copies the sealed segments of every stream under dir (a writer's
// root, as given to Open) to store under the same names. A segment is sealed
// once a newer one exists: the writer fsynced and closed it before starting
// the next, and never writes it again. Each stream's newest segment is left
// alone, since it may still grow.
//
// A segment the store already holds with the same size is skipped, so
// Upload can run after every roll or on a timer; one held with another size
// is ErrConflict. Each segment is read and checked (header, records, LSN
// continuity) before it is copied, so damage is reported as a
// *format.CorruptError rather than spread. A segment that Truncate deletes
// meanwhile is skipped.
func Upload(ctx context.Context, dir string, store store.Store) (*UploadResult, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "txlog"))
	if errors.Is(err, fs.ErrNotExist) {
		return &UploadResult{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("txlog: upload: %w", err)
	}
	res := &UploadResult{}
	for _, e := range ents {
		if !e.IsDir() || ValidateStream(e.Name()) != nil {
			continue
		}
		if err := uploadStream(ctx, dir, e.Name(), store, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// UploadStream is Upload for one stream.
func UploadStream(ctx context.Context, dir, stream string, store store.Store) (*UploadResult, error) {
	if err := ValidateStream(stream); err != nil {
		return nil, err
	}
	res := &UploadResult{}
	err := uploadStream(ctx, dir, stream, store, res)
	return res, err
}

func uploadStream(ctx context.Context, dir, stream string, store store.Store, res *UploadResult) error {
	sdir := filepath.Join(dir, "txlog", stream)
	ents, err := os.ReadDir(sdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("txlog: upload stream %q: %w", stream, err)
	}
	var firsts []uint64
	for _, e := range ents {
		if first, ok := parseSegmentFile(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	if len(firsts) < 2 {
		return nil
	}
	present, _, err := listStream(ctx, store, stream)
	if err != nil {
		return fmt.Errorf("txlog: upload: %w", err)
	}
	sizes := make(map[string]int64, len(present))
	for _, s := range present {
		sizes[s.Name] = s.Size
	}
	for _, first := range firsts[:len(firsts)-1] {
		name := SegmentName(stream, first)
		uploaded, err := uploadSegment(ctx, filepath.Join(sdir, segmentFile(first)), name, stream, first, store, sizes)
		if err != nil {
			return err
		}
		if uploaded {
			res.Uploaded = append(res.Uploaded, name)
		} else {
			res.Present++
		}
	}
	return nil
}

// uploadSegment checks one sealed segment file and puts it unless the store
// holds it already. A file that vanished (truncated meanwhile) counts as
// present: there is nothing left to copy.
func uploadSegment(ctx context.Context, path, name, stream string, first uint64, store store.Store, sizes map[string]int64) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("txlog: upload %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("txlog: upload %s: %w", name, err)
	}
	size := fi.Size()
	if have, ok := sizes[name]; ok {
		if have != size {
			return false, fmt.Errorf("%w: %s is %d bytes in %s and %d bytes locally", ErrConflict, name, have, store.Location(), size)
		}
		return false, nil
	}
	if err := checkSealed(io.NewSectionReader(f, 0, size), name, stream, first); err != nil {
		return false, fmt.Errorf("txlog: upload: %w", err)
	}
	if err := store.Put(ctx, name, io.NewSectionReader(f, 0, size), size); err != nil {
		return false, fmt.Errorf("txlog: upload %s: %w", name, err)
	}
	return true, nil
}

// checkSealed reads a whole sealed segment: header, every record, and a
// clean end. A sealed segment has no torn tail, so any failure is damage.
func checkSealed(r io.Reader, name, stream string, first uint64) error {
	sr, err := NewSegmentReader(bufio.NewReaderSize(r, 256<<10), name)
	if err != nil {
		return err
	}
	if err := checkSegmentHeader(sr.Header(), name, stream, first); err != nil {
		return err
	}
	for {
		if _, err := sr.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}
