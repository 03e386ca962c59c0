package checkpoint

import "github.com/arkstate/arkstate/pkg/store"

// The errors of the Store contract live in pkg/store; these names are the
// same values, so errors.Is sees no difference.
var (
	ErrNotExist           = store.ErrNotExist
	ErrPreconditionFailed = store.ErrPreconditionFailed
	ErrInvalidName        = store.ErrInvalidName
	ErrClosed             = store.ErrClosed
	ErrConfig             = store.ErrConfig
	ErrUnavailable        = store.ErrUnavailable
)

// Error is store.Error.
type Error = store.Error
