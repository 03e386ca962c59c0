package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "arkstate",
		Short:         "State and checkpoints for stateful stream processing",
		Long:          "arkstate runs stateful pipelines and inspects, verifies, restores and prunes their checkpoints in a local directory or S3.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          usageArgs(cobra.NoArgs),
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	// cobra reports unknown flags and wrong argument counts as plain errors;
	// they are usage errors under the CLI contract.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newVersionCmd(), newRunCmd(), newCheckpointCmd(), newStateCmd(), newTxlogCmd(), newTopCmd())
	return root
}

// usageArgs wraps a cobra positional-argument validator so that its error
// exits with the usage code.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

var errUnknownOutput = errors.New("unknown --output format")
