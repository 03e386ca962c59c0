package store

// Wrapper is a Store that adds behaviour to another, such as a test's fault
// injector; Unwrap returns the store it wraps.
type Wrapper interface {
	Unwrap() Store
}

// As finds the first store in s's chain of wrappers (s itself first) that
// implements T, an optional interface such as LocalReads. Callers ask for
// what a store can do rather than for its concrete type, so a wrapped store
// keeps its abilities.
func As[T any](s Store) (T, bool) {
	for s != nil {
		if t, ok := s.(T); ok {
			return t, true
		}
		w, ok := s.(Wrapper)
		if !ok {
			break
		}
		s = w.Unwrap()
	}
	var zero T
	return zero, false
}

// LocalReads is implemented by stores whose reads are served from this
// machine (a directory, memory): checking an object in place and then
// streaming the same open object costs no second transfer, where a remote
// store is better read once into a spool file.
type LocalReads interface {
	Store
	ReadsAreLocal()
}
