package checkpoint_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/checkpointtest"
	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

// Two writers racing on one S3 store: for every checkpoint id exactly one
// commits, and no manifest ever names a segment that is not there.
func TestRepo_ConcurrentWritersS3(t *testing.T) {
	ctx := context.Background()
	srv := s3Server.Get(t)
	bucket := srv.NewBucket(t)
	const ids = 6
	var wins [2][]uint64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := storetest.NewS3(t, bucket, "race", storetest.S3Options(srv))
			j := checkpointtest.NewJob(t, s)
			for id := uint64(1); id <= ids; id++ {
				j.Apply(t, w*1000, w*1000+200+int(id)*10)
				bld, err := j.Repo.NewCheckpoint(ctx, id, 0, checkpoint.BuilderOptions{})
				if err != nil {
					errs <- err
					return
				}
				release := j.Snapshot(t, bld, "count")
				m, err := bld.Commit(ctx)
				release(err == nil)
				switch {
				case errors.Is(err, checkpoint.ErrCheckpointExists):
				case err != nil:
					errs <- err
					return
				default:
					wins[w] = append(wins[w], m.CheckpointID)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(wins[0]) + len(wins[1]); n != ids {
		t.Fatalf("writers committed %v and %v: %d checkpoints for %d ids", wins[0], wins[1], n, ids)
	}
	s := storetest.NewS3(t, bucket, "race", storetest.S3Options(srv))
	r, err := checkpoint.OpenRepo(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.IDs(ctx)
	if err != nil || len(got) != ids {
		t.Fatalf("store lists %v, %v", got, err)
	}
	for _, id := range got {
		m, err := r.Manifest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range m.Operators {
			for _, rs := range op.Ranges {
				for _, l := range rs.Layers {
					info, err := s.Stat(ctx, format.SegmentPath(l.Hash))
					if err != nil || info.Size != l.Size {
						t.Fatalf("checkpoint %d names segment %s: %v (size %d, want %d)", id, l.Hash, err, info.Size, l.Size)
					}
				}
			}
		}
	}
}
