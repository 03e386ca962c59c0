package store

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// copyExact copies exactly size bytes from r to w and fails if r yields fewer
// or more, so that a short or overlong reader never becomes a stored object.
func copyExact(w io.Writer, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	n, err := io.CopyN(w, r, size)
	if err == io.EOF {
		return fmt.Errorf("reader yielded %d bytes, want %d", n, size)
	}
	if err != nil {
		return err
	}
	return checkDrained(r, size)
}

// checkDrained fails if r has bytes left after size were consumed.
func checkDrained(r io.Reader, size int64) error {
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); err {
	case io.EOF:
		return nil
	case nil:
		return fmt.Errorf("reader yields more than %d bytes", size)
	default:
		return err
	}
}

// ctxReader fails reads once ctx is done, so that copying a large object
// stops promptly on cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// checkCondition rejects a Condition with both fields set.
func checkCondition(cond Condition) error {
	if cond.IfNoneMatch && cond.IfMatch != "" {
		return errors.New("condition sets both IfNoneMatch and IfMatch")
	}
	return nil
}
