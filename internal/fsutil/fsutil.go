// Package fsutil holds the file-system durability helpers that the
// directory store, the transaction log and the file output share.
package fsutil

import (
	"errors"
	"os"
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
