package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// MaxFileSize bounds a configuration file. Real ones are a few KiB; the
// bound keeps a wrong path (a log, a dump) from being read into memory.
const MaxFileSize = 4 << 20

const (
	// maxDepth bounds mapping and list nesting, including nesting reached
	// through aliases and merge keys, so a self-referencing anchor ends in
	// an error rather than a stack overflow.
	maxDepth = 64
	// maxSteps bounds the nodes visited while decoding, so aliases that
	// expand exponentially ("billion laughs") cannot take unbounded time.
	maxSteps = 1 << 18
)

// Load reads and parses the configuration file at path; see Parse.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return Parse(data, path)
}

// Parse decodes a configuration from data; name is the file it came from,
// used in error messages and as the base for relative paths (its
// directory). Every field is checked: YAML syntax, unknown fields, types,
// enum values, ranges, regular expressions and duplicate stream ids; the
// error is an Errors list of every problem found, each with its line,
// column and field path. Rules that involve state fields an environment
// variable may still change are left to Validate. Defaults fill every field
// the file leaves out, and an omitted state.job_id is derived from the
// stream ids (DefaultJobID).
func Parse(data []byte, name string) (*Config, error) {
	var errs errorList
	if len(data) > MaxFileSize {
		errs.add(&FieldError{File: name, Kind: ErrSyntax, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)})
		return nil, errs.result(name)
	}
	body, ferr := parseDocument(data, name)
	if ferr != nil {
		errs.add(ferr)
		return nil, errs.result(name)
	}
	c := Default()
	c.File = name
	c.BaseDir = filepath.Dir(name)
	c.origins = make(map[string]origin)
	d := &decoder{file: name, errs: &errs, origins: c.origins, bad: make(map[string]bool), misspelt: make(map[string]bool)}
	d.collectAnchors(body, 0)
	d.decodeConfig(body, c)

	if c.State.JobID == "" && !d.bad["streams"] {
		ids := make([]string, len(c.Streams))
		for i, s := range c.Streams {
			ids[i] = s.ID
		}
		if len(ids) > 0 && !slices.ContainsFunc(ids, func(id string) bool { return !validID(id) }) {
			c.State.JobID = DefaultJobID(ids)
		}
	}
	c.resolvePaths()

	for _, e := range c.check(false).errs {
		if d.isBad(e.Path) || (e.Kind == ErrRequired && d.misspelt[parentPath(e.Path)]) {
			continue
		}
		errs.add(e)
	}
	if err := errs.result(name); err != nil {
		return nil, err
	}
	return c, nil
}

// resolvePaths makes the file's relative paths relative to its directory.
func (c *Config) resolvePaths() {
	resolve := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(c.BaseDir, *p)
		}
	}
	for i := range c.Streams {
		s := &c.Streams[i]
		if s.Input.File != nil {
			resolve(&s.Input.File.Path)
		}
		if s.Output.File != nil {
			resolve(&s.Output.File.Path)
		}
	}
	resolve(&c.State.Path)
	resolve(&c.State.Txlog.Dir)
}

// yamlError is what the goccy parser's errors implement.
type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

// parseDocument parses data into the body of its single YAML document.
func parseDocument(data []byte, name string) (body ast.Node, ferr *FieldError) {
	defer func() {
		// The parser is third-party code fed untrusted input; a panic in it
		// must become an error, not take the CLI down.
		if r := recover(); r != nil {
			body, ferr = nil, &FieldError{File: name, Kind: ErrSyntax, Msg: fmt.Sprintf("YAML parser failed: %v", r)}
		}
	}()
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		fe := &FieldError{File: name, Kind: ErrSyntax, Msg: err.Error()}
		var ye yamlError
		if errors.As(err, &ye) {
			fe.Msg = ye.GetMessage()
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				fe.Line, fe.Column = tk.Position.Line, tk.Position.Column
			}
		}
		return nil, fe
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			if _, comment := doc.Body.(*ast.CommentGroupNode); !comment {
				docs = append(docs, doc)
			}
		}
	}
	switch len(docs) {
	case 0:
		return nil, &FieldError{File: name, Kind: ErrRequired, Path: "streams", Msg: "the file is empty; at least one stream is required"}
	case 1:
		return docs[0].Body, nil
	}
	line, col := position(docs[1])
	return nil, &FieldError{File: name, Line: line, Column: col, Kind: ErrSyntax,
		Msg: "a second YAML document; the configuration must be a single document"}
}

