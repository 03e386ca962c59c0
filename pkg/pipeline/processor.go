package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/arkstate/arkstate/pkg/state"
)

// Processor transforms records. An instance belongs to one subtask; keyed
// processors keep their state in that subtask's backend.
type Processor interface {
	// Open prepares the instance; keyed processors register their state on
	// st, which is nil for stateless ones.
	Open(st *state.Backend) error
	// Process handles one record and emits zero or more.
	Process(rec Record, emit func(Record) error) error
}

// ProcessorSpec describes a processor in a pipeline: how to make instances
// and, for keyed processors, the key records are routed and stored by.
type ProcessorSpec struct {
	// Name is the processor's type, e.g. "count"; with its position it
	// forms the operator id checkpoints store its state under.
	Name string
	// Key extracts the routing and state key; nil for stateless processors.
	Key func(Record) (string, error)
	// New makes an instance for one subtask.
	New func() Processor
}

// Keyed reports whether the processor keeps keyed state.
func (s ProcessorSpec) Keyed() bool { return s.Key != nil }

// FieldKey returns a Key function that reads a field.
func FieldKey(name string) func(Record) (string, error) {
	return func(r Record) (string, error) { return field(r, name) }
}

// Split splits a text field by a regular expression and emits one record
// {As: token} per non-empty token.
func Split(fieldName, pattern string, lowercase bool, as string) (ProcessorSpec, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return ProcessorSpec{}, fmt.Errorf("split: pattern %q: %w", pattern, err)
	}
	return ProcessorSpec{Name: "split", New: func() Processor {
		return &splitProc{field: fieldName, re: re, lower: lowercase, as: as}
	}}, nil
}

type splitProc struct {
	field string
	re    *regexp.Regexp
	lower bool
	as    string
}

func (p *splitProc) Open(*state.Backend) error { return nil }

func (p *splitProc) Process(rec Record, emit func(Record) error) error {
	text, err := field(rec, p.field)
	if err != nil {
		return fmt.Errorf("split: %w", err)
	}
	if p.lower {
		text = strings.ToLower(text)
	}
	for _, tok := range p.re.Split(text, -1) {
		if tok == "" {
			continue
		}
		if err := emit(Record{p.as: tok}); err != nil {
			return err
		}
	}
	return nil
}

// Count counts records per key and emits {"key": key, "count": n} on every
// update.
func Count(key string) ProcessorSpec {
	return ProcessorSpec{Name: "count", Key: FieldKey(key), New: func() Processor { return &countProc{key: key} }}
}

type countProc struct {
	key    string
	counts *state.Value[uint64]
}

func (p *countProc) Open(st *state.Backend) error {
	var err error
	p.counts, err = state.NewValue(st, state.Descriptor[uint64]{Name: "count"})
	return err
}

func (p *countProc) Process(rec Record, emit func(Record) error) error {
	k, err := field(rec, p.key)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	n, _, err := p.counts.Get(k)
	if err != nil {
		return err
	}
	n++
	if err := p.counts.Put(k, n); err != nil {
		return err
	}
	return emit(Record{"key": k, "count": n})
}

// Dedupe emits a record only the first time its key is seen within ttl
// (0: ever).
func Dedupe(key string, ttl time.Duration) ProcessorSpec {
	return ProcessorSpec{Name: "dedupe", Key: FieldKey(key), New: func() Processor { return &dedupeProc{key: key, ttl: ttl} }}
}

type dedupeProc struct {
	key  string
	ttl  time.Duration
	seen *state.Value[bool]
}

func (p *dedupeProc) Open(st *state.Backend) error {
	var err error
	p.seen, err = state.NewValue(st, state.Descriptor[bool]{Name: "seen", TTL: p.ttl})
	return err
}

func (p *dedupeProc) Process(rec Record, emit func(Record) error) error {
	k, err := field(rec, p.key)
	if err != nil {
		return fmt.Errorf("dedupe: %w", err)
	}
	_, seen, err := p.seen.Get(k)
	if err != nil || seen {
		return err
	}
	if err := p.seen.Put(k, true); err != nil {
		return err
	}
	return emit(rec)
}

// Filter keeps the records for which the expression (expr-lang syntax, the
// record's fields as variables) is true.
func Filter(expression string) (ProcessorSpec, error) {
	prog, err := expr.Compile(expression, expr.AsBool(), expr.AllowUndefinedVariables())
	if err != nil {
		return ProcessorSpec{}, fmt.Errorf("filter: %w", err)
	}
	return ProcessorSpec{Name: "filter", New: func() Processor { return &exprProc{prog: prog, filter: true} }}, nil
}

// Map evaluates an expression per record: its value is stored in field as,
// or, when as is empty, must be an object that replaces the record.
func Map(expression, as string) (ProcessorSpec, error) {
	prog, err := expr.Compile(expression, expr.AllowUndefinedVariables())
	if err != nil {
		return ProcessorSpec{}, fmt.Errorf("map: %w", err)
	}
	return ProcessorSpec{Name: "map", New: func() Processor { return &exprProc{prog: prog, as: as} }}, nil
}

type exprProc struct {
	prog   *vm.Program
	filter bool
	as     string
	vm     vm.VM
}

func (p *exprProc) Open(*state.Backend) error { return nil }

func (p *exprProc) Process(rec Record, emit func(Record) error) error {
	out, err := p.vm.Run(p.prog, map[string]any(rec))
	if err != nil {
		return fmt.Errorf("expression: %w", err)
	}
	switch {
	case p.filter:
		if keep, _ := out.(bool); keep {
			return emit(rec)
		}
		return nil
	case p.as != "":
		next := make(Record, len(rec)+1)
		for k, v := range rec {
			next[k] = v
		}
		next[p.as] = out
		return emit(next)
	}
	m, ok := out.(map[string]any)
	if !ok {
		return fmt.Errorf("map: expression returned %T, not an object (set `as` to store it in a field)", out)
	}
	return emit(m)
}
