package format

import (
	"testing"

	"go.uber.org/goleak"
)

// The segment writer compresses blocks on goroutines of its own; every test
// must leave none behind, whether Close succeeded or failed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