// decoder walks the YAML syntax tree into a Config. It decodes types and
// shapes only and records where each value was written; value rules live in
// validate.go so that they also apply to environment values and to Configs
// built in Go.
type decoder struct {
	file    string
	errs    *errorList
	origins map[string]origin
	// bad holds the paths whose value could not be decoded; validation
	// errors under them would only repeat the problem.
	bad map[string]bool
	// misspelt holds the paths of mappings with unknown keys: a required
	// field missing there is most likely the misspelt key, already
	// reported.
	misspelt map[string]bool
	anchors  map[string][]anchorDef
	steps    int
	depth    int
	stopped  bool
}

// anchorDef is an anchor and the offset it is defined at: an alias refers
// to the last definition of its name before it.
type anchorDef struct {
	offset int
	value  ast.Node
}

// field is one key of a mapping schema.
type field struct {
	name string
	set  func(n ast.Node, path string)
}

func (d *decoder) fail(n ast.Node, path string, kind error, format string, args ...any) {
	line, col := position(n)
	d.errs.add(&FieldError{File: d.file, Line: line, Column: col, Path: path, Kind: kind, Msg: fmt.Sprintf(format, args...)})
	d.bad[path] = true
}

// isBad reports whether path or one of its ancestors failed to decode.
func (d *decoder) isBad(path string) bool {
	for p := path; ; p = parentPath(p) {
		if d.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// record notes where the value of path is written.
func (d *decoder) record(path string, n ast.Node) {
	line, col := position(n)
	if line > 0 {
		d.origins[path] = origin{line: line, col: col}
	}
}

// position is where n starts in the file; a block mapping starts at its
// first key rather than at the token the parser gives it (its first colon).
func position(n ast.Node) (line, col int) {
	if n == nil {
		return 0, 0
	}
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		return position(m.Values[0].Key)
	}
	if doc, ok := n.(*ast.DocumentNode); ok && doc.Start != nil {
		return tokenPos(doc.Start)
	}
	tk := n.GetToken()
	if tk == nil {
		return 0, 0
	}
	return tokenPos(tk)
}

func tokenPos(tk *token.Token) (int, int) {
	if tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

func offset(n ast.Node) int {
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return 0
	}
	return n.GetToken().Position.Offset
}

// collectAnchors indexes every anchor in the document by name.
func (d *decoder) collectAnchors(n ast.Node, depth int) {
	if n == nil || depth > maxDepth*4 {
		return
	}
	switch x := n.(type) {
	case *ast.AnchorNode:
		if x.Name != nil {
			if d.anchors == nil {
				d.anchors = make(map[string][]anchorDef)
			}
			name := x.Name.GetToken().Value
			d.anchors[name] = append(d.anchors[name], anchorDef{offset: offset(x), value: x.Value})
		}
		d.collectAnchors(x.Value, depth+1)
	case *ast.TagNode:
		d.collectAnchors(x.Value, depth+1)
	case *ast.MappingNode:
		for _, v := range x.Values {
			d.collectAnchors(v.Key, depth+1)
			d.collectAnchors(v.Value, depth+1)
		}
	case *ast.MappingValueNode:
		d.collectAnchors(x.Key, depth+1)
		d.collectAnchors(x.Value, depth+1)
	case *ast.MappingKeyNode:
		d.collectAnchors(x.Value, depth+1)
	case *ast.SequenceNode:
		for _, v := range x.Values {
			d.collectAnchors(v, depth+1)
		}
	}
}

// resolved is a node with anchors, aliases and tags looked through.
type resolved struct {
	node ast.Node // nil for an empty value
	tag  string   // the last standard tag seen, e.g. "!!str"
}

// resolve looks through anchors, aliases and tags. It reports false (after
// recording an error) for an unknown alias or tag, or when the decoding
// budget is spent.
func (d *decoder) resolve(n ast.Node, path string) (resolved, bool) {
	var r resolved
	for hops := 0; ; hops++ {
		if d.stopped {
			return r, false
		}
		if d.steps++; d.steps > maxSteps {
			d.stopped = true
			d.fail(n, path, ErrSyntax, "the document expands to more than %d nodes (aliases?)", maxSteps)
			return r, false
		}
		if hops > maxDepth {
			d.fail(n, path, ErrSyntax, "aliases nested deeper than %d", maxDepth)
			return r, false
		}
		switch x := n.(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.TagNode:
			tag := ""
			if x.Start != nil {
				tag = x.Start.Value
			}
			switch tag {
			case "!!str", "!!int", "!!bool", "!!float", "!!null", "!!map", "!!seq":
				r.tag = tag
			default:
				d.fail(n, path, ErrSyntax, "unsupported tag %q", tag)
				return r, false
			}
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if x.Value != nil && x.Value.GetToken() != nil {
				name = x.Value.GetToken().Value
			}
			target, ok := d.anchor(name, offset(x))
			if !ok {
				d.fail(n, path, ErrSyntax, "alias *%s refers to no anchor before it", name)
				return r, false
			}
			n = target
		default:
			r.node = n
			return r, true
		}
	}
}

func (d *decoder) anchor(name string, at int) (ast.Node, bool) {
	defs := d.anchors[name]
	for i := len(defs) - 1; i >= 0; i-- {
		if defs[i].offset < at {
			return defs[i].value, true
		}
	}
	return nil, false
}

func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// describe names a value's type, with the value for scalars, for "expected
// X, got Y" messages.
func describe(n ast.Node) string {
	const maxShown = 40
	quote := func(s string) string {
		if len(s) > maxShown {
			s = s[:maxShown] + "…"
		}
		return strconv.Quote(s)
	}
	switch x := n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return "the string " + quote(x.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode:
		return "the integer " + x.Token.Value
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "the number " + n.GetToken().Value
	case *ast.BoolNode:
		return "the boolean " + x.Token.Value
	}
	return "a " + n.Type().YAMLName()
}

// enter and leave bound nesting depth across mappings, lists and merges.
func (d *decoder) enter(n ast.Node, path string) bool {
	if d.depth >= maxDepth {
		d.fail(n, path, ErrSyntax, "nested deeper than %d levels", maxDepth)
		return false
	}
	d.depth++
	return true
}

func (d *decoder) leave() { d.depth-- }

// entries returns the key/value pairs of a mapping, with merge keys (<<)
// expanded: explicit keys first, then merged keys not already present,
// earlier merge sources winning. A null value is an empty mapping.
func (d *decoder) entries(n ast.Node, path string) ([]*ast.MappingValueNode, bool) {
	r, ok := d.resolve(n, path)
	if !ok {
		return nil, false
	}
	if isNull(r.node) {
		return nil, true
	}
	m, isMap := r.node.(*ast.MappingNode)
	if !isMap {
		d.fail(n, path, ErrWrongType, "expected a mapping, got %s", describe(r.node))
		return nil, false
	}
	if !d.enter(n, path) {
		return nil, false
	}
	defer d.leave()
	var explicit, merged []*ast.MappingValueNode
	for _, kv := range m.Values {
		if kv == nil {
			continue
		}
		if _, isMerge := kv.Key.(*ast.MergeKeyNode); !isMerge {
			explicit = append(explicit, kv)
			continue
		}
		src, ok := d.resolve(kv.Value, path)
		if !ok {
			return nil, false
		}
		var sources []ast.Node
		if seq, isSeq := src.node.(*ast.SequenceNode); isSeq {
			sources = seq.Values
		} else {
			sources = []ast.Node{kv.Value}
		}
		for _, s := range sources {
			es, ok := d.entries(s, path)
			if !ok {
				return nil, false
			}
			merged = append(merged, es...)
		}
	}
	seen := make(map[string]bool, len(explicit))
	for _, kv := range explicit {
		seen[keyText(kv.Key)] = true
	}
	out := explicit
	for _, kv := range merged {
		if k := keyText(kv.Key); !seen[k] {
			seen[k] = true
			out = append(out, kv)
		}
	}
	return out, true
}

// keyText is a mapping key as text; non-scalar keys give "".
func keyText(k ast.MapKeyNode) string {
	switch x := ast.Node(k).(type) {
	case *ast.MappingKeyNode:
		// An explicit key ("? streams") is as good as a plain one when it
		// is a scalar.
		if inner, ok := x.Value.(ast.MapKeyNode); ok {
			if _, nested := inner.(*ast.MappingKeyNode); !nested {
				return keyText(inner)
			}
		}
		return ""
	case *ast.StringNode:
		return x.Value
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode, *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value
	}
	return ""
}

// object decodes a mapping against a schema.
func (d *decoder) object(n ast.Node, path string, fields []field) {
	es, ok := d.entries(n, path)
	if !ok {
		return
	}
	d.record(path, n)
	d.fields(es, path, fields, "")
}

// fields decodes entries against a schema, reporting unknown keys; skip is
// a key already handled (a union's "type").
func (d *decoder) fields(es []*ast.MappingValueNode, path string, fields []field, skip string) {
	for _, kv := range es {
		key := keyText(kv.Key)
		if key == "" {
			d.fail(kv.Key, path, ErrWrongType, "keys must be non-empty strings, got %s", describe(kv.Key))
			continue
		}
		if skip != "" && key == skip {
			continue
		}
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == key })
		if i < 0 {
			line, col := position(kv.Key)
			d.errs.add(&FieldError{File: d.file, Line: line, Column: col, Path: path, Kind: ErrUnknownField,
				Msg: fmt.Sprintf("unknown field %q (%s)", key, knownList(fields, skip))})
			d.misspelt[path] = true
			continue
		}
		fp := joinPath(path, key)
		d.record(fp, kv.Value)
		fields[i].set(kv.Value, fp)
	}
}

