package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// newCheckpointCmd groups the commands that inspect and manage checkpoints.
func newCheckpointCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "List, show, diff, verify, restore, prune and garbage-collect checkpoints",
		Long: `Checkpoint commands work on a store address: a directory path, file:///path,
or s3://bucket/prefix (with --s3-endpoint and --s3-path-style for S3-compatible
servers; credentials from the standard AWS chain).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		// Subcommands, one file each (checkpoint_<name>.go):
		newCheckpointLsCmd(),
		newCheckpointShowCmd(),
		newCheckpointVerifyCmd(),
		newCheckpointDiffCmd(),
		newCheckpointRestoreCmd(),
		newCheckpointPruneCmd(),
		newCheckpointGCCmd(),
	)
	groupUsage(cmd)
	return cmd
}

// groupUsage makes the usage of a command that only groups others read
// "arkstate GROUP [command]": it runs (to refuse stray arguments with exit
// 2, which cobra does not check for a group that does not run), but
// "arkstate GROUP [flags]" would suggest it does something by itself. The
// subcommands inherit the template, so it keeps their usage line.
func groupUsage(cmd *cobra.Command) {
	cmd.SetUsageTemplate(strings.Replace(cmd.UsageTemplate(), "Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
}
