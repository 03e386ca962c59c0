package state

import "fmt"

// Reducing is keyed state that folds every added value into one, with a
// reduce function such as sum or max.
type Reducing[T any] struct {
	v      *Value[T]
	reduce func(acc, v T) T
}

// NewReducing registers reducing state on b; reduce combines the current
// value with a new one.
func NewReducing[T any](b *Backend, d Descriptor[T], reduce func(acc, v T) T) (*Reducing[T], error) {
	c := d.codec()
	st, err := b.register(d.Name, KindReducing, c.Name(), d.TTL)
	if err != nil {
		return nil, err
	}
	return &Reducing[T]{v: &Value[T]{b: b, st: st, codec: c}, reduce: reduce}, nil
}

// Get returns key's folded value.
func (r *Reducing[T]) Get(key string) (T, bool, error) { return r.v.Get(key) }

// Add folds v into key's value.
func (r *Reducing[T]) Add(key string, v T) error {
	cur, ok, err := r.v.Get(key)
	if err != nil {
		return err
	}
	if ok {
		v = r.reduce(cur, v)
	}
	return r.v.Put(key, v)
}

// Clear removes key's value.
func (r *Reducing[T]) Clear(key string) error { return r.v.Delete(key) }

// AggregateFunc turns inputs of type IN into a result of type OUT through an
// accumulator of type ACC, like Flink's AggregateFunction.
type AggregateFunc[IN, ACC, OUT any] struct {
	Create func() ACC
	Add    func(acc ACC, in IN) ACC
	Result func(acc ACC) OUT
}

// Aggregating is keyed state that keeps an accumulator per key.
type Aggregating[IN, ACC, OUT any] struct {
	acc *Value[ACC]
	fn  AggregateFunc[IN, ACC, OUT]
}

// NewAggregating registers aggregating state on b; d describes the
// accumulator.
func NewAggregating[IN, ACC, OUT any](b *Backend, d Descriptor[ACC], fn AggregateFunc[IN, ACC, OUT]) (*Aggregating[IN, ACC, OUT], error) {
	if fn.Create == nil || fn.Add == nil || fn.Result == nil {
		return nil, fmt.Errorf("state %q: AggregateFunc needs Create, Add and Result", d.Name)
	}
	c := d.codec()
	st, err := b.register(d.Name, KindAggregating, c.Name(), d.TTL)
	if err != nil {
		return nil, err
	}
	return &Aggregating[IN, ACC, OUT]{acc: &Value[ACC]{b: b, st: st, codec: c}, fn: fn}, nil
}

// Add folds in into key's accumulator.
func (a *Aggregating[IN, ACC, OUT]) Add(key string, in IN) error {
	acc, ok, err := a.acc.Get(key)
	if err != nil {
		return err
	}
	if !ok {
		acc = a.fn.Create()
	}
	return a.acc.Put(key, a.fn.Add(acc, in))
}

// Get returns the result for key's accumulator.
func (a *Aggregating[IN, ACC, OUT]) Get(key string) (OUT, bool, error) {
	acc, ok, err := a.acc.Get(key)
	if err != nil || !ok {
		var zero OUT
		return zero, false, err
	}
	return a.fn.Result(acc), true, nil
}

// Clear removes key's accumulator.
func (a *Aggregating[IN, ACC, OUT]) Clear(key string) error { return a.acc.Delete(key) }