func knownList(fields []field, skip string) string {
	if len(fields) == 0 {
		return "no fields besides " + skip
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return "known: " + strings.Join(names, ", ")
}

// union decodes a mapping whose "type" key selects the schema; variant
// returns the schema of a known type. It returns the type, or "" when it is
// missing or unknown (after recording the error).
func (d *decoder) union(n ast.Node, path string, types []string, variant func(typ string) []field) string {
	es, ok := d.entries(n, path)
	if !ok {
		return ""
	}
	d.record(path, n)
	tp := joinPath(path, "type")
	i := slices.IndexFunc(es, func(kv *ast.MappingValueNode) bool { return keyText(kv.Key) == "type" })
	if i < 0 {
		d.fail(n, tp, ErrRequired, "required (one of %s)", strings.Join(types, ", "))
		d.bad[path] = true
		return ""
	}
	d.record(tp, es[i].Value)
	typ, ok := d.str(es[i].Value, tp)
	if !ok {
		d.bad[path] = true
		return ""
	}
	if !slices.Contains(types, typ) {
		d.fail(es[i].Value, tp, ErrBadValue, "unknown type %q (known: %s)", typ, strings.Join(types, ", "))
		d.bad[path] = true
		return ""
	}
	d.fields(es, path, variant(typ), "type")
	return typ
}

// list returns a list's items; a null value is an empty list.
func (d *decoder) list(n ast.Node, path string) ([]ast.Node, bool) {
	r, ok := d.resolve(n, path)
	if !ok {
		return nil, false
	}
	if isNull(r.node) {
		return nil, true
	}
	seq, isSeq := r.node.(*ast.SequenceNode)
	if !isSeq {
		d.fail(n, path, ErrWrongType, "expected a list, got %s", describe(r.node))
		return nil, false
	}
	return seq.Values, true
}

func (d *decoder) str(n ast.Node, path string) (string, bool) {
	r, ok := d.resolve(n, path)
	if !ok {
		return "", false
	}
	switch x := r.node.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value != nil {
			return x.Value.Value, true
		}
		return "", true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if r.tag == "!!str" {
			return x.GetToken().Value, true
		}
		d.fail(n, path, ErrWrongType, "expected a string, got %s (quote it to make it a string)", describe(r.node))
		return "", false
	}
	d.fail(n, path, ErrWrongType, "expected a string, got %s", describe(r.node))
	return "", false
}

