package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
