package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// S3Client is an SDK client configured from S3Options exactly as S3Store
// configures its own, for code that needs S3 calls the Store interface does
// not offer, such as a pipeline output that keeps multipart uploads open
// across a checkpoint.
type S3Client struct {
	// Client is the configured SDK client.
	Client *s3.Client
	// Endpoint is the normalized endpoint URL ("http://host:port"), or ""
	// for AWS; it is safe to print.
	Endpoint string

	transport *http.Transport
}

// Close drops the client's idle connections (and the goroutines serving
// them). The client may still be used; it then dials again.
func (c *S3Client) Close() { c.transport.CloseIdleConnections() }

// NewS3Client builds an SDK client from opts: the endpoint (a scheme is
// added per DisableSSL), region (the AWS configuration's, else us-east-1),
// path-style addressing, static keys or else the AWS credential chain, and
// the SDK's standard retryer bounded by MaxAttempts and MaxBackoff. The SDK
// never logs, and redirects are returned rather than followed, so a signed
// request never goes elsewhere. It makes no request.
//
// Errors wrap ErrConfig and never contain the secret key.
func NewS3Client(ctx context.Context, opts S3Options) (*S3Client, error) {
	endpoint, err := NormalizeEndpoint(opts.Endpoint, opts.DisableSSL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	maxAttempts := cmp.Or(opts.MaxAttempts, defaultMaxAttempts)
	maxBackoff := cmp.Or(opts.MaxBackoff, defaultMaxBackoff)
	concurrency := cmp.Or(opts.Concurrency, defaultConcurrency)
	switch {
	case maxAttempts < 1 || maxBackoff < 0 || concurrency < 1:
		return nil, fmt.Errorf("%w: max attempts, max backoff and concurrency must be positive", ErrConfig)
	case (opts.AccessKeyID == "") != (opts.SecretAccessKey == ""):
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.New("static credentials need both an access key id and a secret access key"))
	}

	loadOpts := []func(*config.LoadOptions) error{
		// A library does not write to stderr: failures come back as errors.
		config.WithLogger(logging.Nop{}),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = maxBackoff
				// Asked first: a plain-HTTP endpoint answers every
				// HTTPS attempt the same way.
				o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(notRetryable)}, o.Retryables...)
			})
		}),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: load AWS configuration: %w", ErrConfig, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if opts.AccessKeyID == "" {
		// Without credentials every request fails the same way: say so
		// now, as a configuration error, not as an outage to retry.
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("%w: no S3 credentials: none were given (state.s3_config access_key_id and secret_access_key, "+
				"ARKFLOW_STATE_S3_ACCESS_KEY_ID and ARKFLOW_STATE_S3_SECRET_ACCESS_KEY), and the AWS chain found none "+
				"(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE in ~/.aws/credentials and ~/.aws/config, "+
				"web identity, the container or EC2 instance role): %w", ErrConfig, err)
		}
	}
	c := &S3Client{Endpoint: endpoint}
	// The client owns its transport so that Close can drop idle connections.
	// It starts as a copy of the one the AWS configuration built, which
	// carries settings such as AWS_CA_BUNDLE.
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		c.transport = bc.GetTransport()
	} else {
		c.transport = awshttp.NewBuildableClient().GetTransport()
	}
	c.transport.MaxIdleConnsPerHost = max(c.transport.MaxIdleConnsPerHost, 2*concurrency)
	cfg.HTTPClient = &http.Client{
		Transport:     c.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.Client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = opts.PathStyle
		o.EndpointOptions.DisableHTTPS = opts.DisableSSL
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return c, nil
}

// notRetryable says no to retrying what no retry can change: an HTTPS
// request to an endpoint that speaks plain HTTP. Anything else is left to
// the standard rules.
func notRetryable(err error) aws.Ternary {
	if isHTTPToHTTPS(err) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// isHTTPToHTTPS reports whether err is net/http's answer to an HTTPS
// request that got a plain-HTTP response.
func isHTTPToHTTPS(err error) bool {
	return err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
