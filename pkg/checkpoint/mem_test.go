package checkpoint_test

import (
	"testing"

	"github.com/arkstate/arkstate/pkg/checkpoint"
	"github.com/arkstate/arkstate/pkg/checkpoint/storetest"
)

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) checkpoint.Store {
		s := checkpoint.NewMem(t.Name())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestMemStore_Location(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		if got := checkpoint.NewMem("unit").Location(); got != "mem://unit" {
			t.Fatalf("Location() = %q; want mem://unit", got)
		}
	})
}
