package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Temporary is a write that has not become an object: a crashed writer's
// temporary file or multipart upload.
type Temporary struct {
	Name    string // the store-relative name it was to get, or the file's path
	Upload  string // S3 multipart upload id
	Size    int64
	ModTime time.Time
}

// Temporaries is implemented by stores whose interrupted writes leave
// something outside their object namespace, for a garbage collector to find
// and remove. Callers find it with As.
type Temporaries interface {
	Store
	Temporaries(ctx context.Context) ([]Temporary, error)
	RemoveTemporary(ctx context.Context, t Temporary) error
}

var (
	_ Temporaries = (*DirStore)(nil)
	_ Temporaries = (*S3Store)(nil)
)

// dirTempPrefix starts the names of the dir store's temporary files.
const dirTempPrefix = ReservedPrefix + "tmp-"

// Temporaries finds the temporary files that writes interrupted by a crash
// left behind; they sit beside the objects they were to become.
func (s *DirStore) Temporaries(ctx context.Context) ([]Temporary, error) {
	if s.closed.Load() {
		return nil, s.fail("list temporaries", "", ErrClosed)
	}
	var out []Temporary
	err := filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), dirTempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // published or removed meanwhile
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, path)
		if err != nil {
			return err
		}
		out = append(out, Temporary{Name: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, s.fail("list temporaries", "", err)
	}
	return out, nil
}

// RemoveTemporary deletes one temporary file found by Temporaries. The name
// is checked again so that nothing but a temporary file below the root can
// be removed.
func (s *DirStore) RemoveTemporary(ctx context.Context, t Temporary) error {
	if err := ctx.Err(); err != nil {
		return s.fail("remove temporary", t.Name, err)
	}
	base := t.Name[strings.LastIndexByte(t.Name, '/')+1:]
	dir := strings.TrimSuffix(strings.TrimSuffix(t.Name, base), "/")
	if !strings.HasPrefix(base, dirTempPrefix) || (dir != "" && ValidateName(dir) != nil) {
		return s.fail("remove temporary", t.Name, fmt.Errorf("%w: not a temporary file", ErrInvalidName))
	}
	if err := os.Remove(filepath.Join(s.root, filepath.FromSlash(t.Name))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("remove temporary", t.Name, err)
	}
	return nil
}

// Temporaries lists the multipart uploads under the store's prefix that
// were never completed or aborted (a crashed writer's), with their parts'
// total size.
func (s *S3Store) Temporaries(ctx context.Context) ([]Temporary, error) {
	if s.closed.Load() {
		return nil, &Error{Op: "list uploads", Location: s.location, Err: ErrClosed}
	}
	var out []Temporary
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, s.fail(ctx, "list uploads", "", err)
		}
		for _, u := range page.Uploads {
			name, ok := strings.CutPrefix(aws.ToString(u.Key), s.prefix)
			if !ok {
				continue
			}
			t := Temporary{Name: name, Upload: aws.ToString(u.UploadId), ModTime: aws.ToTime(u.Initiated)}
			parts := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{Bucket: aws.String(s.bucket), Key: u.Key, UploadId: u.UploadId})
			for parts.HasMorePages() {
				pp, err := parts.NextPage(ctx)
				if err != nil {
					return nil, s.fail(ctx, "list parts", name, err)
				}
				for _, p := range pp.Parts {
					t.Size += aws.ToInt64(p.Size)
				}
			}
			out = append(out, t)
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// RemoveTemporary aborts a multipart upload, freeing its parts. The key is
// the listed one, which need not be a valid object name: an upload that
// could never have completed into an object is still billed.
func (s *S3Store) RemoveTemporary(ctx context.Context, t Temporary) error {
	if s.closed.Load() {
		return &Error{Op: "abort upload", Location: s.location, Name: t.Name, Err: ErrClosed}
	}
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(t.Name)), UploadId: aws.String(t.Upload),
	})
	if err != nil {
		return s.fail(ctx, "abort upload", t.Name, err)
	}
	return nil
}
