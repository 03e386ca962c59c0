package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 limits and the defaults chosen within them.
const (
	// MinPartSize is S3's smallest allowed multipart part (all but the last).
	MinPartSize = 5 << 20
	// maxParts is S3's largest part count per upload.
	maxParts = 10000

	defaultPartSize    = 8 << 20
	defaultThreshold   = 16 << 20
	defaultConcurrency = 4
	defaultMaxAttempts = 5
	defaultMaxBackoff  = 20 * time.Second
)

// S3Options configures an S3 store beyond its bucket and prefix. The zero
// value talks to AWS with credentials, region and endpoint from the standard
// AWS configuration chain (environment, shared files, instance roles).
type S3Options struct {
	// Endpoint is an S3-compatible server, "http://127.0.0.1:7070" or
	// "host:port" (the scheme then follows DisableSSL). Empty means AWS.
	Endpoint string
	// Region signs requests; empty takes it from the AWS configuration, and
	// "us-east-1" when that has none.
	Region string
	// PathStyle addresses buckets as endpoint/bucket rather than
	// bucket.endpoint, as most S3-compatible servers need.
	PathStyle bool
	// DisableSSL selects plain HTTP for an Endpoint without a scheme.
	DisableSSL bool

	// AccessKeyID and SecretAccessKey, when set, replace the credential
	// chain; SessionToken goes with temporary keys. They are never included
	// in errors, Location or String.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// PartSize is the multipart part and ranged-download chunk size
	// (default 8 MiB, at least MinPartSize). It grows when an object would
	// need more than 10000 parts.
	PartSize int64
	// MultipartThreshold is the size from which Put uses a multipart upload
	// and Get downloads ranges in parallel (default 16 MiB).
	MultipartThreshold int64
	// Concurrency is the number of parts or ranges in flight per Put or Get
	// (default 4); memory use is about Concurrency × PartSize per call.
	Concurrency int

	// MaxAttempts bounds the attempts per request, the first included
	// (default 5); throttling (503 SlowDown, 429), 5xx and connection errors
	// are retried with exponential backoff and jitter up to MaxBackoff
	// (default 20s).
	MaxAttempts int
	MaxBackoff  time.Duration
}

// String describes the options without the secret key or session token, so
// that printing them with %v cannot leak credentials.
func (o S3Options) String() string {
	creds := "default chain"
	if o.AccessKeyID != "" || o.SecretAccessKey != "" {
		creds = "static keys"
	}
	return fmt.Sprintf("endpoint=%q region=%q path_style=%t disable_ssl=%t credentials=%s",
		o.Endpoint, o.Region, o.PathStyle, o.DisableSSL, creds)
}

// GoString is String, for %#v.
func (o S3Options) GoString() string { return o.String() }

// S3Store keeps objects in an S3 bucket under a key prefix: object "a/b" of
// store s3://bucket/pre is the key "pre/a/b".
//
// Put sends objects below MultipartThreshold in one PutObject and larger ones
// as a multipart upload with Concurrency parts in flight, aborted on failure.
// Bodies are held in memory per part so that the SDK can sign and resend them
// on retry. PutIf maps to If-None-Match: * and If-Match on PutObject or
// CompleteMultipartUpload. Get fetches large objects as parallel ranged GETs
// pinned to the first response's ETag; Open reads with ranged GETs.
type S3Store struct {
	client    *s3.Client
	transport *http.Transport
	bucket    string
	prefix    string // "" or ending in "/"
	endpoint  string // for messages; "" for AWS
	location  string

	partSize    int64
	threshold   int64
	concurrency int
	maxAttempts int

	closed atomic.Bool
}

var _ Store = (*S3Store)(nil)