func (d *decoder) boolean(n ast.Node, path string) (bool, bool) {
	r, ok := d.resolve(n, path)
	if !ok {
		return false, false
	}
	if b, isBool := r.node.(*ast.BoolNode); isBool && r.tag != "!!str" {
		return b.Value, true
	}
	d.fail(n, path, ErrWrongType, "expected a boolean (true or false), got %s", describe(r.node))
	return false, false
}

// integer decodes a whole number. Integral floats such as 4e6 are accepted
// because YAML writers use them for sizes.
func (d *decoder) integer(n ast.Node, path string) (int64, bool) {
	r, ok := d.resolve(n, path)
	if !ok {
		return 0, false
	}
	if r.tag == "!!str" {
		d.fail(n, path, ErrWrongType, "expected an integer, got a string (tagged !!str)")
		return 0, false
	}
	switch x := r.node.(type) {
	case *ast.IntegerNode:
		switch v := x.Value.(type) {
		case int64:
			return v, true
		case uint64:
			if v <= math.MaxInt64 {
				return int64(v), true
			}
		}
		d.fail(n, path, ErrBadValue, "%s is out of range", x.Token.Value)
		return 0, false
	case *ast.FloatNode:
		if x.Value == math.Trunc(x.Value) && math.Abs(x.Value) <= 1<<53 {
			return int64(x.Value), true
		}
	case *ast.StringNode:
		// The parser leaves integers too large for 64 bits as plain strings.
		if x.Token != nil && x.Token.Type == token.StringType && looksInteger(x.Value) {
			d.fail(n, path, ErrBadValue, "%s is out of range", x.Value)
			return 0, false
		}
	}
	d.fail(n, path, ErrWrongType, "expected an integer, got %s", describe(r.node))
	return 0, false
}

