package pipeline

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

// Limits of the S3 output.
const (
	// defaultS3OutputPartSize is the part size when none is configured.
	defaultS3OutputPartSize = 8 << 20
	// maxS3PartSize is S3's largest part.
	maxS3PartSize = 5 << 30
	// maxS3Parts is S3's largest part count per upload.
	maxS3Parts = 10000
	// maxS3TxnData bounds the transaction data Commit decodes: 10000 parts
	// of about 120 bytes of JSON each, with room to spare.
	maxS3TxnData = 4 << 20
)

// S3OutputOptions configure NewS3Output.
type S3OutputOptions struct {
	// Bucket receives the objects.
	Bucket string
	// Prefix is the key prefix: the record of subtask s in epoch e go to
	// <Prefix>/part-<20-digit e>-<4-digit s>.jsonl. A prefix belongs to one
	// job: recovering aborts every upload of such a key under it that the
	// job's checkpoint does not list.
	Prefix string
	// S3Options locate the server and set credentials and retries exactly
	// as for a checkpoint store; empty values take the AWS configuration
	// chain. PartSize is the multipart part size (default 8 MiB, between
	// store.MinPartSize and 5 GiB): each subtask buffers at most one
	// part plus one record, so memory use is about parallelism × PartSize,
	// and an epoch can hold up to 10000 parts. Concurrency and
	// MultipartThreshold do not apply.
	store.S3Options
	// AtLeastOnce completes each epoch's uploads at its barrier instead of
	// after the checkpoint that covers it (state.exactly_once: false): the
	// objects appear sooner, and a restart writes again what followed the
	// last checkpoint.
	AtLeastOnce bool
}

// String describes the options without the secret key or session token.
func (o S3OutputOptions) String() string {
	return fmt.Sprintf("bucket=%q prefix=%q part_size=%d %s", o.Bucket, o.Prefix, o.PartSize, o.S3Options)
}

// GoString is String, for %#v.
func (o S3OutputOptions) GoString() string { return o.String() }

