package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/txlog"
)

// txlogBase is the time of the fixture's first record; record LSN n is
// written n-1 seconds later.
var txlogBase = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// txlogFixtureRecord returns the fixture's record number i (from 0): an
// epoch of every type, with text and binary bytes.
func txlogFixtureRecord(i int) *format.Record {
	epoch := uint64(i/8 + 1)
	switch i % 8 {
	case 0:
		return &format.Record{Type: format.RecordEpochBegin, Epoch: epoch}
	case 1:
		return &format.Record{Type: format.RecordMutation, Epoch: epoch, Operator: "count", State: "n", KeyGroup: 0,
			Key: []byte(fmt.Sprintf("word-%d", i)), Value: []byte("héllo"), ExpiresAt: txlogBase.Add(time.Hour).UnixNano()}
	case 2:
		return &format.Record{Type: format.RecordMutation, Epoch: epoch, Operator: "count", State: "n", KeyGroup: 9,
			Key: []byte{0xff, 0x00, byte(i)}, Value: []byte{0, 0, 0, 1}}
	case 3:
		return &format.Record{Type: format.RecordMutation, Epoch: epoch, Operator: "count", State: "n", KeyGroup: 3,
			Key: []byte("gone"), Delete: true}
	case 4:
		return &format.Record{Type: format.RecordPosition, Epoch: epoch, Source: "stdin", Position: []byte(fmt.Sprintf(`{"line":%d}`, i))}
	case 5:
		return &format.Record{Type: format.RecordTxnPrepare, Epoch: epoch, Output: "file", TxnID: fmt.Sprint("t", epoch), Data: []byte(`{"pending":"out/pending"}`)}
	case 6:
		return &format.Record{Type: format.RecordTxnCommit, Epoch: epoch, Output: "file", TxnID: fmt.Sprint("t", epoch)}
	default:
		return &format.Record{Type: format.RecordEpochEnd, Epoch: epoch, Checkpoint: epoch}
	}
}