func looksInteger(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return s != "" && strings.Trim(s, "0123456789_") == ""
}

// Setters for fields; each records nothing on failure, leaving the default.

func (d *decoder) setString(p *string) func(ast.Node, string) {
	return func(n ast.Node, path string) {
		if s, ok := d.str(n, path); ok {
			*p = s
		}
	}
}

func setEnum[T ~string](d *decoder, p *T) func(ast.Node, string) {
	return func(n ast.Node, path string) {
		if s, ok := d.str(n, path); ok {
			*p = T(s)
		}
	}
}

func (d *decoder) setSecret(p *Secret) func(ast.Node, string) {
	return func(n ast.Node, path string) {
		if s, ok := d.str(n, path); ok {
			*p = Secret(s)
		}
	}
}

func (d *decoder) setBool(p *bool) func(ast.Node, string) {
	return func(n ast.Node, path string) {
		if b, ok := d.boolean(n, path); ok {
			*p = b
		}
	}
}

func (d *decoder) setBoolPtr(p **bool) func(ast.Node, string) {
	return func(n ast.Node, path string) {
		if b, ok := d.boolean(n, path); ok {
			*p = &b
		}
	}
}

// setInt decodes into an integer field of any width; a value the field
// cannot hold is reported with the field's documented range.
func setInt[T int | int64 | uint32](d *decoder, p *T, rangeHint string) func(ast.Node, string) {
	return func(n ast.Node, path string) {
		v, ok := d.integer(n, path)
		if !ok {
			return
		}
		if int64(T(v)) != v {
			d.fail(n, path, ErrBadValue, "must be %s, got %d", rangeHint, v)
			return
		}
		*p = T(v)
	}
}

// The schema, one function per mapping.

func (d *decoder) decodeConfig(root ast.Node, c *Config) {
	r, ok := d.resolve(root, "")
	if !ok {
		return
	}
	if _, isMap := r.node.(*ast.MappingNode); !isMap {
		d.fail(root, "", ErrSyntax, "the document must be a mapping with streams and state, got %s", describe(r.node))
		return
	}
	d.object(root, "", []field{
		{"streams", func(n ast.Node, path string) { d.decodeStreams(n, path, c) }},
		{"state", func(n ast.Node, path string) { d.decodeState(n, path, &c.State) }},
	})
}

func (d *decoder) decodeStreams(n ast.Node, path string, c *Config) {
	items, ok := d.list(n, path)
	if !ok {
		return
	}
	c.Streams = make([]StreamConfig, len(items))
	for i, item := range items {
		s := &c.Streams[i]
		s.Pipeline.ThreadNum = DefaultThreadNum
		d.object(item, fmt.Sprintf("%s[%d]", path, i), []field{
			{"id", d.setString(&s.ID)},
			{"input", func(n ast.Node, path string) { d.decodeInput(n, path, &s.Input) }},
			{"pipeline", func(n ast.Node, path string) { d.decodePipeline(n, path, &s.Pipeline) }},
			{"output", func(n ast.Node, path string) { d.decodeOutput(n, path, &s.Output) }},
		})
	}
}

