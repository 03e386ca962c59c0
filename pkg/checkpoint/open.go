package checkpoint

import (
	"context"
	"crypto/sha256"
	"io"
	"path"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// Open opens the store at address (see store.Open) for holding checkpoints:
// a hybrid:// store gets the checkpoint layout's rules (HybridLayout) unless
// opts names others. Every process that opens a checkpoint store, `arkstate
// run` and the CLI's commands alike, opens it here.
func Open(ctx context.Context, address string, opts store.OpenOptions) (store.Store, error) {
	if l := opts.Hybrid.Layout; l.RemoteOnly == nil && l.ScanOrder == nil && l.ContentCheck == nil {
		opts.Hybrid.Layout = HybridLayout()
	}
	return store.Open(ctx, address, opts)
}

// HybridLayout returns the rules a hybrid store needs to hold checkpoints:
// leases live on the remote store only, so that processes on different
// machines contend for them there; the start-up scan copies the store
// marker first and manifests last (create-only, in checkpoint order), so a
// remote manifest never precedes its segments; and a segment is copied only
// if its bytes hash to its name, so a damaged local copy never replaces a
// good remote one.
func HybridLayout() store.HybridLayout {
	return store.HybridLayout{
		RemoteOnly: format.IsLeasePath,
		ScanOrder: func(name string) (int, bool) {
			switch {
			case name == MarkerName:
				return 0, true
			case path.Base(name) == format.ManifestName:
				return 2, true
			default:
				return 1, false
			}
		},
		ContentCheck: func(name string, size int64, r io.Reader) io.Reader {
			hash, ok := format.ParseSegmentPath(name)
			if !ok {
				return nil
			}
			return &hashCheckReader{r: r, h: sha256.New(), size: size, ref: format.SegmentRef{Hash: hash, Size: size}}
		},
	}
}