// NewS3 opens the store at s3://bucket/prefix and checks, with one listing
// request, that the bucket exists and the credentials are accepted, so that a wrong address fails here with a clear ErrConfig error
// rather than later as a missing object.
func NewS3(ctx context.Context, bucket, prefix string, opts S3Options) (*S3Store, error) {
	prefix = strings.Trim(prefix, "/")
	loc := "s3://" + bucket
	if prefix != "" {
		loc += "/" + prefix
	}
	configErr := func(err error) error {
		return &Error{Op: "open store", Location: loc, Kind: ErrConfig, Err: err}
	}
	if err := checkBucketName(bucket); err != nil {
		return nil, configErr(err)
	}
	if prefix != "" {
		if err := PathProblem(prefix); err != nil {
			return nil, configErr(fmt.Errorf("prefix %q: %s", prefix, err))
		}
		prefix += "/"
	}
	// The client checks the endpoint, the credentials and the retry
	// options; the store checks only what is its own.
	client, err := NewS3Client(ctx, opts)
	if err != nil {
		return nil, configErr(err)
	}
	if client.Endpoint != "" {
		loc += " (endpoint " + client.Endpoint + ")"
	}
	s := &S3Store{
		bucket:      bucket,
		prefix:      prefix,
		endpoint:    client.Endpoint,
		location:    loc,
		partSize:    cmp.Or(opts.PartSize, defaultPartSize),
		threshold:   cmp.Or(opts.MultipartThreshold, defaultThreshold),
		concurrency: cmp.Or(opts.Concurrency, defaultConcurrency),
		maxAttempts: cmp.Or(opts.MaxAttempts, defaultMaxAttempts),
		client:      client.Client,
		transport:   client.transport,
	}
	if s.partSize < MinPartSize {
		client.Close()
		return nil, configErr(fmt.Errorf("part size %d is below the S3 minimum %d", s.partSize, MinPartSize))
	}
	if s.threshold < 1 {
		client.Close()
		return nil, configErr(errors.New("multipart threshold must be positive"))
	}

	// A one-key listing rather than HeadBucket: its error document names
	// the problem (NoSuchBucket, InvalidAccessKeyId, SignatureDoesNotMatch),
	// where a HEAD response has only a status. Listing is a permission the
	// store needs anyway.
	if _, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1),
	}); err != nil {
		s.transport.CloseIdleConnections()
		return nil, s.fail(ctx, "open store", "", err)
	}
	return s, nil
}

// checkBucketName applies the S3 bucket naming rules loosely: enough to
// reject an address that cannot be a bucket, without refusing legacy names.
func checkBucketName(bucket string) error {
	if len(bucket) < 3 || len(bucket) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", bucket)
	}
	for _, r := range bucket {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("bucket name %q has character %q", bucket, r)
		}
	}
	return nil
}