func (d *decoder) decodeInput(n ast.Node, path string, in *InputConfig) {
	typ := d.union(n, path, names(inputTypes), func(typ string) []field {
		switch InputType(typ) {
		case InputFile:
			f := &FileInputConfig{Format: FormatLines}
			in.File = f
			return []field{
				{"path", d.setString(&f.Path)},
				{"format", setEnum(d, &f.Format)},
				{"follow", d.setBool(&f.Follow)},
			}
		case InputStdin:
			s := &StdinInputConfig{Format: FormatLines}
			in.Stdin = s
			return []field{{"format", setEnum(d, &s.Format)}}
		default:
			g := &GenerateInputConfig{Words: DefaultGenerateWords, WordsPerLine: DefaultGenerateWordsPerLine}
			in.Generate = g
			return []field{
				{"seed", setInt(d, &g.Seed, "an integer")},
				{"rate", setInt(d, &g.Rate, "at least 0")},
				{"count", setInt(d, &g.Count, "at least 0")},
				{"words", setInt(d, &g.Words, "at least 1")},
				{"words_per_line", setInt(d, &g.WordsPerLine, "at least 1")},
			}
		}
	})
	in.Type = InputType(typ)
}

func (d *decoder) decodePipeline(n ast.Node, path string, p *PipelineConfig) {
	d.object(n, path, []field{
		{"thread_num", setInt(d, &p.ThreadNum, fmt.Sprintf("between 1 and %d", MaxKeyGroups))},
		{"processors", func(n ast.Node, path string) {
			items, ok := d.list(n, path)
			if !ok {
				return
			}
			p.Processors = make([]ProcessorConfig, len(items))
			for i, item := range items {
				d.decodeProcessor(item, fmt.Sprintf("%s[%d]", path, i), &p.Processors[i])
			}
		}},
	})
}

func (d *decoder) decodeProcessor(n ast.Node, path string, p *ProcessorConfig) {
	asSet := false
	typ := d.union(n, path, names(processorTypes), func(typ string) []field {
		switch ProcessorType(typ) {
		case ProcessorSplit:
			s := &SplitProcessorConfig{Pattern: DefaultSplitPattern}
			p.Split = s
			return []field{
				{"field", d.setString(&s.Field)},
				{"pattern", d.setString(&s.Pattern)},
				{"lowercase", d.setBool(&s.Lowercase)},
				{"as", func(n ast.Node, path string) { asSet = true; d.setString(&s.As)(n, path) }},
			}
		case ProcessorCount:
			c := &CountProcessorConfig{}
			p.Count = c
			return []field{{"key", d.setString(&c.Key)}}
		case ProcessorFilter:
			f := &FilterProcessorConfig{}
			p.Filter = f
			return []field{{"expr", d.setString(&f.Expr)}}
		case ProcessorMap:
			m := &MapProcessorConfig{}
			p.Map = m
			return []field{{"expr", d.setString(&m.Expr)}, {"as", d.setString(&m.As)}}
		case ProcessorDedupe:
			dd := &DedupeProcessorConfig{}
			p.Dedupe = dd
			return []field{{"key", d.setString(&dd.Key)}, {"ttl_ms", setInt(d, &dd.TTLMS, "at least 0")}}
		default:
			w := &WindowProcessorConfig{Aggregate: AggregateCount}
			p.Window = w
			return []field{
				{"kind", setEnum(d, &w.Kind)},
				{"key", d.setString(&w.Key)},
				{"time_field", d.setString(&w.TimeField)},
				{"size_ms", setInt(d, &w.SizeMS, "at least 1")},
				{"slide_ms", setInt(d, &w.SlideMS, "at least 1")},
				{"gap_ms", setInt(d, &w.GapMS, "at least 1")},
				{"watermark_delay_ms", setInt(d, &w.WatermarkDelayMS, "at least 0")},
				{"aggregate", setEnum(d, &w.Aggregate)},
				{"field", d.setString(&w.Field)},
			}
		}
	})
	p.Type = ProcessorType(typ)
	if p.Split != nil && !asSet {
		p.Split.As = p.Split.Field
	}
}

