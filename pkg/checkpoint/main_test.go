package checkpoint_test

import (
	"testing"

	"github.com/arkstate/arkstate/internal/s3test"
)

// s3Server is started by the first test that needs it and stopped by TestMain.
var s3Server s3test.Shared

// TestMain stops the shared S3 server before checking for leaked
// goroutines.
func TestMain(m *testing.M) { s3Server.Main(m) }
