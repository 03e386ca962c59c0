package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
)

// The CLI test harness: every in-process run of the command goes through
// cliRun (or cliUnchanged, which also checks that it left a directory as it
// was), and every comparison of files before and after through
// checkpointtest.TreeHashes.

// cliRun runs arkstate with args and stdin as main does.
func cliRun(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	checkJSONOutput(t, args, out.String())
	return out.String(), errb.String(), code
}

// cliUnchanged is cliRun for a command that must leave the files below dir
// as they were: it fails t if the command changed, created or removed one,
// apart from those mayTouch allows (nil allows none, so a read-only command
// may not even create the directory store's lock file).
func cliUnchanged(t testing.TB, dir string, mayTouch func(rel string) bool, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	files := func() map[string]string {
		m := checkpointtest.TreeHashes(t, dir)
		if mayTouch != nil {
			maps.DeleteFunc(m, func(rel, _ string) bool { return mayTouch(rel) })
		}
		return m
	}
	before := files()
	stdout, stderr, code = cliRun(t, "", args...)
	after := files()
	for p, sum := range before {
		if after[p] != sum {
			t.Errorf("%v changed or removed %s in %s", args, p, dir)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%v created %s in %s", args, p, dir)
		}
	}
	return stdout, stderr, code
}

// leaseFiles are the files gc and prune may write in a store they leave
// otherwise unchanged: their hold on it under leases/, and the directory
// store's lock file that conditional writes create.
func leaseFiles(rel string) bool {
	return strings.HasPrefix(rel, "leases/") || rel == ".arkstate-lock"
}

