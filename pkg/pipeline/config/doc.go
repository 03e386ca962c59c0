// Package config owns the configuration of `arkstate run`: the YAML file in
// ArkFlow's shape (a list of streams, each an input, a chain of processors
// and an output) plus the `state` block of ArkFlow's state-management document (EnhancedStateConfig with its
// S3StateBackendConfig and PerformanceConfig), the ARKFLOW_STATE_*
// environment variables that override that block, and the checks that make a
// configuration runnable.
//
// A configuration goes through three steps, each of which reports every
// problem it finds rather than the first:
//
//	cfg, err := config.Load("pipeline.yaml")   // syntax, types, unknown fields, values as written
//	err = config.ApplyEnv(cfg, os.Environ())   // ARKFLOW_STATE_* overrides
//	err = cfg.Validate()                       // everything, including cross-field rules
//
// Load and Parse reject what is wrong in the file on its own. Rules that an
// environment variable can still satisfy (backend s3 needs a bucket, local
// needs a path, thread_num may not exceed key_groups) wait for Validate, so
// a file may leave the bucket to ARKFLOW_STATE_S3_BUCKET.
//
// Errors are an Errors list of *FieldError, each naming the file, line and
// column (or the environment variable) and the field path, e.g.
//
//	pipeline.yaml:7:9: streams[0].pipeline.processors[1]: unknown field "keyy" (known: key)
//
// Relative paths in the file (input, output and state paths) are resolved
// against the directory of the configuration file when it is parsed; paths
// from the environment are left as given, relative to the working directory
// like any command-line argument. docs/CONFIG.md is the user's reference.
package config