// txlogFixture writes n fixture records to stream "main" (512-byte
// segments, so several) and returns the store directory and the segment files.
func txlogFixture(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	i := 0
	l, err := txlog.Open(dir, "main", txlog.Options{SegmentSize: 512, Now: func() time.Time { return txlogBase.Add(time.Duration(i) * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	for ; i < n; i++ {
		if _, err := l.Append(txlogFixtureRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "txlog", "main", "*.log"))
	if len(segs) < n/15 {
		t.Fatalf("fixture has %d segments for %d records", len(segs), n)
	}
	return dir, segs
}

func txlogFlip(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x20
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTxlogLsCmd(t *testing.T) {
	dir, segs := txlogFixture(t, 60)
	t.Run("OK", func(t *testing.T) {
		stdout, stderr, code := cliUnchanged(t, dir, nil, "txlog", "ls", dir, "-o", "json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var v txlogLsView
		if err := json.Unmarshal([]byte(stdout), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Streams) != 1 || v.Streams[0].Stream != "main" || v.Streams[0].Records != 60 ||
			v.Streams[0].FirstLSN != 1 || v.Streams[0].LastLSN != 60 || len(v.Streams[0].Segments) != len(segs) {
			t.Fatalf("ls: %s", stdout)
		}
		next := uint64(1)
		for _, s := range v.Streams[0].Segments {
			if s.FirstLSN != next || s.Status != "ok" || s.Size == 0 || s.Records != int64(s.LastLSN-s.FirstLSN+1) ||
				s.FirstTime != txlogBase.Add(time.Duration(s.FirstLSN-1)*time.Second).Format(time.RFC3339Nano) {
				t.Fatalf("segment %+v", s)
			}
			next = s.LastLSN + 1
		}
	})
	t.Run("OKTable", func(t *testing.T) {
		stdout, _, code := cliUnchanged(t, dir, nil, "txlog", "ls", dir)
		if code != exitOK || !strings.Contains(stdout, "00000000000000000001.log") || !strings.Contains(stdout, "FIRST LSN") ||
			!strings.Contains(stdout, "2025-03-14T15:09:26Z") {
			t.Fatalf("exit %d, table:\n%s", code, stdout)
		}
	})
	t.Run("OKYAML", func(t *testing.T) {
		stdout, _, code := cliUnchanged(t, dir, nil, "txlog", "ls", dir, "--stream", "main", "-o", "yaml")
		var v txlogLsView
		if code != exitOK || yaml.Unmarshal([]byte(stdout), &v) != nil || len(v.Streams) != 1 || v.Streams[0].Records != 60 {
			t.Fatalf("exit %d, yaml:\n%s", code, stdout)
		}
	})
	t.Run("OKEmptyStore", func(t *testing.T) {
		empty := t.TempDir()
		stdout, _, code := cliUnchanged(t, empty, nil, "txlog", "ls", empty, "-o", "json")
		if code != exitOK || !strings.Contains(stdout, `"streams": []`) {
			t.Fatalf("exit %d: %s", code, stdout)
		}
	})
	t.Run("ErrStreamNotFound", func(t *testing.T) {
		_, stderr, code := cliUnchanged(t, dir, nil, "txlog", "ls", dir, "--stream", "nope")
		if code != exitUsage || !strings.Contains(stderr, "stream not found") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		for _, args := range [][]string{
			{"txlog", "ls"},
			{"txlog", "ls", dir, "extra"},
			{"txlog", "ls", dir, "--bogus"},
			{"txlog", "ls", dir, "-o", "xml"},
			{"txlog", "ls", dir, "--stream", "a/b"},
		} {
			if _, stderr, code := cliUnchanged(t, dir, nil, args...); code != exitUsage {
				t.Errorf("%v: exit %d, want 2: %s", args, code, stderr)
			}
		}
	})
}

func TestTxlogVerifyCmd(t *testing.T) {
	verify := func(t *testing.T, dir string, args ...string) (txlogVerifyView, string, int) {
		t.Helper()
		stdout, stderr, code := cliUnchanged(t, dir, nil, append([]string{"txlog", "verify", dir, "-o", "json"}, args...)...)
		var v txlogVerifyView
		if code == exitOK || code == exitFindings {
			if err := json.Unmarshal([]byte(stdout), &v); err != nil {
				t.Fatalf("exit %d, output %q: %v", code, stdout, err)
			}
		}
		return v, stderr, code
	}
	t.Run("OK", func(t *testing.T) {
		dir, segs := txlogFixture(t, 60)
		v, stderr, code := verify(t, dir)
		if code != exitOK || !v.OK || len(v.Streams) != 1 || v.Streams[0].Records != 60 || v.Streams[0].Segments != len(segs) ||
			len(v.Streams[0].Problems) != 0 {
			t.Fatalf("exit %d, %+v, %s", code, v, stderr)
		}
	})
	t.Run("OKTornTail", func(t *testing.T) {
		dir, segs := txlogFixture(t, 60)
		last := segs[len(segs)-1]
		fi, _ := os.Stat(last)
		os.Truncate(last, fi.Size()-2)
		v, _, code := verify(t, dir)
		p := v.Streams[0].Problems
		if code != exitOK || !v.OK || len(p) != 1 || p[0].Kind != "torn-tail" || p[0].File != "txlog/main/"+filepath.Base(last) {
			t.Fatalf("exit %d, %+v", code, v)
		}
		stdout, _, _ := cliUnchanged(t, dir, nil, "txlog", "verify", dir)
		if !strings.Contains(stdout, "ok (notices)") || !strings.Contains(stdout, "torn-tail: txlog/main/") {
			t.Fatalf("table:\n%s", stdout)
		}
	})
	t.Run("ErrDamage", func(t *testing.T) {
		dir, segs := txlogFixture(t, 60)
		txlogFlip(t, segs[1], 70)
		v, stderr, code := verify(t, dir)
		p := v.Streams[0].Problems
		if code != exitFindings || v.OK || !v.Streams[0].Damaged || len(p) != 1 || p[0].Kind != "damage" ||
			p[0].File != "txlog/main/"+filepath.Base(segs[1]) || p[0].Offset == nil || *p[0].Offset < txlog.SegmentHeaderSize || *p[0].Offset > 70 ||
			!strings.Contains(p[0].What, "checksum") || p[0].Advice == "" {
			t.Fatalf("exit %d, %+v", code, v)
		}
		if stderr != "" {
			t.Fatalf("findings wrote to stderr: %q", stderr)
		}
		stdout, _, code := cliUnchanged(t, dir, nil, "txlog", "verify", dir)
		if code != exitFindings || !strings.Contains(stdout, "DAMAGED") || !strings.Contains(stdout, "advice: ") {
			t.Fatalf("exit %d, table:\n%s", code, stdout)
		}
	})
	t.Run("ErrGap", func(t *testing.T) {
		dir, segs := txlogFixture(t, 60)
		os.Remove(segs[2])
		v, _, code := verify(t, dir, "--stream", "main")
		p := v.Streams[0].Problems
		if code != exitFindings || len(p) != 1 || !strings.Contains(p[0].What, "LSN gap") || p[0].Offset != nil {
			t.Fatalf("exit %d, %+v", code, v)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		empty := t.TempDir()
		if _, stderr, code := cliUnchanged(t, empty, nil, "txlog", "verify", empty); code != exitUsage || !strings.Contains(stderr, "no transaction log") {
			t.Fatalf("verify of a store without a log: exit %d, %s", code, stderr)
		}
		dir, _ := txlogFixture(t, 10)
		if _, _, code := cliUnchanged(t, dir, nil, "txlog", "verify", dir, "--stream", "other"); code != exitUsage {
			t.Fatalf("verify of a missing stream: exit %d", code)
		}
	})
}

func TestTxlogReplayCmd(t *testing.T) {
	dir, _ := txlogFixture(t, 60)
	replay := func(t *testing.T, dir string, args ...string) ([]map[string]any, string, int) {
		t.Helper()
		stdout, stderr, code := cliUnchanged(t, dir, nil, append([]string{"txlog", "replay", dir, "--stream", "main", "-o", "json"}, args...)...)
		var recs []map[string]any
		dec := json.NewDecoder(strings.NewReader(stdout))
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("output %q: %v", stdout, err)
			}
			recs = append(recs, m)
		}
		if n := strings.Count(stdout, "\n"); n != len(recs) {
			t.Fatalf("%d lines for %d records: not JSON lines", n, len(recs))
		}
		return recs, stderr, code
	}
	t.Run("OK", func(t *testing.T) {
		recs, stderr, code := replay(t, dir)
		if code != exitOK || len(recs) != 60 {
			t.Fatalf("exit %d, %d records: %s", code, len(recs), stderr)
		}
		for i, r := range recs {
			if r["lsn"] != float64(i+1) || r["type"] != txlogFixtureRecord(i).Type.String() ||
				r["time"] != txlogBase.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano) {
				t.Fatalf("record %d: %v", i, r)
			}
		}
		want := []map[string]any{
			{"lsn": 1.0, "type": "epoch-begin", "time": "2025-03-14T15:09:26Z", "epoch": 1.0},
			{"lsn": 2.0, "type": "mutation", "time": "2025-03-14T15:09:27Z", "epoch": 1.0, "operator": "count", "state": "n",
				"key_group": 0.0, "key": "word-1", "value": "héllo", "expires_at": "2025-03-14T16:09:26Z"},
			{"lsn": 3.0, "type": "mutation", "time": "2025-03-14T15:09:28Z", "epoch": 1.0, "operator": "count", "state": "n",
				"key_group": 9.0, "key_b64": "/wAC", "value": "\x00\x00\x00\x01"},
			{"lsn": 4.0, "type": "mutation", "time": "2025-03-14T15:09:29Z", "epoch": 1.0, "operator": "count", "state": "n",
				"key_group": 3.0, "key": "gone", "deleted": true},
			{"lsn": 5.0, "type": "position", "time": "2025-03-14T15:09:30Z", "epoch": 1.0, "source": "stdin", "position": map[string]any{"line": 4.0}},
			{"lsn": 6.0, "type": "txn-prepare", "time": "2025-03-14T15:09:31Z", "epoch": 1.0, "output": "file", "txn_id": "t1", "data": map[string]any{"pending": "out/pending"}},
			{"lsn": 7.0, "type": "txn-commit", "time": "2025-03-14T15:09:32Z", "epoch": 1.0, "output": "file", "txn_id": "t1"},
			{"lsn": 8.0, "type": "epoch-end", "time": "2025-03-14T15:09:33Z", "epoch": 1.0, "checkpoint_id": 1.0},
		}
		for i, w := range want {
			got, _ := json.Marshal(recs[i])
			exp, _ := json.Marshal(w)
			if !bytes.Equal(got, exp) {
				t.Errorf("record %d:\n got %s\nwant %s", i, got, exp)
			}
		}
	})
	t.Run("OKRange", func(t *testing.T) {
		recs, _, code := replay(t, dir, "--from-lsn", "10", "--to", "12")
		if code != exitOK || len(recs) != 3 || recs[0]["lsn"] != 10.0 || recs[2]["lsn"] != 12.0 {
			t.Fatalf("exit %d, %v", code, recs)
		}
		// Record LSN 21 is at base+20s: --until includes it and stops there.
		recs, _, code = replay(t, dir, "--from-lsn", "20", "--until", "2025-03-14T15:09:46Z")
		if code != exitOK || len(recs) != 2 || recs[1]["lsn"] != 21.0 {
			t.Fatalf("exit %d, %v", code, recs)
		}
		recs, _, code = replay(t, dir, "--from-lsn", "61")
		if code != exitOK || len(recs) != 0 {
			t.Fatalf("replay from the next LSN: exit %d, %v", code, recs)
		}
	})
	t.Run("OKTableYAML", func(t *testing.T) {
		stdout, _, code := cliUnchanged(t, dir, nil, "txlog", "replay", dir, "--stream", "main", "--to", "3")
		if code != exitOK || !strings.Contains(stdout, "count/n kg=9 key=base64:/wAC") || strings.Count(stdout, "\n") != 4 {
			t.Fatalf("exit %d, table:\n%s", code, stdout)
		}
		stdout, _, code = cliUnchanged(t, dir, nil, "txlog", "replay", dir, "--stream", "main", "--to", "3", "-o", "yaml")
		if code != exitOK || strings.Count(stdout, "---\n") != 3 || !strings.Contains(stdout, "key_b64: /wAC") {
			t.Fatalf("exit %d, yaml:\n%s", code, stdout)
		}
	})
	t.Run("ErrDamage", func(t *testing.T) {
		dir, segs := txlogFixture(t, 60)
		txlogFlip(t, segs[1], 70)
		recs, stderr, code := replay(t, dir)
		if code != exitFindings || len(recs) == 0 || !strings.Contains(stderr, "checksum mismatch") || !strings.Contains(stderr, filepath.Base(segs[1])) {
			t.Fatalf("exit %d, %d records, %s", code, len(recs), stderr)
		}
		dir, segs = txlogFixture(t, 60)
		os.Remove(segs[2])
		if _, stderr, code := replay(t, dir); code != exitFindings || !strings.Contains(stderr, "LSN gap") {
			t.Fatalf("replay across a missing segment: exit %d, %s", code, stderr)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		for _, args := range [][]string{
			{"txlog", "replay", dir},
			{"txlog", "replay", dir, "--stream", "main", "--to", "5", "--until", "2025-03-14T15:09:46Z"},
			{"txlog", "replay", dir, "--stream", "main", "--until", "yesterday"},
			{"txlog", "replay", dir, "--stream", "main", "--from-lsn", "9", "--to", "5"},
			{"txlog", "replay", dir, "--stream", "main", "--to", "0"},
			{"txlog", "replay", dir, "--stream", "main", "--from-lsn", "-1"},
			{"txlog", "replay", dir, "--stream", "main", "-o", "csv"},
			{"txlog", "replay", dir, "--stream", "nope"},
			{"txlog", "replay", dir, "--stream", "main", "--from-lsn", "1000"},
			{"txlog", "replay", dir, "--from", "latest", "--from-lsn", "3"},
			{"txlog", "replay", dir, "--stream", "main", "--write-checkpoint", "--into", t.TempDir()},
			{"txlog", "replay", dir, "--from", "latest", "--write-checkpoint"},
			{"txlog", "replay", dir, "--from", "latest", "--into", t.TempDir()},
			{"txlog", "replay", dir, "--from", "latest", "--write-checkpoint", "--into", "../x"},
			{"txlog", "replay", dir, "--from", "nonsense"},
		} {
			if _, stderr, code := cliUnchanged(t, dir, nil, args...); code != exitUsage {
				t.Errorf("%v: exit %d, want 2: %s", args, code, stderr)
			}
		}
	})
}

func TestTxlogCmds_ErrUnreachable(t *testing.T) {
	setAWSEnv(t, "AKIDTEST", "secret")
	for _, args := range [][]string{{"ls"}, {"verify"}, {"replay", "--stream", "main"}} {
		full := append([]string{"txlog"}, args[0], "s3://bucket/prefix", "--s3-endpoint", "http://127.0.0.1:1", "--s3-path-style")
		full = append(full, args[1:]...)
		_, stderr, code := cliRun(t, "", full...)
		if code != exitIO {
			t.Errorf("%v against a closed port: exit %d, want 3: %s", args, code, stderr)
		}
	}
}