// NewS3Output returns an exactly-once output that writes one S3 object per
// epoch and subtask, named "s3:<bucket>/<prefix>" in checkpoints. It is a
// TwoPhaseCommitOutput over multipart uploads:
//
//   - Write appends the record as a JSON line to the epoch's buffer; a full
//     part is uploaded at once (the multipart upload is created with the
//     first part), so memory stays bounded whatever the epoch's size.
//   - Prepare, at the epoch's barrier, uploads the rest as the last part
//     and returns the upload id as the transaction id, with the key, size
//     and parts as its data. The upload is not completed: the object does
//     not exist yet for readers.
//   - Commit, once the checkpoint is durable, completes the upload. It is
//     idempotent: an upload that no longer exists counts as committed if the
//     object has the expected size (and, where S3's multipart ETag can be
//     computed from the parts, that ETag).
//   - Recovery commits what the checkpoint lists and aborts every other
//     upload of a part key under the prefix.
//
// ctx serves only the check, with one listing request, that the bucket can
// be reached. The returned Output also implements io.Closer: Close stops
// uploads in progress and drops idle connections. Uploads of epochs that
// were never pre-committed stay open until the pipeline next recovers from
// its checkpoint store; a bucket lifecycle rule that aborts incomplete
// multipart uploads after some days cleans up after jobs that never restart.
func NewS3Output(ctx context.Context, cfg S3OutputOptions) (Output, error) {
	prefix := strings.Trim(cfg.Prefix, "/")
	name := "s3:" + cfg.Bucket + "/" + prefix
	fail := func(err error) error { return fmt.Errorf("output %s: %w", name, err) }
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = defaultS3OutputPartSize
	}
	switch {
	case cfg.Bucket == "":
		return nil, fail(fmt.Errorf("%w: a bucket is required", store.ErrConfig))
	case partSize < store.MinPartSize || partSize > maxS3PartSize:
		return nil, fail(fmt.Errorf("%w: part size %d is outside S3's %d to %d bytes", store.ErrConfig, partSize, store.MinPartSize, maxS3PartSize))
	case prefix != "" && store.ValidateName(prefix) != nil:
		return nil, fail(fmt.Errorf("%w: %w", store.ErrConfig, store.ValidateName(prefix)))
	}
	client, err := store.NewS3Client(ctx, cfg.S3Options)
	if err != nil {
		return nil, fail(err)
	}
	if prefix != "" {
		prefix += "/"
	}
	if _, err := client.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(cfg.Bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1),
	}); err != nil {
		client.Close()
		return nil, fail(fmt.Errorf("bucket %q at %s: %w", cfg.Bucket, endpointName(client.Endpoint), err))
	}
	t := &s3Transactional{
		client:   client,
		bucket:   cfg.Bucket,
		prefix:   prefix,
		name:     name,
		partSize: partSize,
		open:     map[s3TxnKey]*s3Txn{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return &s3Output{Output: &twoPhaseOutput{name: name, t: t, atLeastOnce: cfg.AtLeastOnce}, t: t}, nil
}

func endpointName(endpoint string) string {
	if endpoint == "" {
		return "AWS"
	}
	return endpoint
}

// s3Output is the two-phase output plus Close.
type s3Output struct {
	Output
	t *s3Transactional
}

// Close stops uploads in progress and drops idle connections.
func (o *s3Output) Close() error {
	o.t.cancel()
	o.t.client.Close()
	return nil
}

// s3Transactional keeps one multipart upload per open (subtask, epoch).
type s3Transactional struct {
	client   *store.S3Client
	bucket   string
	prefix   string // "" or ending in "/"
	name     string
	partSize int64
	// ctx bounds the uploads of Write and Prepare, which get no context of
	// their own; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	open map[s3TxnKey]*s3Txn
}

type s3TxnKey struct {
	subtask int
	epoch   uint64
}

// s3Txn is one epoch of one subtask. Only that subtask's task touches it.
type s3Txn struct {
	key      string
	uploadID string // "" until the first part is uploaded
	buf      []byte // bytes not yet uploaded
	parts    []s3Part
	size     int64 // bytes uploaded
	err      error // a failed upload: the transaction is lost
}

// s3Part is a completed part, as recorded in the transaction data.
type s3Part struct {
	Number        int32  `json:"number"`
	ETag          string `json:"etag"`
	ChecksumCRC32 string `json:"checksum_crc32,omitempty"`
	Size          int64  `json:"size"`
}

// s3TxnData is the data of a prepared transaction, kept in the checkpoint.
type s3TxnData struct {
	Key      string   `json:"key"`
	UploadID string   `json:"upload_id"`
	Size     int64    `json:"size"`
	Parts    []s3Part `json:"parts"`
}

// partKeyPattern matches the base name of the keys the output writes.
var partKeyPattern = regexp.MustCompile(`^part-[0-9]{20}-[0-9]{4,}\.jsonl$`)

func (t *s3Transactional) keyFor(subtask int, epoch uint64) string {
	return fmt.Sprintf("%spart-%020d-%04d.jsonl", t.prefix, epoch, subtask)
}

// isPartKey reports whether key is one the output writes under its prefix.
func (t *s3Transactional) isPartKey(key string) bool {
	base, ok := strings.CutPrefix(key, t.prefix)
	return ok && partKeyPattern.MatchString(base)
}

// Write implements Transactional.
func (t *s3Transactional) Write(subtask int, epoch uint64, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("output %s: %w", t.name, err)
	}
	k := s3TxnKey{subtask, epoch}
	t.mu.Lock()
	txn := t.open[k]
	if txn == nil {
		txn = &s3Txn{key: t.keyFor(subtask, epoch)}
		t.open[k] = txn
	}
	t.mu.Unlock()
	if txn.err != nil {
		return txn.err
	}
	txn.buf = append(append(txn.buf, b...), '\n')
	// Full parts go now; what is left (never empty, thanks to ">") is the
	// last part, uploaded by Prepare.
	for int64(len(txn.buf)) > t.partSize {
		if err := t.uploadPart(txn, txn.buf[:t.partSize]); err != nil {
			txn.err = err
			return err
		}
		txn.buf = txn.buf[:copy(txn.buf, txn.buf[t.partSize:])]
	}
	return nil
}

