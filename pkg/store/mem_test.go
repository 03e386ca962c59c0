package store_test

import (
	"testing"

	"github.com/arkstate/arkstate/pkg/store"
	"github.com/arkstate/arkstate/pkg/store/storetest"
)

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := store.NewMem(t.Name())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestMemStore_Location(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		if got := store.NewMem("unit").Location(); got != "mem://unit" {
			t.Fatalf("Location() = %q; want mem://unit", got)
		}
	})
}
