package main

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The AWS credential chain must never reach for an instance metadata
	// service from a test: only loopback traffic is allowed.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}
