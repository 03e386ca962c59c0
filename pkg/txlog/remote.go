package txlog

import (
	"context"
	"fmt"
	"time"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// LastLSN returns the LSN of the last record of stream in s; ok is false
// when the stream has no segment there. A newest segment without records
// ends one before its first LSN. Only the newest segment is read; a torn
// tail ends it, any other damage is an error. A writer whose local
// directory is new or behind the store starts after it (Options.StartLSN).
func LastLSN(ctx context.Context, s store.Store, stream string) (last uint64, ok bool, err error) {
	segs, _, err := listStream(ctx, s, stream)
	if err != nil || len(segs) == 0 {
		return 0, false, err
	}
	newest := segs[len(segs)-1]
	last = newest.FirstLSN - 1
	err = Replay(ctx, s, stream, newest.FirstLSN, 0, time.Time{}, func(rec *format.Record) error {
		last = rec.LSN
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return last, true, nil
}

// TruncateStore deletes the segments of stream in s whose records all
// precede before (those followed by a segment that starts at or before
// it) and returns their names, oldest first. The newest segment is never
// deleted. It is Log.Truncate for the copy Upload keeps in a store.
func TruncateStore(ctx context.Context, s store.Store, stream string, before uint64) ([]string, error) {
	segs, _, err := listStream(ctx, s, stream)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for i := 0; i+1 < len(segs) && segs[i+1].FirstLSN <= before; i++ {
		if err := s.Delete(ctx, segs[i].Name); err != nil {
			return deleted, fmt.Errorf("txlog: truncate stream %q in %s: %w", stream, s.Location(), err)
		}
		deleted = append(deleted, segs[i].Name)
	}
	return deleted, nil
}
