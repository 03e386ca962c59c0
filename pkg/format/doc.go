// Package format owns arkstate's bytes: segment files (sorted, zstd-compressed,
// checksummed blocks of state entries), checkpoint manifests (versioned,
// self-checksummed JSON) and transaction-log records (length-prefixed,
// CRC32C-protected, typed).
//
// Every decoder here reads untrusted input: lengths are bounded before they are
// allocated, and damage is reported as a *CorruptError naming the file, the
// offset and the record or block, never as a panic or wrong data.
// The byte layouts are specified in docs/FORMAT.md.
package format
