// Package fsutil holds the file-system durability helpers that the
// directory store, the transaction log and the file output share.
package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// SyncDir makes the entries created, renamed or removed in dir durable.
// Windows cannot fsync a directory (NTFS journals the change itself), and
// some file systems refuse with EINVAL, meaning there is nothing to flush.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// MkdirAll is os.MkdirAll that makes the new directories durable: it
// fsyncs the parent of every directory it creates, so that after a power
// loss a file made durable inside them is not lost with the directory that
// held it.
func MkdirAll(dir string, perm os.FileMode) error {
	// The directories to create, deepest first.
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	// Parents from the top down: each new entry is durable before the
	// entries below it.
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// syncDir is SyncDir; tests count its calls.
var syncDir = SyncDir
