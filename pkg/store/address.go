package store

import "strings"

// Address returns an address of s that Open accepts again, and the S3
// endpoint it needs ("" for AWS's own, or for a store that is not on S3).
// Location is for messages and may say more ("s3://bucket/prefix
// (endpoint http://host:9000)"); Address is for machine output, which a
// script feeds back to the next command, with the endpoint in a field of
// its own.
func Address(s Store) (address, endpoint string) {
	if a, ok := s.(interface{ Address() (string, string) }); ok {
		return a.Address()
	}
	return s.Location(), ""
}

// Address implements the interface store.Address looks for.
func (s *S3Store) Address() (address, endpoint string) {
	return "s3://" + s.bucket + strings.TrimSuffix("/"+s.prefix, "/"), s.endpoint
}

// Address implements the interface store.Address looks for.
func (h *HybridStore) Address() (address, endpoint string) {
	remote, endpoint := Address(h.remote)
	local, _ := Address(h.local)
	if dir, ok := strings.CutPrefix(local, "file://"); ok {
		if addr, err := HybridAddress(dir, remote); err == nil {
			return addr, endpoint
		}
	}
	return h.location, endpoint
}
