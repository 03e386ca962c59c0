package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/pkg/format"
)

// Prepare must not take a part that exists nowhere for a committed one:
// a checkpoint listing it would promise records that are gone.
func TestFileOutput_PrepareMissingPart(t *testing.T) {
	dir := t.TempDir()
	o := &FileOutput{Dir: dir, ExactlyOnce: true}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	txn := func(name string) format.PendingTxn {
		data, _ := json.Marshal(filePart{Pending: pendingDir + "/" + name, Final: name})
		return format.PendingTxn{Output: o.Name(), TxnID: strings.TrimSuffix(name, ".jsonl"), Epoch: 1, Data: data}
	}
	ctx := context.Background()
	// Committed already: the part is in place.
	committed := "part-00000000000000000001-0000.jsonl"
	if err := os.WriteFile(filepath.Join(dir, committed), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := o.Prepare(ctx, []format.PendingTxn{txn(committed)}); err != nil {
		t.Fatalf("Prepare of a committed part: %v", err)
	}
	// Lost: in neither place.
	lost := "part-00000000000000000001-0001.jsonl"
	err := o.Prepare(ctx, []format.PendingTxn{txn(lost)})
	if err == nil || !strings.Contains(err.Error(), "neither the pending nor the committed part exists") || !strings.Contains(err.Error(), strings.TrimSuffix(lost, ".jsonl")) {
		t.Fatalf("Prepare of a lost part = %v; want an error naming it", err)
	}
}

// preparedPart writes one record into a pending part of o for epoch 1 and
// returns the transaction a checkpoint would list.
func preparedPart(t *testing.T, o *FileOutput) []format.PendingTxn {
	t.Helper()
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	sink, err := o.NewSink(0)
	if err != nil {
		t.Fatal(err)
	}
	sink.Begin(1)
	if err := sink.Write(Record{"key": "k", "count": 1}); err != nil {
		t.Fatal(err)
	}
	txns, err := sink.PreCommit(1)
	if err != nil || len(txns) != 1 {
		t.Fatalf("PreCommit = %v, %v", txns, err)
	}
	if err := o.Prepare(context.Background(), txns); err != nil {
		t.Fatal(err)
	}
	return txns
}

// The transactions a checkpoint lists are found again however the output
// directory is spelled: relative or absolute, with "." or "..", and under
// the relative names that manifests recorded before names were absolute.
// Before, a restart whose -c was spelled differently skipped them and then
// deleted every pending part.
func TestFileOutput_NameStable(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	for _, tc := range []struct {
		name     string
		recorded func(txn format.PendingTxn) string
		dir      string
	}{
		{"AbsoluteVsRelative", func(txn format.PendingTxn) string { return txn.Output }, filepath.Join(root, "job", "..", "job", "out")},
		{"OldRelativeName", func(format.PendingTxn) string { return "file:job/out" }, "./job/out/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(root, "job"))
			writer := &FileOutput{Dir: "job/out", ExactlyOnce: true}
			txns := preparedPart(t, writer)
			if want := "file:" + filepath.Join(root, "job", "out"); txns[0].Output != want {
				t.Fatalf("output name %q, want the absolute %q", txns[0].Output, want)
			}
			txns[0].Output = tc.recorded(txns[0])
			restarted := &FileOutput{Dir: tc.dir, ExactlyOnce: true}
			m := &format.Manifest{CheckpointID: 7, Pending: txns}
			if err := checkPendingOwned(restarted, m); err != nil {
				t.Fatal(err)
			}
			if err := restarted.Recover(context.Background(), txns); err != nil {
				t.Fatal(err)
			}
			var p filePart
			if err := json.Unmarshal(txns[0].Data, &p); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(root, "job", "out", p.Final))
			if err != nil || !strings.Contains(string(b), `"key":"k"`) {
				t.Fatalf("the listed part was not committed: %q, %v", b, err)
			}
		})
	}
	t.Run("ErrForeignOutput", func(t *testing.T) {
		txns := preparedPart(t, &FileOutput{Dir: "elsewhere", ExactlyOnce: true})
		m := &format.Manifest{CheckpointID: 7, Pending: txns}
		err := checkPendingOwned(&FileOutput{Dir: "job/out", ExactlyOnce: true}, m)
		if !errors.Is(err, ErrOutputUnreachable) || !strings.Contains(err.Error(), "checkpoint 7") || !strings.Contains(err.Error(), "elsewhere") {
			t.Fatalf("checkPendingOwned = %v; want ErrOutputUnreachable naming the checkpoint and the output", err)
		}
	})
}

// A standby on another machine finds the listed parts nowhere: the error
// says why (they are on the writer's disk) instead of calling them lost.
func TestFileOutput_ErrOtherHost(t *testing.T) {
	o := &FileOutput{Dir: t.TempDir(), ExactlyOnce: true}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(filePart{Pending: pendingDir + "/part-00000000000000000003-0000.jsonl", Final: "part-00000000000000000003-0000.jsonl", Host: "writer-host-1"})
	txns := []format.PendingTxn{{Output: o.Name(), TxnID: "part-00000000000000000003-0000", Epoch: 3, Data: data}}
	err := o.Recover(context.Background(), txns)
	if !errors.Is(err, ErrOutputUnreachable) || !strings.Contains(err.Error(), `"writer-host-1"`) || !strings.Contains(err.Error(), "s3 output") {
		t.Fatalf("Recover = %v; want ErrOutputUnreachable naming the writer's host and the s3 output", err)
	}
}

// A process killed inside Check leaves its probe file in .pending; the next
// Recover removes it with the aborted parts, so a finished job leaves
// nothing pending. Other files there are not the output's and stay.
func TestFileOutput_RecoverRemovesLeftoverProbe(t *testing.T) {
	o := &FileOutput{Dir: t.TempDir(), ExactlyOnce: true}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(o.Dir, pendingDir)
	for _, name := range []string{probePrefix + "1234", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(pending, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Recover(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(pending)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if !slices.Equal(left, []string{"notes.txt"}) {
		t.Fatalf(".pending holds %v after Recover; want only notes.txt", left)
	}
}

// CheckWritable finds an output that cannot be made without making
// anything: a path through a file is refused, a new path under a writable
// directory accepted, and neither leaves a trace.
func TestFileOutput_CheckWritable(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&FileOutput{Dir: filepath.Join(file, "out")}).CheckWritable(); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("output under a file: %v; want an error saying it is not a directory", err)
	}
	if err := (&FileOutput{Dir: filepath.Join(root, "a", "b", "out")}).CheckWritable(); err != nil {
		t.Fatalf("new output under a writable directory: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("CheckWritable wrote: %v", entries)
	}
}