// NormalizeEndpoint returns endpoint as a URL with a scheme (https, or http
// with disableSSL, for an endpoint given as host:port) and no trailing
// slash, or "" for AWS. It refuses, with an *EndpointError, an endpoint that
// is not http(s)://host[:port] or that carries credentials, without
// repeating them. It is the one place an endpoint's scheme is worked out:
// stores, clients and the configuration's checks all call it.
func NormalizeEndpoint(endpoint string, disableSSL bool) (string, error) {
	if endpoint == "" {
		return "", nil
	}
	if !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if disableSSL {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		// url.Parse quotes its input, which could hold credentials.
		return "", &EndpointError{Problem: "is not a valid URL"}
	case u.User != nil:
		return "", &EndpointError{Problem: "must not contain credentials", Credentials: true}
	case u.Scheme != "http" && u.Scheme != "https":
		return "", &EndpointError{Problem: fmt.Sprintf("scheme %q is not http or https", u.Scheme)}
	case u.Host == "":
		return "", &EndpointError{Problem: "has no host"}
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// EndpointError says why an S3 endpoint is refused.
type EndpointError struct {
	// Problem completes "S3 endpoint ...", e.g. `has no host`.
	Problem string
	// Credentials is set when the endpoint carried credentials, which
	// belong in the options (or the configuration's key fields) instead.
	Credentials bool
}

func (e *EndpointError) Error() string {
	if e.Credentials {
		return "S3 endpoint " + e.Problem + ": pass the access key id and secret access key as options"
	}
	return "S3 endpoint " + e.Problem
}

// Location returns "s3://bucket/prefix", followed by the endpoint when it is
// not AWS.
func (s *S3Store) Location() string { return s.location }

// Close marks the store closed and drops its idle connections.
func (s *S3Store) Close() error {
	s.closed.Store(true)
	s.transport.CloseIdleConnections()
	return nil
}

func (s *S3Store) key(name string) string { return s.prefix + name }

func (s *S3Store) begin(ctx context.Context, op, name string) error {
	if err := ValidateName(name); err != nil {
		return &Error{Op: op, Location: s.location, Name: name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: op, Location: s.location, Name: name, Err: err}
	}
	if s.closed.Load() {
		return &Error{Op: op, Location: s.location, Name: name, Err: ErrClosed}
	}
	return nil
}

// fail translates an SDK error into an *Error: missing objects and lost
// conditions into their sentinels, a missing bucket or rejected credentials
// into ErrConfig, and everything else (connection failures, throttling and
// 5xx that outlasted the retries) into ErrUnavailable. The SDK's messages
// name the operation and status but never the credentials.
func (s *S3Store) fail(ctx context.Context, op, name string, err error) error {
	e := &Error{Op: op, Location: s.location, Name: name, Err: err}
	if ctxErr := ctx.Err(); ctxErr != nil {
		e.Err = ctxErr
		return e
	}
	var apiErr smithy.APIError
	code := ""
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	status := 0
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	where := "at AWS"
	if s.endpoint != "" {
		where = "at " + s.endpoint
	}
	switch {
	case credentialCodes[code] || status == http.StatusForbidden || status == http.StatusUnauthorized:
		e.Kind, e.Err = ErrConfig, fmt.Errorf("access to bucket %q %s denied (%s): check the credentials and their permissions",
			s.bucket, where, cmp.Or(code, strconv.Itoa(status)))
	case code == "NoSuchBucket" || (op == "open store" && status == http.StatusNotFound):
		e.Kind, e.Err = ErrConfig, fmt.Errorf("bucket %q does not exist %s", s.bucket, where)
	case code == "NoSuchKey" || code == "NotFound" || (code == "" && status == http.StatusNotFound):
		// A 404 to HEAD has no error document, hence no code.
		e.Err = ErrNotExist
	case code == "PreconditionFailed" || code == "ConditionalRequestConflict" || status == http.StatusPreconditionFailed:
		e.Err = ErrPreconditionFailed
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || status == http.StatusMovedPermanently:
		e.Kind, e.Err = ErrConfig, fmt.Errorf("bucket %q is not served %s in this region (%s): check the region and endpoint",
			s.bucket, where, cmp.Or(code, strconv.Itoa(status)))
	case code == "InvalidBucketName":
		e.Kind = ErrConfig
	case isHTTPToHTTPS(err):
		e.Kind, e.Err = ErrConfig, fmt.Errorf("endpoint %s speaks plain HTTP, and the request used HTTPS: "+
			"give the endpoint as http://HOST:PORT or set use_ssl: false (--s3-no-ssl)", cmp.Or(s.endpoint, "(default)"))
	default:
		e.Kind = ErrUnavailable
	}
	return e
}

// credentialCodes are the S3 error codes for credentials that are unknown,
// wrong, expired or not allowed. XAdminUserNotFound is versitygw's answer
// (with status 404) to an unknown access key.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"AccessDenied":          true,
	"XAdminUserNotFound":    true,
}

// Put implements Store.
func (s *S3Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := s.put(ctx, "put", name, r, size, Condition{})
	return err
}

// PutIf implements Store. The ModTime it returns is the client's clock:
// S3 reports the server's time only on later reads.
func (s *S3Store) PutIf(ctx context.Context, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error) {
	return s.put(ctx, "put-if", name, r, size, cond)
}

func (s *S3Store) put(ctx context.Context, op, name string, r io.Reader, size int64, cond Condition) (ObjectInfo, error) {
	if err := s.begin(ctx, op, name); err != nil {
		return ObjectInfo{}, err
	}
	if err := checkCondition(cond); err != nil {
		return ObjectInfo{}, &Error{Op: op, Location: s.location, Name: name, Err: err}
	}
	if size < 0 {
		return ObjectInfo{}, &Error{Op: op, Location: s.location, Name: name, Err: fmt.Errorf("negative size %d", size)}
	}
	var etag *string
	var err error
	if size < s.threshold {
		etag, err = s.putSingle(ctx, op, name, r, size, cond)
	} else {
		etag, err = s.putMultipart(ctx, op, name, r, size, cond)
	}
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			return ObjectInfo{}, err
		}
		err = s.fail(ctx, op, name, err)
		// S3 answers If-Match on a missing key with 404; for the caller the
		// condition simply did not hold.
		if cond.IfMatch != "" && errors.Is(err, ErrNotExist) {
			err = &Error{Op: op, Location: s.location, Name: name, Err: ErrPreconditionFailed}
		}
		return ObjectInfo{}, err
	}
	return ObjectInfo{Name: name, Size: size, ModTime: time.Now(), ETag: aws.ToString(etag)}, nil
}

// readerFail reports a failure of the caller's reader (short, long or
// failing), which is neither the store's fault nor a missing object.
func (s *S3Store) readerFail(ctx context.Context, op, name string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	}
	return &Error{Op: op, Location: s.location, Name: name, Err: err}
}