// uploadPart uploads body as txn's next part, creating the multipart
// upload first if needed. body may be reused once it returns.
func (t *s3Transactional) uploadPart(txn *s3Txn, body []byte) error {
	key := aws.String(txn.key)
	if txn.uploadID == "" {
		out, err := t.client.Client.CreateMultipartUpload(t.ctx, &s3.CreateMultipartUploadInput{
			Bucket:            aws.String(t.bucket),
			Key:               key,
			ContentType:       aws.String("application/x-ndjson"),
			ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return fmt.Errorf("output %s: start upload of %s: %w", t.name, txn.key, err)
		}
		txn.uploadID = aws.ToString(out.UploadId)
	}
	n := int32(len(txn.parts) + 1)
	if n > maxS3Parts {
		return fmt.Errorf("output %s: %s needs more than %d parts of %d bytes: raise the part size", t.name, txn.key, maxS3Parts, t.partSize)
	}
	out, err := t.client.Client.UploadPart(t.ctx, &s3.UploadPartInput{
		Bucket:            aws.String(t.bucket),
		Key:               key,
		UploadId:          aws.String(txn.uploadID),
		PartNumber:        aws.Int32(n),
		Body:              bytes.NewReader(body),
		ContentLength:     aws.Int64(int64(len(body))),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return fmt.Errorf("output %s: upload part %d of %s: %w", t.name, n, txn.key, err)
	}
	txn.parts = append(txn.parts, s3Part{Number: n, ETag: aws.ToString(out.ETag), ChecksumCRC32: aws.ToString(out.ChecksumCRC32), Size: int64(len(body))})
	txn.size += int64(len(body))
	return nil
}

// Prepare implements Transactional: the last part is uploaded and the
// upload left open. The transaction id is the upload id.
func (t *s3Transactional) Prepare(subtask int, epoch uint64) (string, json.RawMessage, bool, error) {
	k := s3TxnKey{subtask, epoch}
	t.mu.Lock()
	txn := t.open[k]
	delete(t.open, k)
	t.mu.Unlock()
	if txn == nil {
		return "", nil, false, nil
	}
	err := txn.err
	if err == nil && len(txn.buf) > 0 {
		err = t.uploadPart(txn, txn.buf)
	}
	if err != nil {
		// The epoch's records are lost with this process; recovery from
		// the last checkpoint produces them again, so the upload is
		// only litter.
		t.abort(txn.key, txn.uploadID)
		return "", nil, false, fmt.Errorf("output %s: pre-commit epoch %d: %w", t.name, epoch, err)
	}
	data, err := json.Marshal(s3TxnData{Key: txn.key, UploadID: txn.uploadID, Size: txn.size, Parts: txn.parts})
	if err != nil {
		return "", nil, false, fmt.Errorf("output %s: %w", t.name, err)
	}
	return txn.uploadID, data, true, nil
}

// abort discards an upload, best effort: recovery aborts what remains.
func (t *s3Transactional) abort(key, uploadID string) {
	if uploadID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 30*time.Second)
	defer cancel()
	_, _ = t.client.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(t.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
}

// decodeTxn checks a transaction's data, which comes from a checkpoint.
func (t *s3Transactional) decodeTxn(txnID string, data json.RawMessage) (*s3TxnData, error) {
	corrupt := func(sentinel error, msg string, args ...any) error {
		return &format.CorruptError{File: t.name + " transaction " + txnID, Offset: -1, Record: "s3 output transaction data",
			Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(msg, args...))}
	}
	if len(data) > maxS3TxnData {
		return nil, corrupt(format.ErrTooLarge, "%d bytes, limit %d", len(data), maxS3TxnData)
	}
	var d s3TxnData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, corrupt(format.ErrMalformed, "%v", err)
	}
	switch {
	case d.UploadID != txnID:
		return nil, corrupt(format.ErrMalformed, "upload_id %q is not the transaction id", d.UploadID)
	case !t.isPartKey(d.Key):
		return nil, corrupt(format.ErrMalformed, "key %q is not a part key under %q", d.Key, t.prefix)
	case len(d.Parts) == 0 || len(d.Parts) > maxS3Parts:
		return nil, corrupt(format.ErrMalformed, "%d parts, want 1 to %d", len(d.Parts), maxS3Parts)
	}
	var total int64
	for i, p := range d.Parts {
		if p.Number != int32(i+1) || p.ETag == "" || p.Size <= 0 || p.Size > maxS3PartSize {
			return nil, corrupt(format.ErrMalformed, "part %d: number %d, etag %q, size %d", i, p.Number, p.ETag, p.Size)
		}
		total += p.Size
	}
	if total != d.Size {
		return nil, corrupt(format.ErrMalformed, "parts hold %d bytes, size says %d", total, d.Size)
	}
	return &d, nil
}

