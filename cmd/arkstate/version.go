package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the linker: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo reports the version fields, falling back to the module's VCS
// stamp when the binary was built without ldflags (go install, go build).
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"committed_at,omitempty"` // the commit's time (vcs.time or -ldflags main.date)
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func currentBuildInfo() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return buildInfoFrom(bi)
}

// buildInfoFrom fills in from bi (nil: none) what the linker did not set.
func buildInfoFrom(bi *debug.BuildInfo) buildInfo {
	info := buildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if info.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.Commit == "":
				info.Commit = s.Value
			case s.Key == "vcs.time" && info.Date == "":
				// The commit's time: what go install and go build stamp.
				info.Date = s.Value
			}
		}
	}
	return info
}

func newVersionCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := currentBuildInfo()
			return out.render(cmd.OutOrStdout(), info, func(w *tableWriter) {
				w.row("version", info.Version)
				w.row("commit", info.Commit)
				w.row("date", info.Date)
				w.row("go", info.GoVersion)
				w.row("platform", info.Platform)
			})
		},
	}
	out.addFlag(cmd)
	return cmd
}