func condHeaders(cond Condition) (ifNoneMatch, ifMatch *string) {
	if cond.IfNoneMatch {
		ifNoneMatch = aws.String("*")
	}
	if cond.IfMatch != "" {
		ifMatch = aws.String(cond.IfMatch)
	}
	return ifNoneMatch, ifMatch
}

func (s *S3Store) putSingle(ctx context.Context, op, name string, r io.Reader, size int64, cond Condition) (*string, error) {
	// Bounded by the multipart threshold. A seekable body lets the SDK sign
	// the payload and resend it on retry.
	buf := make([]byte, size)
	if n, err := io.ReadFull(ctxReader{ctx, r}, buf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = fmt.Errorf("reader yielded %d bytes, want %d", n, size)
		}
		return nil, s.readerFail(ctx, op, name, err)
	}
	if err := checkDrained(r, size); err != nil {
		return nil, s.readerFail(ctx, op, name, err)
	}
	ifNoneMatch, ifMatch := condHeaders(cond)
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.key(name)),
		Body:          bytes.NewReader(buf),
		ContentLength: aws.Int64(size),
		IfNoneMatch:   ifNoneMatch,
		IfMatch:       ifMatch,
	})
	if err != nil {
		return nil, err
	}
	return out.ETag, nil
}

// partSizeFor grows the part size when size would need more than maxParts
// parts, in whole MiB.
func (s *S3Store) partSizeFor(size int64) int64 {
	ps := s.partSize
	if need := (size + maxParts - 1) / maxParts; need > ps {
		ps = (need + 1<<20 - 1) &^ (1<<20 - 1)
	}
	return ps
}

// putMultipart uploads r as parts of partSizeFor(size) bytes, reading them
// in order and sending up to Concurrency at once. Any failure aborts the
// upload so that no parts are left behind to be billed.
func (s *S3Store) putMultipart(ctx context.Context, op, name string, r io.Reader, size int64, cond Condition) (*string, error) {
	key := aws.String(s.key(name))
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(s.bucket),
		Key:               key,
		ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return nil, err
	}
	uploadID := created.UploadId

	parts, err := s.uploadParts(ctx, op, name, key, uploadID, r, size)
	if err == nil {
		ifNoneMatch, ifMatch := condHeaders(cond)
		var out *s3.CompleteMultipartUploadOutput
		out, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(s.bucket),
			Key:             key,
			UploadId:        uploadID,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
			IfNoneMatch:     ifNoneMatch,
			IfMatch:         ifMatch,
		})
		if err == nil {
			return out.ETag, nil
		}
	}
	// Abort even when ctx is done: the parts would otherwise stay stored.
	abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _ = s.client.AbortMultipartUpload(abortCtx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      key,
		UploadId: uploadID,
	})
	return nil, err
}

func (s *S3Store) uploadParts(ctx context.Context, op, name string, key, uploadID *string, r io.Reader, size int64) ([]s3types.CompletedPart, error) {
	partSize := s.partSizeFor(size)
	nparts := int((size + partSize - 1) / partSize)
	parts := make([]s3types.CompletedPart, nparts)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	setErr := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	// Each buffer is one part in flight or being filled; their number caps
	// both memory and concurrency.
	free := make(chan []byte, s.concurrency)
	allocated := 0
	for i := range nparts {
		var buf []byte
		select {
		case buf = <-free:
		default:
			if allocated < s.concurrency {
				allocated++
				buf = make([]byte, partSize)
				break
			}
			select {
			case buf = <-free:
			case <-ctx.Done():
			}
		}
		if buf == nil {
			break
		}
		n := min(partSize, size-int64(i)*partSize)
		if got, err := io.ReadFull(ctxReader{ctx, r}, buf[:n]); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = fmt.Errorf("reader yielded %d bytes, want %d", int64(i)*partSize+int64(got), size)
			}
			setErr(s.readerFail(ctx, op, name, err))
			break
		}
		wg.Add(1)
		go func(num int32, body []byte) {
			defer wg.Done()
			defer func() { free <- buf }()
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket:            aws.String(s.bucket),
				Key:               key,
				UploadId:          uploadID,
				PartNumber:        aws.Int32(num),
				Body:              bytes.NewReader(body),
				ContentLength:     aws.Int64(int64(len(body))),
				ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				setErr(err)
				return
			}
			parts[num-1] = s3types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32}
		}(int32(i+1), buf[:n])
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := checkDrained(r, size); err != nil {
		return nil, s.readerFail(ctx, op, name, err)
	}
	return parts, nil
}

