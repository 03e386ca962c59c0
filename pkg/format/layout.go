package format

import (
	"fmt"
	"strconv"
	"strings"
)

// The store layout: every name a checkpoint store holds is built and parsed
// here (docs/ARCHITECTURE.md draws it).
//
//	ARKSTATE                               the store marker
//	checkpoints/chk-<20 digits>/MANIFEST   a complete checkpoint
//	segments/<2 hex>/<64 hex>.seg          a segment, named by its SHA-256
//	leases/<name>                          a writer lease
const (
	// CheckpointsPrefix holds one directory per checkpoint.
	CheckpointsPrefix = "checkpoints/"
	// SegmentsPrefix holds the segments, fanned out by their hash's first
	// two hex digits.
	SegmentsPrefix = "segments/"
	// LeasesPrefix holds the writer leases.
	LeasesPrefix = "leases/"
	// ManifestName is a checkpoint directory's manifest, written last: its
	// existence is the checkpoint's commit.
	ManifestName  = "MANIFEST"
	segmentSuffix = ".seg"
)

// SegmentPath returns the store-relative path of the segment with the given
// hash: "segments/<first 2 hex>/<hash>.seg". The two-digit fan-out keeps
// directory listings small on local disks. It returns "" when hash is not a
// valid segment hash, so a damaged manifest cannot name a path outside
// segments/.
func SegmentPath(hash string) string {
	if !IsSegmentHash(hash) {
		return ""
	}
	return SegmentsPrefix + hash[:2] + "/" + hash + segmentSuffix
}

// checkpointDirPrefix and checkpointDirDigits define "chk-<20 digits>": 20
// digits hold any uint64, and zero-padding makes lexical order numeric order,
// which is what a store listing returns.
const (
	checkpointDirPrefix = "chk-"
	checkpointDirDigits = 20
)

// CheckpointDir returns the directory name of checkpoint id,
// "chk-<20-digit zero-padded id>".
func CheckpointDir(id uint64) string {
	return fmt.Sprintf("%s%0*d", checkpointDirPrefix, checkpointDirDigits, id)
}

// ManifestPath returns the store-relative path of checkpoint id's manifest:
// "checkpoints/chk-<20-digit zero-padded id>/MANIFEST".
func ManifestPath(id uint64) string {
	return CheckpointsPrefix + CheckpointDir(id) + "/" + ManifestName
}

// ParseCheckpointDir is the inverse of CheckpointDir. It accepts only the
// canonical form (prefix, exactly 20 digits, id > 0), so that every accepted
// name maps back to itself and stray directories are ignored by listings.
func ParseCheckpointDir(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, checkpointDirPrefix)
	if !ok {
		return 0, false
	}
	return ParseFixedDigits(digits, checkpointDirDigits)
}

// ParseFixedDigits parses exactly n decimal digits (no sign, leading zeros
// as padding) as a number greater than 0: the canonical form of ids and
// LSNs in object names, so that every accepted name maps back to itself.
func ParseFixedDigits(digits string, n int) (uint64, bool) {
	if len(digits) != n {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

// CheckpointPrefix returns the prefix of everything in checkpoint id's
// directory, "checkpoints/chk-<20 digits>/".
func CheckpointPrefix(id uint64) string {
	return CheckpointsPrefix + CheckpointDir(id) + "/"
}

// SegmentFanoutPrefix returns the directory that holds the segment of the
// given hash, "segments/<first 2 hex>/": one listing of it finds the
// segment and its neighbours. hash must be a valid segment hash.
func SegmentFanoutPrefix(hash string) string {
	return SegmentsPrefix + hash[:2] + "/"
}

// ParseCheckpointObject splits the name of an object under checkpoints/
// into its checkpoint id and the file name in the checkpoint's directory
// ("MANIFEST" for the manifest). ok is false for anything not in a
// canonical checkpoint directory.
func ParseCheckpointObject(name string) (id uint64, file string, ok bool) {
	rest, found := strings.CutPrefix(name, CheckpointsPrefix)
	if !found {
		return 0, "", false
	}
	dir, file, found := strings.Cut(rest, "/")
	if !found {
		return 0, "", false
	}
	if id, ok = ParseCheckpointDir(dir); !ok {
		return 0, "", false
	}
	return id, file, true
}

// ParseSegmentPath returns the hash of a segment's object name, which must
// be exactly SegmentPath(hash).
func ParseSegmentPath(name string) (string, bool) {
	base := name[strings.LastIndexByte(name, '/')+1:]
	hash, ok := strings.CutSuffix(base, segmentSuffix)
	if !ok || SegmentPath(hash) != name {
		return "", false
	}
	return hash, true
}

// IsLeasePath reports whether name is a writer lease.
func IsLeasePath(name string) bool { return strings.HasPrefix(name, LeasesPrefix) }
