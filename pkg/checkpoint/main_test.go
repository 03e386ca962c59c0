package checkpoint_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/arkstate/arkstate/internal/s3test"
	"go.uber.org/goleak"
)

// s3Server is started by the first test that needs it and stopped by TestMain.
var s3Server s3test.Shared

// TestMain stops the shared S3 server before checking for leaked goroutines,
// so that the goroutine waiting for the server process is not counted.
func TestMain(m *testing.M) {
	// The SDK's default credential chain must never reach for an instance
	// metadata service from a test: only loopback traffic is allowed.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	if err := s3Server.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop S3 server: %v\n", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