// Stat implements Store.
func (s *S3Store) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := s.begin(ctx, "stat", name); err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
	if err != nil {
		return ObjectInfo{}, s.fail(ctx, "stat", name, err)
	}
	return ObjectInfo{
		Name:    name,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    aws.ToString(out.ETag),
	}, nil
}

// Get implements Store. Its first request asks for the first
// MultipartThreshold bytes: a smaller object arrives whole in that one
// response; for a larger one the response's Content-Range gives the size,
// and the rest is fetched as parallel ranged GETs conditional on the first
// response's ETag, so that a concurrent replacement fails the read instead of
// splicing two versions.
func (s *S3Store) Get(ctx context.Context, name string) (io.ReadCloser, ObjectInfo, error) {
	if err := s.begin(ctx, "get", name); err != nil {
		return nil, ObjectInfo{}, err
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.key(name)),
		Range:  aws.String(fmt.Sprintf("bytes=0-%d", s.threshold-1)),
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil && isInvalidRange(err) {
		// Only an empty object has no byte 0 to return.
		in.Range = nil
		out, err = s.client.GetObject(ctx, in)
	}
	if err != nil {
		return nil, ObjectInfo{}, s.fail(ctx, "get", name, err)
	}
	info := ObjectInfo{
		Name:    name,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    aws.ToString(out.ETag),
	}
	if total, ok := rangeTotal(aws.ToString(out.ContentRange)); ok {
		info.Size = total
	}
	first := aws.ToInt64(out.ContentLength)
	if first >= info.Size {
		return &s3Body{s: s, ctx: ctx, name: name, body: out.Body}, info, nil
	}
	return s.newRangeReader(ctx, name, info, out.Body, first), info, nil
}

func isInvalidRange(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return true
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

// rangeTotal parses the complete length from a Content-Range such as
// "bytes 0-99/1234".
func rangeTotal(contentRange string) (int64, bool) {
	_, total, ok := strings.Cut(contentRange, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}

// s3Body wraps a response body so that read failures carry the store's
// context like every other error.
type s3Body struct {
	s    *S3Store
	ctx  context.Context
	name string
	body io.ReadCloser
}

func (b *s3Body) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = b.s.fail(b.ctx, "get", b.name, err)
	}
	return n, err
}

func (b *s3Body) Close() error { return b.body.Close() }

// readRange fills p with the bytes at off of the object version etag. A
// response body that breaks off is fetched again: the SDK retries requests
// but not the reading of bodies it has handed over.
func (s *S3Store) readRange(ctx context.Context, key, etag string, off int64, p []byte) error {
	for attempt := 1; ; attempt++ {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket:  aws.String(s.bucket),
			Key:     aws.String(key),
			Range:   aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)),
			IfMatch: aws.String(etag),
		})
		if err != nil {
			return err
		}
		_, err = io.ReadFull(out.Body, p)
		out.Body.Close()
		if err == nil || ctx.Err() != nil || attempt >= s.maxAttempts {
			return err
		}
	}
}

// rangeReader streams an object whose first bytes came with the first
// response while a producer fetches the remaining chunks in order, at most
// Concurrency ahead of the reader.
type rangeReader struct {
	s      *S3Store
	ctx    context.Context
	cancel context.CancelFunc
	name   string

	first   io.ReadCloser // the first response's body, read before any chunk
	pending chan *rangeChunk
	cur     []byte
	err     error
	wg      sync.WaitGroup
}

type rangeChunk struct {
	buf  []byte
	done chan struct{}
	err  error
}

func (s *S3Store) newRangeReader(ctx context.Context, name string, info ObjectInfo, first io.ReadCloser, start int64) *rangeReader {
	ctx, cancel := context.WithCancel(ctx)
	rr := &rangeReader{
		s: s, ctx: ctx, cancel: cancel, name: name, first: first,
		pending: make(chan *rangeChunk, s.concurrency),
	}
	key := s.key(name)
	rr.wg.Add(1)
	go func() {
		defer rr.wg.Done()
		defer close(rr.pending)
		for off := start; off < info.Size; off += s.partSize {
			c := &rangeChunk{buf: make([]byte, min(s.partSize, info.Size-off)), done: make(chan struct{})}
			select {
			case rr.pending <- c:
			case <-ctx.Done():
				return
			}
			rr.wg.Add(1)
			go func(off int64) {
				defer rr.wg.Done()
				defer close(c.done)
				c.err = s.readRange(ctx, key, info.ETag, off, c.buf)
			}(off)
		}
	}()
	return rr
}

