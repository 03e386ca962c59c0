package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// startS3 runs a real S3 server for one test. Starting one takes a fraction
// of a second, so each test has its own and the package's TestMain stays
// as it is.
func startS3(t *testing.T) (*s3test.Server, string) {
	t.Helper()
	srv, err := s3test.Start(context.Background())
	if err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop S3 server: %v", err)
		}
	})
	return srv, srv.NewBucket(t)
}

func s3OutputOpts(srv *s3test.Server, bucket, prefix string) S3OutputOptions {
	return S3OutputOptions{Bucket: bucket, Prefix: prefix, S3Options: storetest.S3Options(srv)}
}

// newS3Output opens the output and closes it when the test ends.
func newS3Output(t *testing.T, srv *s3test.Server, bucket, prefix string) *s3Output {
	t.Helper()
	out, err := NewS3Output(context.Background(), s3OutputOpts(srv, bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.(io.Closer).Close() })
	return out.(*s3Output)
}

// openUploads lists the multipart uploads in progress in bucket.
func openUploads(t *testing.T, srv *s3test.Server, bucket string) []s3types.MultipartUpload {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Uploads
}

// objectKeys lists the keys under prefix.
func objectKeys(t *testing.T, srv *s3test.Server, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

func getObject(t *testing.T, srv *s3test.Server, bucket, key string) []byte {
	t.Helper()
	out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

// downloadParts copies the committed objects under prefix into a new
// directory, checking their names, and returns it.
func downloadParts(t *testing.T, srv *s3test.Server, bucket, prefix string) string {
	t.Helper()
	dir := t.TempDir()
	keys := objectKeys(t, srv, bucket, prefix+"/")
	if len(keys) == 0 {
		t.Fatalf("no object under %s/", prefix)
	}
	for _, key := range keys {
		base := path.Base(key)
		if path.Dir(key) != prefix || !partKeyPattern.MatchString(base) {
			t.Fatalf("unexpected object %q", key)
		}
		if err := os.WriteFile(filepath.Join(dir, base), getObject(t, srv, bucket, key), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestS3Output_WordCount(t *testing.T) {
	srv, bucket := startS3(t)
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 5000, 300, 1)
	spec := wordCountSpec(t, dir, 2)
	spec.Output = newS3Output(t, srv, bucket, "wordcount/out")
	if got := spec.Output.Name(); got != "s3:"+bucket+"/wordcount/out" {
		t.Fatalf("Name() = %q", got)
	}
	r, err := NewRunner(spec, Options{Repo: openRepo(t, dir), Interval: 5 * time.Millisecond, Retained: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.Stats().CheckpointsCompleted.Load(); n < 2 {
		t.Fatalf("only %d checkpoints", n)
	}
	got := readCounts(t, downloadParts(t, srv, bucket, "wordcount/out"))
	if len(got) != len(want) {
		t.Fatalf("%d words counted, want %d", len(got), len(want))
	}
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %s: %d, want %d", w, got[w], n)
		}
	}
	if ups := openUploads(t, srv, bucket); len(ups) != 0 {
		t.Fatalf("%d multipart uploads left open", len(ups))
	}
}

// With exactly_once: false the S3 output completes each epoch's uploads at
// its barrier, as the file output renames its parts: a store that refuses
// every checkpoint does not hold the output back. (Before, S3 output was
// two-phase whatever exactly_once said.)
func TestS3Output_AtLeastOnce(t *testing.T) {
	srv, bucket := startS3(t)
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 2000, 100, 3)
	spec := wordCountSpec(t, dir, 2)
	opts := s3OutputOpts(srv, bucket, "alo/out")
	opts.AtLeastOnce = true
	out, err := NewS3Output(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.(io.Closer).Close() })
	spec.Output = out
	store, repo := flakyRepo(t, dir)
	store.down.Store(true) // no checkpoint completes
	spec.Input = &slowInput{Input: spec.Input, every: 20, pause: time.Millisecond}
	r, err := NewRunner(spec, Options{Repo: repo, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	waitWhileRunning(t, done, "an object while checkpoints failed", func() bool {
		return len(objectKeys(t, srv, bucket, "alo/out/")) > 0
	})
	if r.Stats().CheckpointsCompleted.Load() != 0 {
		t.Fatal("a checkpoint completed although the store was down")
	}
	store.down.Store(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := readCounts(t, downloadParts(t, srv, bucket, "alo/out"))
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %s: %d, want %d", w, got[w], n)
		}
	}
}

// slowCommits delays every create-only write (a checkpoint's manifest, its
// commit point) so that a checkpoint spends a while between its outputs'
// pre-commit and their commit, the window in which a cut run leaves
// uploads open, whatever the machine's speed.
type slowCommits struct {
	store.Store
	delay time.Duration
}

func (s slowCommits) Unwrap() store.Store { return s.Store }

func (s slowCommits) PutIf(ctx context.Context, name string, r io.Reader, size int64, c store.Condition) (store.ObjectInfo, error) {
	if c.IfNoneMatch {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return store.ObjectInfo{}, ctx.Err()
		}
	}
	return s.Store.PutIf(ctx, name, r, size, c)
}

// slowCommitRepo opens the word count's store under dir/state behind
// slowCommits.
func slowCommitRepo(t *testing.T, dir string, delay time.Duration) *checkpoint.Repo {
	t.Helper()
	base, err := store.NewDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	r, err := checkpoint.InitRepo(context.Background(), slowCommits{Store: base, delay: delay}, "wordcount", 128)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A run cancelled at random moments and restarted, with a new output (as a
// new process would have) and another parallelism each time, commits every
// count exactly once and leaves no upload open.
func TestS3Output_RestartExactlyOnce(t *testing.T) {
	srv, bucket := startS3(t)
	dir := t.TempDir()
	want := writeWords(t, filepath.Join(dir, "input.txt"), 6000, 500, 2)
	rng := rand.New(rand.NewPCG(4, 4))
	attempts, interrupted := 0, 0
	// The input is slowed down so a run takes long enough to be cut on a
	// fast machine, and attempts that complete no checkpoint get longer so
	// a slow one still makes progress.
	slack := time.Duration(0)
	for ; ; attempts++ {
		if attempts > 200 {
			t.Fatal("did not finish in 200 attempts")
		}
		spec := wordCountSpec(t, dir, 1+attempts%3)
		spec.Input = &slowInput{Input: spec.Input, every: 50, pause: time.Millisecond}
		out, err := NewS3Output(context.Background(), s3OutputOpts(srv, bucket, "counts"))
		if err != nil {
			t.Fatal(err)
		}
		spec.Output = out
		r, err := NewRunner(spec, Options{Repo: slowCommitRepo(t, dir, 20*time.Millisecond), Interval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+rng.IntN(100))*time.Millisecond+slack)
		err = r.Run(ctx)
		cancel()
		out.(io.Closer).Close()
		if r.Stats().CheckpointsCompleted.Load() == 0 {
			slack += 20 * time.Millisecond
		}
		open := len(openUploads(t, srv, bucket))
		t.Logf("attempt %d: restored %d, completed %d, in %d, uploads open %d: %v",
			attempts, r.Stats().RestoredFrom.Load(), r.Stats().CheckpointsCompleted.Load(), r.Stats().RecordsIn.Load(), open, err)
		if err == nil {
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("attempt %d: %v", attempts, err)
		}
		if open > 0 {
			interrupted++
		}
	}
	if attempts == 0 || interrupted == 0 {
		t.Fatalf("%d interrupted runs left uploads open; the test needs some to show they are settled", interrupted)
	}
	got := readCounts(t, downloadParts(t, srv, bucket, "counts"))
	for w, n := range want {
		if got[w] != n {
			t.Fatalf("word %s: %d, want %d", w, got[w], n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d words committed, want %d", len(got), len(want))
	}
	if ups := openUploads(t, srv, bucket); len(ups) != 0 {
		t.Fatalf("%d multipart uploads left open after the final run", len(ups))
	}
}

// writeEpoch writes n records of about 1 KiB to subtask's epoch and
// returns the JSON lines the object must hold.
func writeEpoch(t *testing.T, o *s3Output, subtask int, epoch uint64, n int) []byte {
	t.Helper()
	var want bytes.Buffer
	pad := strings.Repeat("x", 1000)
	for i := range n {
		rec := Record{"epoch": epoch, "i": i, "pad": pad}
		if err := o.t.Write(subtask, epoch, rec); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rec)
		want.Write(append(b, '\n'))
	}
	return want.Bytes()
}

func prepare(t *testing.T, o *s3Output, subtask int, epoch uint64) (string, json.RawMessage) {
	t.Helper()
	id, data, ok, err := o.t.Prepare(subtask, epoch)
	if err != nil || !ok {
		t.Fatalf("Prepare(%d, %d) = %v, %v", subtask, epoch, ok, err)
	}
	return id, data
}

func headErr(srv *s3test.Server, bucket, key string) error {
	_, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err
}

func TestS3Output_Commit(t *testing.T) {
	ctx := context.Background()
	srv, bucket := startS3(t)
	t.Run("OKMultipart", func(t *testing.T) {
		o := newS3Output(t, srv, bucket, "multi")
		// About 2.4 parts: two full parts go up during Write.
		want := writeEpoch(t, o, 3, 7, 2*store.MinPartSize/1000*6/5)
		key := "multi/part-00000000000000000007-0003.jsonl"
		if ups := openUploads(t, srv, bucket); len(ups) != 1 || aws.ToString(ups[0].Key) != key {
			t.Fatalf("uploads during the epoch = %+v; want one of %s", ups, key)
		}
		id, data := prepare(t, o, 3, 7)
		var d s3TxnData
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Key != key || d.UploadID != id || len(d.Parts) != 3 || d.Size != int64(len(want)) {
			t.Fatalf("prepared data %s; want key %s, upload %s, 3 parts, %d bytes", data, key, id, len(want))
		}
		if err := headErr(srv, bucket, key); err == nil {
			t.Fatal("the object is visible before Commit")
		}
		if err := o.t.Commit(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		if got := getObject(t, srv, bucket, key); !bytes.Equal(got, want) {
			t.Fatalf("committed object has %d bytes, want %d", len(got), len(want))
		}
		head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if etag, ok := multipartETag(d.Parts); !ok || `"`+etag+`"` != aws.ToString(head.ETag) {
			t.Fatalf("object ETag %s; the parts give %s (%t): the idempotency check could not use it", aws.ToString(head.ETag), etag, ok)
		}
		if ups := openUploads(t, srv, bucket); len(ups) != 0 {
			t.Fatalf("%d uploads open after Commit", len(ups))
		}
		// Committing again, as a recovery after a crash between completing
		// the upload and recording it does, finds the object and succeeds.
		if err := o.t.Commit(ctx, id, data); err != nil {
			t.Fatalf("second Commit: %v", err)
		}
		txn := []format.PendingTxn{{Output: o.Name(), TxnID: id, Epoch: 7, Data: data}}
		if err := o.Recover(ctx, txn); err != nil {
			t.Fatalf("Recover with the committed transaction: %v", err)
		}
		if got := getObject(t, srv, bucket, key); !bytes.Equal(got, want) {
			t.Fatal("the object changed on the repeated commits")
		}
	})
	t.Run("OKSinglePartTwice", func(t *testing.T) {
		o := newS3Output(t, srv, bucket, "single")
		sink, err := o.NewSink(0)
		if err != nil {
			t.Fatal(err)
		}
		sink.Begin(1)
		if err := sink.Write(Record{"k": "v"}); err != nil {
			t.Fatal(err)
		}
		txns, err := sink.PreCommit(1)
		if err != nil || len(txns) != 1 {
			t.Fatalf("PreCommit = %+v, %v", txns, err)
		}
		for i := range 2 {
			if err := o.Commit(ctx, txns); err != nil {
				t.Fatalf("Commit %d: %v", i+1, err)
			}
		}
		if got := string(getObject(t, srv, bucket, "single/part-00000000000000000001-0000.jsonl")); got != `{"k":"v"}`+"\n" {
			t.Fatalf("object = %q", got)
		}
		// An empty epoch has no transaction.
		sink.Begin(2)
		if txns, err := sink.PreCommit(2); err != nil || len(txns) != 0 {
			t.Fatalf("PreCommit of an empty epoch = %+v, %v", txns, err)
		}
	})
	t.Run("ErrAborted", func(t *testing.T) {
		o := newS3Output(t, srv, bucket, "aborted")
		writeEpoch(t, o, 0, 1, 10)
		id, data := prepare(t, o, 0, 1)
		if err := o.t.AbortExcept(ctx, nil); err != nil {
			t.Fatal(err)
		}
		err := o.t.Commit(ctx, id, data)
		if err == nil || !strings.Contains(err.Error(), "lost") {
			t.Fatalf("Commit of an aborted upload: %v; want an error saying the records are lost", err)
		}
	})
	t.Run("ErrOtherObject", func(t *testing.T) {
		// The upload is gone and another object holds the key: not this
		// transaction's, so not committed.
		for _, tc := range []struct {
			name, want string
			put        func(key string, size int)
		}{
			{"size", "1 bytes", func(key string, _ int) {
				if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
					t.Fatal(err)
				}
			}},
			{"etag", "ETag", func(key string, size int) {
				// Same size, other bytes, also a multipart upload.
				c := srv.Client()
				up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
					PartNumber: aws.Int32(1), Body: bytes.NewReader(bytes.Repeat([]byte("y"), size))})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
					MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}); err != nil {
					t.Fatal(err)
				}
			}},
		} {
			o := newS3Output(t, srv, bucket, "other-"+tc.name)
			want := writeEpoch(t, o, 0, 1, 10)
			id, data := prepare(t, o, 0, 1)
			if err := o.t.AbortExcept(ctx, nil); err != nil {
				t.Fatal(err)
			}
			tc.put("other-"+tc.name+"/part-00000000000000000001-0000.jsonl", len(want))
			err := o.t.Commit(ctx, id, data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: Commit over another object: %v; want an error about its %s", tc.name, err, tc.want)
			}
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		o := newS3Output(t, srv, bucket, "bad")
		good := s3TxnData{Key: "bad/part-00000000000000000001-0000.jsonl", UploadID: "u", Size: 3, Parts: []s3Part{{Number: 1, ETag: `"e"`, Size: 3}}}
		for _, tc := range []struct {
			name string
			edit func(*s3TxnData)
		}{
			{"other id", func(d *s3TxnData) { d.UploadID = "v" }},
			{"key outside prefix", func(d *s3TxnData) { d.Key = "elsewhere/part-00000000000000000001-0000.jsonl" }},
			{"key not a part", func(d *s3TxnData) { d.Key = "bad/../x" }},
			{"no parts", func(d *s3TxnData) { d.Parts = nil }},
			{"part numbers", func(d *s3TxnData) { d.Parts[0].Number = 2 }},
			{"size", func(d *s3TxnData) { d.Size = 4 }},
			{"negative part", func(d *s3TxnData) { d.Parts[0].Size, d.Size = -1, -1 }},
		} {
			d := good
			d.Parts = slices.Clone(good.Parts)
			tc.edit(&d)
			data, _ := json.Marshal(d)
			if err := o.t.Commit(ctx, "u", data); !errors.Is(err, format.ErrMalformed) {
				t.Errorf("%s: Commit = %v; want ErrMalformed", tc.name, err)
			}
		}
		if err := o.t.Commit(ctx, "u", json.RawMessage(`{"key":`)); !errors.Is(err, format.ErrMalformed) {
			t.Errorf("truncated JSON: %v; want ErrMalformed", err)
		}
		huge := make(json.RawMessage, maxS3TxnData+1)
		var ce *format.CorruptError
		if err := o.t.Commit(ctx, "u", huge); !errors.Is(err, format.ErrTooLarge) || !errors.As(err, &ce) {
			t.Errorf("oversized data: %v; want a CorruptError wrapping ErrTooLarge", err)
		}
	})
}

func TestS3Output_AbortExcept(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ctx := context.Background()
		srv, bucket := startS3(t)
		o := newS3Output(t, srv, bucket, "job")
		var ids []string
		for epoch := uint64(1); epoch <= 3; epoch++ {
			writeEpoch(t, o, 1, epoch, 5)
			id, _ := prepare(t, o, 1, epoch)
			ids = append(ids, id)
		}
		writeEpoch(t, o, 0, 4, 5) // open, never prepared
		// Uploads the output does not own stay.
		for _, key := range []string{"job/other.bin", "elsewhere/part-00000000000000000001-0000.jsonl"} {
			if _, err := srv.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.t.AbortExcept(ctx, ids[1:2]); err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, u := range openUploads(t, srv, bucket) {
			left = append(left, aws.ToString(u.Key))
			if aws.ToString(u.Key) == "job/part-00000000000000000002-0001.jsonl" && aws.ToString(u.UploadId) != ids[1] {
				t.Fatalf("kept upload has id %s, want %s", aws.ToString(u.UploadId), ids[1])
			}
		}
		slices.Sort(left)
		if want := []string{"elsewhere/part-00000000000000000001-0000.jsonl", "job/other.bin", "job/part-00000000000000000002-0001.jsonl"}; !slices.Equal(left, want) {
			t.Fatalf("uploads left %q; want %q", left, want)
		}
		// The open epoch was forgotten: preparing it finds nothing.
		if _, _, ok, err := o.t.Prepare(0, 4); ok || err != nil {
			t.Fatalf("Prepare of an aborted epoch = %v, %v; want nothing", ok, err)
		}
	})
}

func TestNewS3Output(t *testing.T) {
	ctx := context.Background()
	t.Run("ErrNoSuchBucket", func(t *testing.T) {
		srv, _ := startS3(t)
		_, err := NewS3Output(ctx, s3OutputOpts(srv, "no-such-bucket", "p"))
		if err == nil || !strings.Contains(err.Error(), `"no-such-bucket"`) || !strings.Contains(err.Error(), srv.Endpoint) {
			t.Fatalf("NewS3Output with a missing bucket: %v; want an error naming bucket and endpoint", err)
		}
		if strings.Contains(err.Error(), srv.SecretKey) {
			t.Fatal("error contains the secret key")
		}
	})
	t.Run("ErrConfig", func(t *testing.T) {
		base := S3OutputOptions{Bucket: "b", S3Options: store.S3Options{Endpoint: "http://127.0.0.1:1", AccessKeyID: "AK", SecretAccessKey: "cfg-secret"}}
		for _, tc := range []struct {
			name, want string
			edit       func(*S3OutputOptions)
		}{
			{"no bucket", "bucket is required", func(o *S3OutputOptions) { o.Bucket = "" }},
			{"small parts", "part size", func(o *S3OutputOptions) { o.PartSize = 1 << 20 }},
			{"prefix", `".."`, func(o *S3OutputOptions) { o.Prefix = "a/../b" }},
			{"half credentials", "both", func(o *S3OutputOptions) { o.AccessKeyID = "" }},
			{"endpoint", "is not http or https", func(o *S3OutputOptions) { o.Endpoint = "ftp://host" }},
		} {
			opts := base
			tc.edit(&opts)
			_, err := NewS3Output(ctx, opts)
			if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "cfg-secret") {
				t.Errorf("%s: %v; want ErrConfig mentioning %q without the secret", tc.name, err, tc.want)
			}
		}
	})
	t.Run("OKOptionsNotPrinted", func(t *testing.T) {
		opts := S3OutputOptions{S3Options: store.S3Options{AccessKeyID: "AK", SecretAccessKey: "printed-secret", SessionToken: "printed-token"}}
		for _, s := range []string{fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts)} {
			if strings.Contains(s, "printed-secret") || strings.Contains(s, "printed-token") {
				t.Fatalf("formatted options %q contain a secret", s)
			}
		}
	})
}

// BenchmarkS3Output_Epoch writes one epoch of 1 KiB records through the
// output and commits it: Write (uploading full parts), Prepare and Commit.
func BenchmarkS3Output_Epoch(b *testing.B) {
	srv, err := s3test.Start(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	bucket := srv.NewBucket(b)
	out, err := NewS3Output(context.Background(), S3OutputOptions{Bucket: bucket, Prefix: "bench", S3Options: store.S3Options{
		Endpoint: srv.Endpoint, Region: s3test.Region, PathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PartSize: 8 << 20,
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer out.(io.Closer).Close()
	o := out.(*s3Output)
	rec := Record{"pad": strings.Repeat("x", 1000)}
	for _, size := range []int{64 << 10, 20 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			epoch := uint64(0)
			for b.Loop() {
				epoch++
				for range size / 1024 {
					if err := o.t.Write(0, epoch, rec); err != nil {
						b.Fatal(err)
					}
				}
				id, data, ok, err := o.t.Prepare(0, epoch)
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
				if err := o.t.Commit(context.Background(), id, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