// Commit implements Transactional: it completes the upload, or finds it
// completed already.
func (t *s3Transactional) Commit(ctx context.Context, txnID string, data json.RawMessage) error {
	d, err := t.decodeTxn(txnID, data)
	if err != nil {
		return err
	}
	parts := make([]s3types.CompletedPart, len(d.Parts))
	for i, p := range d.Parts {
		parts[i] = s3types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
		if p.ChecksumCRC32 != "" {
			parts[i].ChecksumCRC32 = aws.String(p.ChecksumCRC32)
		}
	}
	_, err = t.client.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(t.bucket),
		Key:             aws.String(d.Key),
		UploadId:        aws.String(d.UploadID),
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil && !isNoSuchUpload(err) {
		return fmt.Errorf("complete upload of %s: %w", d.Key, err)
	}
	// The object tells whether the transaction is committed: completed now,
	// or before a crash came between completing and recording it. A success
	// alone does not: some servers answer the completion of an upload that
	// no longer exists with success, as S3 does for a repeated one.
	head, herr := t.client.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(t.bucket), Key: aws.String(d.Key)})
	if herr != nil {
		if err != nil {
			return fmt.Errorf("upload of %s no longer exists and the object cannot be read (%v): its records are lost: %w", d.Key, herr, err)
		}
		return fmt.Errorf("read %s after completing its upload: %w", d.Key, herr)
	}
	if size := aws.ToInt64(head.ContentLength); size != d.Size {
		return fmt.Errorf("the object %s has %d bytes, not the %d this transaction uploaded: another writer replaced it, or the upload was aborted", d.Key, size, d.Size)
	}
	if want, ok := multipartETag(d.Parts); ok {
		if got := strings.Trim(aws.ToString(head.ETag), `"`); strings.Contains(got, "-") && got != want {
			return fmt.Errorf("the object %s has ETag %s, not the %s of this transaction's parts: another writer replaced it", d.Key, got, want)
		}
	}
	return nil
}

// multipartETag computes S3's ETag of an object completed from parts, the
// MD5 of the parts' binary MD5s followed by "-" and the part count, when
// every part's ETag is a plain MD5.
func multipartETag(parts []s3Part) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return "", false
		}
		h.Write(sum)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts)), true
}

func isNoSuchUpload(err error) bool {
	var nsu *s3types.NoSuchUpload
	if errors.As(err, &nsu) {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload"
}

// AbortExcept implements Transactional: it forgets the open transactions
// and aborts every multipart upload of a part key under the prefix whose
// upload id is not in keep.
func (t *s3Transactional) AbortExcept(ctx context.Context, keep []string) error {
	t.mu.Lock()
	clear(t.open)
	t.mu.Unlock()
	kept := map[string]bool{}
	for _, id := range keep {
		kept[id] = true
	}
	pages := s3.NewListMultipartUploadsPaginator(t.client.Client, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(t.bucket),
		Prefix: aws.String(t.prefix + "part-"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("output %s: list uploads: %w", t.name, err)
		}
		for _, u := range page.Uploads {
			key, id := aws.ToString(u.Key), aws.ToString(u.UploadId)
			if !t.isPartKey(key) || kept[id] {
				continue
			}
			_, err := t.client.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(t.bucket), Key: aws.String(key), UploadId: aws.String(id),
			})
			if err != nil && !isNoSuchUpload(err) {
				return fmt.Errorf("output %s: abort upload %s of %s: %w", t.name, id, key, err)
			}
		}
	}
	return nil
}