// writePipeline writes yaml as dir/pipeline.yaml and returns its path.
func writePipeline(t testing.TB, dir, yaml string) string {
	t.Helper()
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// referenceCounts runs the word-count pipeline yaml once, uninterrupted, in
// a new directory and returns its committed counts: what a run with faults
// must end with.
func referenceCounts(t *testing.T, yaml string) map[string]uint64 {
	t.Helper()
	ref := t.TempDir()
	writePipeline(t, ref, yaml)
	if (crashRun{t: t, dir: ref}).run("") {
		t.Fatal("the reference run was killed")
	}
	return committed(t, filepath.Join(ref, "out"))
}

// startS3Env starts a real S3 server for the test and returns it, a new
// bucket, and the environment that gives the arkstate binary its
// credentials and keeps it from the machine's AWS configuration.
func startS3Env(t *testing.T) (*s3test.Server, string, []string) {
	t.Helper()
	srv, err := s3test.Start(context.Background())
	if err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv, srv.NewBucket(t), awsEnv(t, srv.AccessKey, srv.SecretKey)
}

// awsEnv is the environment, for a child process, that gives arkstate
// static credentials and keeps it away from the machine's AWS
// configuration and instance metadata.
func awsEnv(t testing.TB, key, secret string) []string {
	dir := t.TempDir()
	return []string{
		"AWS_ACCESS_KEY_ID=" + key,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s3test.Region,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// setAWSEnv sets awsEnv for the CLI run in this process by cliRun, and
// clears the ARKFLOW_STATE_S3_* variables that would change its store
// options.
func setAWSEnv(t *testing.T, key, secret string) {
	t.Helper()
	for _, kv := range awsEnv(t, key, secret) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	for _, v := range []string{"ARKFLOW_STATE_S3_ENDPOINT", "ARKFLOW_STATE_S3_REGION", "ARKFLOW_STATE_S3_PATH_STYLE", "ARKFLOW_STATE_S3_USE_SSL"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
}

// Every -o yaml output quotes its timestamps: a bare one is a datetime to
// YAML 1.1 readers (PyYAML), cut to microseconds, where JSON and CLI.md
// promise a string. Before, checkpoint ls printed them bare.
func TestYAML_TimestampsQuoted(t *testing.T) {
	dir, _ := checkpointtest.StandardDir(t)
	bare := regexp.MustCompile(`(?m):\s+\d{4}-\d{2}-\d{2}T\d`)
	for _, args := range [][]string{
		{"checkpoint", "ls", dir},
		{"checkpoint", "show", dir, "latest"},
		{"checkpoint", "verify", dir, "--all"},
		{"checkpoint", "gc", dir, "--dry-run"},
		{"checkpoint", "diff", dir, "1", "latest"},
	} {
		stdout, stderr, code := cliRun(t, "", append(args, "-o", "yaml")...)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		if m := bare.FindString(stdout); m != "" {
			t.Errorf("%v -o yaml prints a bare timestamp (%q):\n%s", args, m, stdout)
		}
		if (args[1] == "ls" || args[1] == "show") && !strings.Contains(stdout, `"20`) {
			t.Errorf("%v -o yaml prints no quoted timestamp at all:\n%s", args, stdout)
		}
	}
}

// A group command's usage names its subcommands, not flags of its own, and
// a stray argument to it is a usage error.
func TestGroupUsage(t *testing.T) {
	for _, group := range []string{"checkpoint", "state", "txlog"} {
		stdout, _, code := cliRun(t, "", group, "--help")
		if code != exitOK || !strings.Contains(stdout, "arkstate "+group+" [command]") || strings.Contains(stdout, "arkstate "+group+" [flags]") {
			t.Errorf("%s --help (exit %d):\n%s", group, code, stdout)
		}
		if _, stderr, code := cliRun(t, "", group, "nope"); code != exitUsage || !strings.Contains(stderr, `unknown command "nope"`) {
			t.Errorf("%s nope: exit %d, %q; want 2", group, code, stderr)
		}
	}
}

// --output completes to its values in every shell; state dump, which only
// writes JSON lines, says so in its help and completes to json alone.
func TestOutputFlagCompletion(t *testing.T) {
	stdout, _, code := cliRun(t, "", "__complete", "checkpoint", "ls", "dir", "--output", "")
	if code != exitOK || !strings.HasPrefix(stdout, "table\njson\nyaml\n:4\n") {
		t.Fatalf("completion of checkpoint ls --output (exit %d):\n%s", code, stdout)
	}
	stdout, _, _ = cliRun(t, "", "__complete", "state", "dump", "dir", "latest", "--output", "")
	if !strings.HasPrefix(stdout, "json\n:4\n") {
		t.Fatalf("completion of state dump --output:\n%s", stdout)
	}
	help, _, _ := cliRun(t, "", "state", "dump", "--help")
	if !strings.Contains(help, `(default "json")`) {
		t.Fatalf("state dump --help does not say --output defaults to json:\n%s", help)
	}
}

// Tables written to a pipe or a file are plain columns without box
// drawing, and --no-headers leaves out the header line, so a script can
// read them with awk or cut.
func TestTable_Plain(t *testing.T) {
	dir, _ := checkpointtest.StandardDir(t)
	stdout, _, code := cliRun(t, "", "checkpoint", "ls", dir)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || strings.ContainsAny(stdout, "│┌─└") || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("checkpoint ls to a pipe (exit %d):\n%s", code, stdout)
	}
	stdout, _, _ = cliRun(t, "", "checkpoint", "ls", dir, "--no-headers")
	rows := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(rows) != len(lines)-1 || strings.Fields(rows[0])[0] != "1" {
		t.Fatalf("checkpoint ls --no-headers:\n%s", stdout)
	}
}

// Every command's short and long help starts with a capital, as sentences
// do; every command that does something has its usage line, examples and
// an exit-status section in --help. A new command cannot slip in without.
func TestHelp_Capitalised(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, text := range []string{c.Short, c.Long} {
			if r, _ := utf8.DecodeRuneInString(text); text != "" && !unicode.IsUpper(r) && !strings.HasPrefix(text, "arkstate ") { // the name is spelled so
				t.Errorf("%s: help starts in lower case: %.40q", c.CommandPath(), text)
			}
		}
		path := strings.Fields(c.CommandPath())[1:]
		if c.Runnable() && !c.HasAvailableSubCommands() && len(path) > 0 && path[0] != "completion" && path[0] != "help" && path[0] != "version" {
			help, _, _ := cliRun(t, "", append(path, "--help")...)
			if !strings.Contains(help, "Usage:\n  "+c.UseLine()+"\n") || !strings.Contains(help, "\nExamples:\n") || !strings.Contains(help, "\nExit status: ") {
				t.Errorf("%s --help lacks its usage line, examples or exit status:\n%s", c.CommandPath(), help)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}

// A checkpoint argument completes to latest and the store's ids; the store
// argument to files; a third argument to nothing.
func TestRefCompletion(t *testing.T) {
	dir, _ := checkpointtest.StandardDir(t)
	for _, args := range [][]string{{"checkpoint", "show", dir, ""}, {"checkpoint", "diff", dir, "1", ""}, {"state", "dump", dir, ""}, {"checkpoint", "verify", dir, ""}} {
		stdout, _, code := cliUnchanged(t, dir, nil, append([]string{"__complete"}, args...)...)
		if code != exitOK || !strings.HasPrefix(stdout, "latest\n1\n2\n3\n") || !strings.Contains(stdout, ":4\n") {
			t.Errorf("completion of %v (exit %d):\n%s", args, code, stdout)
		}
	}
	if stdout, _, _ := cliRun(t, "", "__complete", "checkpoint", "show", dir, "1", ""); !strings.HasPrefix(stdout, ":4\n") {
		t.Errorf("completion after the last argument:\n%s", stdout)
	}
	if stdout, _, _ := cliRun(t, "", "__complete", "checkpoint", "show", ""); !strings.HasPrefix(stdout, ":0\n") {
		t.Errorf("completion of the store argument: want files (:0)\n%s", stdout)
	}
}
