package main

import (
	"context"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/pipeline/config"
	"github.com/arkstate/arkstate/pkg/store"
)

// storeFlags are the S3 settings every command that opens a store accepts.
// Credentials come from the standard AWS chain (environment, shared files,
// instance roles); the ARKFLOW_STATE_S3_* variables of ArkFlow's state-management document fill what the
// flags leave unset.
type storeFlags struct {
	endpoint  string
	region    string
	pathStyle bool
	noSSL     bool
	remote    string
}

func (f *storeFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.endpoint, "s3-endpoint", "", "S3-compatible endpoint, e.g. http://127.0.0.1:7070 (env ARKFLOW_STATE_S3_ENDPOINT)")
	cmd.Flags().StringVar(&f.region, "s3-region", "", "S3 region (env ARKFLOW_STATE_S3_REGION; default from the AWS configuration)")
	cmd.Flags().BoolVar(&f.pathStyle, "s3-path-style", false, "address buckets as endpoint/bucket (env ARKFLOW_STATE_S3_PATH_STYLE)")
	cmd.Flags().BoolVar(&f.noSSL, "s3-no-ssl", false, "use plain HTTP for an endpoint given without a scheme (env ARKFLOW_STATE_S3_USE_SSL=false)")
	cmd.Flags().StringVar(&f.remote, "remote", "", "open a directory STORE as the local side of a hybrid store over this remote store address (same as hybrid:///abs/dir?remote=ADDRESS)")
}

// address returns the store address the argument and --remote name
// together.
func (f *storeFlags) address(address string) (string, error) {
	if f.remote == "" {
		return address, nil
	}
	local, isDir := restoreLocalTarget(address)
	if scheme, ok := store.AddressScheme(address); !isDir || (ok && scheme != "file") {
		return "", usageErrorf("--remote makes %q the local side of a hybrid store, so it must be a directory, not a %s:// address", address, scheme)
	}
	return store.HybridAddress(local, f.remote)
}

// options builds the store options from the flags, then the
// ARKFLOW_STATE_S3_* variables. The variables are read by the same parser as
// `run`'s (config.ApplyEnv), so a value means the same to both; the
// credential variables are left to `run`, and the CLI takes credentials
// from the AWS chain.
func (f *storeFlags) options(cmd *cobra.Command) (store.OpenOptions, error) {
	var env []string
	for _, kv := range os.Environ() {
		for _, v := range []string{"ARKFLOW_STATE_S3_ENDPOINT=", "ARKFLOW_STATE_S3_REGION=", "ARKFLOW_STATE_S3_PATH_STYLE=", "ARKFLOW_STATE_S3_USE_SSL="} {
			if strings.HasPrefix(kv, v) {
				env = append(env, kv)
			}
		}
	}
	c := &config.Config{State: config.EnhancedStateConfig{S3Config: &config.S3StateBackendConfig{}}}
	if err := config.ApplyEnv(c, env); err != nil {
		return store.OpenOptions{}, &usageError{err}
	}
	conn := c.State.S3Config.S3Connection
	if f.endpoint != "" {
		conn.Endpoint = f.endpoint
	}
	if f.region != "" {
		conn.Region = f.region
	}
	if cmd.Flags().Changed("s3-path-style") {
		conn.PathStyle = f.pathStyle
	}
	if cmd.Flags().Changed("s3-no-ssl") {
		useSSL := !f.noSSL
		conn.UseSSL = &useSSL
	}
	return store.OpenOptions{S3: conn.Options()}, nil
}

// openStore opens the store at address, as the local side of a hybrid
// store when --remote is given.
func (f *storeFlags) openStore(ctx context.Context, cmd *cobra.Command, address string) (store.Store, error) {
	if _, err := f.options(cmd); err != nil {
		return nil, err
	}
	address, err := f.address(address)
	if err != nil {
		return nil, err
	}
	return f.openTarget(ctx, cmd, address)
}

// openTarget opens the store at address as given: --remote names the
// remote of the store a command reads, not of one it writes to.
func (f *storeFlags) openTarget(ctx context.Context, cmd *cobra.Command, address string) (store.Store, error) {
	opts, err := f.options(cmd)
	if err != nil {
		return nil, err
	}
	return checkpoint.Open(ctx, address, opts)
}

// openRepo opens the existing checkpoint store at address. The caller closes
// the returned store.
func (f *storeFlags) openRepo(ctx context.Context, cmd *cobra.Command, address string) (*checkpoint.Repo, error) {
	opts, err := f.options(cmd)
	if err != nil {
		return nil, err
	}
	opts.MustExist = true
	if address, err = f.address(address); err != nil {
		return nil, err
	}
	s, err := checkpoint.Open(ctx, address, opts)
	if err != nil {
		return nil, err
	}
	r, err := checkpoint.OpenRepo(ctx, s)
	if err != nil {
		s.Close()
		return nil, err
	}
	return r, nil
}

// completeRefs completes a command whose first argument is a store and the
// next refs arguments checkpoint references: files for the store, then
// latest and the store's checkpoint ids (read from the store, with the
// command's S3 flags).
func (f *storeFlags) completeRefs(refs int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch {
		case len(args) == 0:
			return nil, cobra.ShellCompDirectiveDefault
		case len(args) > refs:
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		repo, err := f.openRepo(ctx, cmd, args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveError | cobra.ShellCompDirectiveNoFileComp
		}
		defer repo.Store().Close()
		ids, err := repo.IDs(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError | cobra.ShellCompDirectiveNoFileComp
		}
		out := []cobra.Completion{"latest"}
		for _, id := range ids {
			out = append(out, strconv.FormatUint(id, 10))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
