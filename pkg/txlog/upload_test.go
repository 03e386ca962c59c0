package txlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/arkstate/arkstate/internal/s3test"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store"
)

func TestUpload(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
		defer closeLog(t, l)
		appendN(t, l, 0, 50, 1)
		other := openLog(t, dir, "other", Options{})
		appendN(t, other, 0, 3, 1) // one segment: nothing sealed
		closeLog(t, other)

		dst := store.NewMem("upload")
		defer dst.Close()
		res, err := Upload(ctx, dir, dst)
		if err != nil {
			t.Fatal(err)
		}
		segs := segmentPaths(t, dir, "main")
		if len(res.Uploaded) != len(segs)-1 || res.Present != 0 {
			t.Fatalf("uploaded %v (present %d) of %d segments", res.Uploaded, res.Present, len(segs))
		}
		for i, p := range segs[:len(segs)-1] {
			if res.Uploaded[i] != objectName(p) {
				t.Fatalf("uploaded %v", res.Uploaded)
			}
			local, _ := os.ReadFile(p)
			rc, _, err := dst.Get(ctx, objectName(p))
			if err != nil {
				t.Fatal(err)
			}
			var remote bytes.Buffer
			remote.ReadFrom(rc)
			rc.Close()
			if !bytes.Equal(local, remote.Bytes()) {
				t.Fatalf("%s differs in the store", p)
			}
		}
		if streams, _ := Streams(ctx, dst); strings.Join(streams, ",") != "main" {
			t.Fatalf("streams in the store: %v", streams)
		}
		// The copy replays without the active segment.
		recs, err := replayAll(t, dst, "main", 0, 0)
		if err != nil || len(recs) == 0 || recs[len(recs)-1].LSN != firstLSNOf(t, segs[len(segs)-1])-1 {
			t.Fatalf("replay of the copy: %d records, %v", len(recs), err)
		}

		// Again after more appends: only the newly sealed ones go.
		appendN(t, l, 50, 50, 51)
		res2, err := Upload(ctx, dir, dst)
		if err != nil {
			t.Fatal(err)
		}
		segs2 := segmentPaths(t, dir, "main")
		if res2.Present != len(res.Uploaded) || len(res2.Uploaded) != len(segs2)-1-len(res.Uploaded) {
			t.Fatalf("second upload %v, present %d", res2.Uploaded, res2.Present)
		}
	})
	t.Run("OKNoLog", func(t *testing.T) {
		dst := store.NewMem("upload")
		defer dst.Close()
		res, err := Upload(ctx, t.TempDir(), dst)
		if err != nil || len(res.Uploaded) != 0 {
			t.Fatalf("Upload of nothing = %+v, %v", res, err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		dir := t.TempDir()
		segs := writeLog(t, dir, 50)
		dst := store.NewMem("upload")
		defer dst.Close()
		if err := dst.Put(ctx, objectName(segs[0]), strings.NewReader("other"), 5); err != nil {
			t.Fatal(err)
		}
		if _, err := Upload(ctx, dir, dst); !errors.Is(err, ErrConflict) {
			t.Fatalf("Upload over a different object = %v", err)
		}
	})
	t.Run("ErrCorrupt", func(t *testing.T) {
		dir := t.TempDir()
		segs := writeLog(t, dir, 50)
		flipByte(t, segs[1], recordOffsets(t, segs[1])[1]+9)
		dst := store.NewMem("upload")
		defer dst.Close()
		res, err := Upload(ctx, dir, dst)
		var ce *format.CorruptError
		if !errors.As(err, &ce) || ce.File != objectName(segs[1]) {
			t.Fatalf("Upload of a damaged segment = %v", err)
		}
		if len(res.Uploaded) != 1 {
			t.Fatalf("uploaded %v, want only the segment before the damage", res.Uploaded)
		}
		if _, err := dst.Stat(ctx, objectName(segs[1])); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("damaged segment reached the store: %v", err)
		}
	})
}

// TestUpload_S3 uploads sealed segments to a real S3 server and reads them
// back there with Segments, Verify and Replay.
func TestUpload_S3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an S3 server")
	}
	ctx := context.Background()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv, err := s3test.Start(ctx)
	if err != nil {
		t.Fatalf("s3test: real S3 server unavailable: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	bucket := srv.NewBucket(t)
	s3, err := store.NewS3(ctx, bucket, "job", store.S3Options{
		Endpoint: srv.Endpoint, Region: s3test.Region, PathStyle: true, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()

	dir := t.TempDir()
	l := openLog(t, dir, "main", Options{SegmentSize: 1 << 10})
	appendN(t, l, 0, 60, 1)
	closeLog(t, l)
	res, err := Upload(ctx, dir, s3)
	if err != nil {
		t.Fatal(err)
	}
	local := segmentPaths(t, dir, "main")
	if len(res.Uploaded) != len(local)-1 {
		t.Fatalf("uploaded %d of %d segments", len(res.Uploaded), len(local))
	}
	segs, err := Segments(ctx, s3, "main")
	if err != nil || len(segs) != len(local)-1 {
		t.Fatalf("Segments in S3 = %d, %v", len(segs), err)
	}
	rep, err := Verify(ctx, s3, "main")
	if err != nil || len(rep.Problems) != 0 || rep.FirstLSN != 1 || rep.LastLSN != firstLSNOf(t, local[len(local)-1])-1 {
		t.Fatalf("Verify in S3 = %+v, %v", rep, err)
	}
	recs, err := replayAll(t, s3, "main", 5, 0)
	if err != nil || len(recs) != int(rep.LastLSN-4) {
		t.Fatalf("Replay in S3: %d records, %v", len(recs), err)
	}
	for _, r := range recs {
		checkMutation(t, r, int(r.LSN-1), r.LSN)
	}
	if again, err := Upload(ctx, dir, s3); err != nil || len(again.Uploaded) != 0 || again.Present != len(res.Uploaded) {
		t.Fatalf("second Upload = %+v, %v", again, err)
	}
}