func (rr *rangeReader) Read(p []byte) (int, error) {
	if rr.err != nil {
		return 0, rr.err
	}
	if rr.first != nil {
		n, err := rr.first.Read(p)
		if err == io.EOF {
			rr.first.Close()
			rr.first = nil
			err = nil
		}
		if err != nil {
			rr.err = rr.s.fail(rr.ctx, "get", rr.name, err)
		}
		if n > 0 || err != nil {
			return n, rr.err
		}
	}
	for len(rr.cur) == 0 {
		c, ok := <-rr.pending
		if !ok {
			if err := rr.ctx.Err(); err != nil {
				rr.err = rr.s.fail(rr.ctx, "get", rr.name, err)
				return 0, rr.err
			}
			return 0, io.EOF
		}
		<-c.done
		if c.err != nil {
			rr.err = rr.s.fail(rr.ctx, "get", rr.name, c.err)
			return 0, rr.err
		}
		rr.cur = c.buf
	}
	n := copy(p, rr.cur)
	rr.cur = rr.cur[n:]
	return n, nil
}

// Close stops the prefetching and waits for it, so that no request outlives
// the reader.
func (rr *rangeReader) Close() error {
	rr.cancel()
	if rr.first != nil {
		rr.first.Close()
		rr.first = nil
	}
	rr.wg.Wait()
	if rr.err == nil {
		rr.err = errors.New("read after close")
	}
	return nil
}

// Open implements Store.
func (s *S3Store) Open(ctx context.Context, name string) (Object, error) {
	info, err := s.Stat(ctx, name)
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Op = "open"
		}
		return nil, err
	}
	return &s3Object{s: s, ctx: ctx, name: name, info: info}, nil
}

// s3Object reads one object version with ranged GETs conditional on its
// ETag.
type s3Object struct {
	s      *S3Store
	ctx    context.Context
	name   string
	info   ObjectInfo
	closed atomic.Bool
}

func (o *s3Object) Size() int64 { return o.info.Size }

func (o *s3Object) Close() error {
	o.closed.Store(true)
	return nil
}

func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case o.closed.Load():
		return 0, &Error{Op: "read", Location: o.s.location, Name: o.name, Err: ErrClosed}
	case off < 0:
		return 0, &Error{Op: "read", Location: o.s.location, Name: o.name, Err: fmt.Errorf("negative offset %d", off)}
	case off >= o.info.Size:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	n := int(min(int64(len(p)), o.info.Size-off))
	if err := o.s.readRange(o.ctx, o.s.key(o.name), o.info.ETag, off, p[:n]); err != nil {
		err = o.s.fail(o.ctx, "read", o.name, err)
		if errors.Is(err, ErrPreconditionFailed) || errors.Is(err, ErrNotExist) {
			err = &Error{Op: "read", Location: o.s.location, Name: o.name,
				Err: fmt.Errorf("object replaced or deleted since it was opened: %w", ErrPreconditionFailed)}
		}
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, name string) error {
	if err := s.begin(ctx, "delete", name); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
	if err != nil {
		err = s.fail(ctx, "delete", name, err)
		if errors.Is(err, ErrNotExist) {
			return nil // some S3-compatible servers answer 404 for a missing key
		}
		return err
	}
	return nil
}

// List implements Store. S3 lists keys in UTF-8 binary order, which is the
// lexical byte order of names. Keys under the prefix that are not valid names
// (written by other tools) are skipped.
func (s *S3Store) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := ValidatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, &Error{Op: "list", Location: s.location, Name: prefix, Err: err})
			return
		}
		if s.closed.Load() {
			yield(ObjectInfo{}, &Error{Op: "list", Location: s.location, Name: prefix, Err: ErrClosed})
			return
		}
		pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.prefix + prefix),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(ObjectInfo{}, s.fail(ctx, "list", prefix, err))
				return
			}
			for _, obj := range page.Contents {
				name, ok := strings.CutPrefix(aws.ToString(obj.Key), s.prefix)
				if !ok || ValidateName(name) != nil {
					continue
				}
				info := ObjectInfo{
					Name:    name,
					Size:    aws.ToInt64(obj.Size),
					ModTime: aws.ToTime(obj.LastModified),
					ETag:    aws.ToString(obj.ETag),
				}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}