func (d *decoder) decodeOutput(n ast.Node, path string, out *OutputConfig) {
	typ := d.union(n, path, names(outputTypes), func(typ string) []field {
		switch OutputType(typ) {
		case OutputStdout:
			out.Stdout = &StdoutOutputConfig{}
			return nil
		case OutputFile:
			f := &FileOutputConfig{}
			out.File = f
			return []field{{"path", d.setString(&f.Path)}}
		default:
			s := &S3OutputConfig{}
			out.S3 = s
			return append([]field{
				{"bucket", d.setString(&s.Bucket)},
				{"prefix", d.setString(&s.Prefix)},
			}, d.s3ConnectionFields(&s.S3Connection)...)
		}
	})
	out.Type = OutputType(typ)
}

func (d *decoder) decodeState(n ast.Node, path string, s *EnhancedStateConfig) {
	d.object(n, path, []field{
		{"enabled", d.setBool(&s.Enabled)},
		{"backend_type", setEnum(d, &s.BackendType)},
		{"path", d.setString(&s.Path)},
		{"checkpoint_interval_ms", setInt(d, &s.CheckpointIntervalMS, fmt.Sprintf("at least %d", MinCheckpointIntervalMS))},
		{"retained_checkpoints", setInt(d, &s.RetainedCheckpoints, "at least 1")},
		{"lease_ttl_ms", setInt(d, &s.LeaseTTLMS, fmt.Sprintf("0 or at least %d", MinLeaseTTLMS))},
		{"exactly_once", d.setBool(&s.ExactlyOnce)},
		{"key_groups", setInt(d, &s.KeyGroups, fmt.Sprintf("between 1 and %d", MaxKeyGroups))},
		{"job_id", d.setString(&s.JobID)},
		{"s3_config", func(n ast.Node, path string) {
			if r, ok := d.resolve(n, path); ok && isNull(r.node) {
				return
			}
			c := &S3StateBackendConfig{}
			s.S3Config = c
			d.object(n, path, append([]field{
				{"bucket", d.setString(&c.Bucket)},
				{"prefix", d.setString(&c.Prefix)},
			}, d.s3ConnectionFields(&c.S3Connection)...))
		}},
		{"performance", func(n ast.Node, path string) {
			p := &s.Performance
			d.object(n, path, []field{
				{"enable_batching", d.setBool(&p.EnableBatching)},
				{"enable_compression", d.setBool(&p.EnableCompression)},
				{"batch_size_bytes", setInt(d, &p.BatchSizeBytes, fmt.Sprintf("between 1 and %d", MaxBatchSizeBytes))},
				{"compression_level", setInt(d, &p.CompressionLevel, fmt.Sprintf("between 1 and %d", MaxCompressionLevel))},
				{"cache_size_bytes", setInt(d, &p.CacheSizeBytes, "at least 0")},
				{"max_concurrent_uploads", setInt(d, &p.MaxConcurrentUploads, fmt.Sprintf("between 1 and %d", MaxConcurrentUploads))},
			})
		}},
		{"txlog", func(n ast.Node, path string) {
			x := &s.Txlog
			d.object(n, path, []field{
				{"enabled", d.setBool(&x.Enabled)},
				{"durability", setEnum(d, &x.Durability)},
				{"sync_interval_ms", setInt(d, &x.SyncIntervalMS, "at least 1")},
				{"segment_bytes", setInt(d, &x.SegmentBytes, fmt.Sprintf("between %d and %d", MinTxlogSegmentBytes, MaxTxlogSegmentBytes))},
				{"retention_ms", setInt(d, &x.RetentionMS, "at least 0")},
				{"dir", d.setString(&x.Dir)},
			})
		}},
	})
}

// s3ConnectionFields are the keys of an S3Connection, wherever one is
// embedded.
func (d *decoder) s3ConnectionFields(c *S3Connection) []field {
	return []field{
		{"region", d.setString(&c.Region)},
		{"endpoint", d.setString(&c.Endpoint)},
		{"path_style", d.setBool(&c.PathStyle)},
		{"use_ssl", d.setBoolPtr(&c.UseSSL)},
		{"access_key_id", d.setSecret(&c.AccessKeyID)},
		{"secret_access_key", d.setSecret(&c.SecretAccessKey)},
	}
}

func names[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// joinPath appends a key to a field path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parentPath strips the last key or index from a field path; the parent of
// a top-level key is "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
