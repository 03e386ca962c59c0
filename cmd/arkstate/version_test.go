package main

import (
	"runtime/debug"
	"testing"
)

// A binary built by go install or go build, without ldflags, reports the
// commit and its time from the VCS stamp; before, its date was empty.
func TestBuildInfoFrom_VCS(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "f165e9eebfc2253105cf78f9027418bc2f2350bc"},
		{Key: "vcs.time", Value: "2026-12-07T19:14:38Z"},
	}}
	info := buildInfoFrom(bi)
	if info.Commit != "f165e9eebfc2253105cf78f9027418bc2f2350bc" || info.Date != "2026-12-07T19:14:38Z" || info.Version != version {
		t.Fatalf("build info %+v", info)
	}
}
