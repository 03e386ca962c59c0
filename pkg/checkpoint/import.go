package checkpoint

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
)

// DefaultImportMaxMemory bounds the entries an import holds in memory (keys,
// values and about 100 bytes of bookkeeping each) when ImportOptions sets no
// limit. Import sorts in memory; a larger state is imported in parts, one
// operator at a time (ImportOptions.Operator), or with a higher limit.
const DefaultImportMaxMemory = 1 << 30

// importEntryOverhead estimates an entry's memory beyond its key and value.
const importEntryOverhead = 112

// maxImportLineLen bounds one input line: a key and a value at their format
// limits, each six times over for the worst JSON escaping.
const maxImportLineLen = 6*(format.MaxKeyLen+format.MaxValueLen) + 64<<10

// ErrImportTooLarge means an import holds more entries in memory than its
// limit allows.
var ErrImportTooLarge = errors.New("import exceeds its memory limit")

// ImportError reports input that cannot be imported. Line and Field say
// where when the problem is in one line; nothing has been written to the
// store when Import returns one.
type ImportError struct {
	File  string // the input's name, ImportOptions.Name
	Line  int    // 1-based line number; 0 when the problem is not one line's
	Field string // the JSON field; "" for the whole line
	Err   error
}

func (e *ImportError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ImportError) Unwrap() error { return e.Err }

// ImportOptions configure Import.
type ImportOptions struct {
	// Incremental makes the new checkpoint extend the latest one: the lines
	// are upserts, written as a delta layer on top of each key-group range's
	// layers, and every operator and key the lines do not name keeps its
	// state. Without it the new checkpoint holds exactly the lines: it
	// replaces the whole keyed state (or, with Operator, that operator's).
	Incremental bool
	// Operator, when set, imports only that operator's lines; other lines
	// are skipped and counted, and the other operators' state is carried
	// over from the latest checkpoint unchanged.
	Operator string
	// States declares state descriptors (kind, codec, TTL) for operators or
	// states the latest checkpoint does not have; only ID and States are
	// read. In a full import they also replace the latest checkpoint's
	// descriptors of the same name (so values can be re-encoded with
	// another codec); an incremental import refuses a conflicting one.
	States []format.OperatorState
	// Name names the input in errors, e.g. the file name.
	Name string
	// SpoolDir holds segments between writing and upload ("" = os.TempDir).
	SpoolDir string
	// Segment configures the segment writer.
	Segment format.SegmentWriterOptions
	// DryRun reads and checks every line and plans the checkpoint, deletes
	// included, and writes nothing: the result has no Manifest, and
	// Checkpoint is the id the import would commit.
	DryRun bool
	// MaxMemory bounds the entries held in memory; 0 means
	// DefaultImportMaxMemory.
	MaxMemory int64
}

// ImportResult describes a committed import.
type ImportResult struct {
	Manifest *format.Manifest // the new checkpoint's manifest; nil for a dry run
	// Checkpoint is the new checkpoint's id (for a dry run, the id it
	// would have) and Parent the latest checkpoint before it (0: none).
	Checkpoint, Parent uint64
	Entries            int64 // lines imported, delete lines included
	Deleted            int64 // entries deleted by "deleted": true lines
	Skipped            int64 // lines of operators other than ImportOptions.Operator
	// Missing lists the delete lines whose entry the latest checkpoint
	// does not hold: nothing to delete, so they change nothing. They are
	// reported, not errors, so that a delete can be run again.
	Missing []ImportMissing
	Build   BuildStats // segments written and uploaded
}

// ImportMissing is a delete line that found no entry to delete.
type ImportMissing struct {
	Line     int    `json:"line"`
	Operator string `json:"operator"`
	State    string `json:"state"`
	Key      string `json:"key"`
	// MapKey or MapKeyB64 is the line's map key, as given, for map states.
	MapKey    json.RawMessage `json:"map_key,omitempty"`
	MapKeyB64 []byte          `json:"map_key_b64,omitempty"`
}

// Import reads DumpRecord lines (JSON lines as Dump writes them; blank lines
// are ignored) from r and commits them as a new checkpoint, numbered one
// past the latest. The source positions, transaction-log position and
// pending transactions of the latest checkpoint are carried over, so a
// pipeline resumes from the same place with the imported state.
//
// Each entry's key group is computed from its key; descriptors come from the
// latest checkpoint and opts.States. Key-group ranges are the latest
// checkpoint's for the operator (plus ranges for any key groups they leave
// uncovered), or one range over all key groups for an operator it lacks. An
// incremental import that would make a range's layer chain longer than
// DefaultMaxChain writes a new base for it instead, merging the older layers
// with the lines.
//
// Every line is read and checked before anything is written: a bad line
// fails with an *ImportError naming opts.Name, the line and the field, and
// nothing is stored. The whole input is held in memory, up to
// opts.MaxMemory. The import races with any other writer for its id; the
// loser gets ErrCheckpointExists, and its uploaded segments are left for gc.
func Import(ctx context.Context, repo *Repo, r io.Reader, opts ImportOptions) (*ImportResult, error) {
	if opts.Name == "" {
		opts.Name = "<input>"
	}
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = DefaultImportMaxMemory
	}
	imp := &importer{repo: repo, opts: opts, keyGroups: repo.Marker().KeyGroups, ops: map[string]*importOp{}}
	latest, err := repo.Latest(ctx)
	switch {
	case err == nil:
		if imp.parent, err = repo.Manifest(ctx, latest); err != nil {
			return nil, err
		}
	case errors.Is(err, ErrNoCheckpoints):
		if opts.Incremental {
			return nil, fmt.Errorf("checkpoint: incremental import has nothing to extend: %w", err)
		}
	default:
		return nil, err
	}
	if err := imp.descriptors(); err != nil {
		return nil, err
	}
	if err := imp.read(ctx, r); err != nil {
		return nil, err
	}
	if err := imp.plan(); err != nil {
		return nil, err
	}
	if err := imp.resolveDeletes(ctx); err != nil {
		return nil, err
	}
	if opts.DryRun {
		res := imp.res
		res.Checkpoint, res.Parent = latest+1, latest
		return &res, nil
	}
	res, err := imp.write(ctx, latest)
	if err == nil {
		res.Checkpoint, res.Parent = res.Manifest.CheckpointID, latest
	}
	return res, err
}

type importer struct {
	repo      *Repo
	opts      ImportOptions
	keyGroups uint32
	parent    *format.Manifest // nil in an empty store
	// descs holds every known descriptor: operator -> state -> descriptor.
	descs map[string]map[string]format.StateDescriptor
	ops   map[string]*importOp
	res   ImportResult
	mem   int64
}

// importOp is one operator's lines, then its plan.
type importOp struct {
	entries []importEntry
	ranges  []importRange
	deletes int // entries that are tombstones
}

type importEntry struct {
	e    format.Entry
	line int
	del  *ImportMissing // a delete line, as reported if it finds nothing
}

// importRange is one key-group range of the new checkpoint: its entries
// sorted, and the parent's layers for it (nil for a range new to it).
type importRange struct {
	start, end uint32
	parent     []format.SegmentRef
	entries    []importEntry
}

// descriptors merges the parent's descriptors with opts.States.
func (imp *importer) descriptors() error {
	imp.descs = map[string]map[string]format.StateDescriptor{}
	parentDesc := func(op, name string) (format.StateDescriptor, bool) {
		if imp.parent == nil {
			return format.StateDescriptor{}, false
		}
		if o := findOperator(imp.parent, op); o != nil {
			for _, d := range o.States {
				if d.Name == name {
					return d, true
				}
			}
		}
		return format.StateDescriptor{}, false
	}
	if imp.parent != nil {
		for _, o := range imp.parent.Operators {
			m := map[string]format.StateDescriptor{}
			for _, d := range o.States {
				m[d.Name] = d
			}
			imp.descs[o.ID] = m
		}
	}
	for i, o := range imp.opts.States {
		if err := checkImportID("operator id", o.ID); err != nil {
			return fmt.Errorf("checkpoint: import: state descriptors [%d]: %w", i, err)
		}
		m := imp.descs[o.ID]
		if m == nil {
			m = map[string]format.StateDescriptor{}
			imp.descs[o.ID] = m
		}
		for _, d := range o.States {
			if err := checkDescriptor(d); err != nil {
				return fmt.Errorf("checkpoint: import: operator %q: %w", o.ID, err)
			}
			if old, ok := parentDesc(o.ID, d.Name); ok && old != d && imp.opts.Incremental {
				return fmt.Errorf("%w: operator %q state %q is %s/%s/ttl=%dms in checkpoint %d, the descriptors say %s/%s/ttl=%dms; an incremental import cannot change it",
					state.ErrStateConflict, o.ID, d.Name, old.Kind, old.Codec, old.TTLMillis, imp.parent.CheckpointID, d.Kind, d.Codec, d.TTLMillis)
			}
			m[d.Name] = d
		}
	}
	return nil
}

// checkImportID applies the manifest's identifier rule (see
// format.Manifest.Validate) before anything is written, so that a bad name
// fails as input rather than at commit.
func checkImportID(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > format.MaxIDLen:
		return fmt.Errorf("%s is %d bytes, limit %d", what, len(s), format.MaxIDLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s %q contains a control character", what, s)
		}
	}
	return nil
}

// checkDescriptor applies the manifest's rules for a state descriptor.
func checkDescriptor(d format.StateDescriptor) error {
	if err := checkImportID("state name", d.Name); err != nil {
		return err
	}
	if err := checkImportID(fmt.Sprintf("codec of state %q", d.Name), d.Codec); err != nil {
		return err
	}
	switch {
	case d.TTLMillis < 0:
		return fmt.Errorf("state %q has a negative TTL", d.Name)
	}
	switch d.Kind {
	case format.StateKindValue, format.StateKindMap, format.StateKindList, format.StateKindReducing, format.StateKindAggregating:
	default:
		return fmt.Errorf("state %q has kind %q, not one of value, map, list, reducing, aggregating", d.Name, d.Kind)
	}
	if d.Kind == format.StateKindMap {
		if _, _, ok := state.SplitMapCodec(d.Codec); !ok {
			return fmt.Errorf("map state %q has codec %q, not <key codec>/<value codec>", d.Name, d.Codec)
		}
	}
	return nil
}

// DecodeStateDescriptors reads a descriptors file for ImportOptions.States:
// a JSON array of operators, each with its states, in either of two
// spellings: the names of `checkpoint show`'s JSON ({"operator", "states":
// [{"state", "kind", "codec", "ttl_ms"}]}, so that its "operators" can be
// fed back), or those of a stored manifest ({"id", "states": [{"name",
// "kind", "codec", "ttl_millis"}]}). Other fields, such as ranges, are
// ignored. name is used in errors.
func DecodeStateDescriptors(r io.Reader, name string) ([]format.OperatorState, error) {
	data, err := io.ReadAll(io.LimitReader(r, format.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read %s: %w", name, err)
	}
	if len(data) > format.MaxManifestSize {
		return nil, &ImportError{File: name, Err: fmt.Errorf("longer than %d bytes", format.MaxManifestSize)}
	}
	var in []struct {
		ID       string `json:"id"`
		Operator string `json:"operator"`
		States   []struct {
			Name      string `json:"name"`
			State     string `json:"state"`
			Kind      string `json:"kind"`
			Codec     string `json:"codec"`
			TTLMillis *int64 `json:"ttl_millis"`
			TTLMS     *int64 `json:"ttl_ms"`
		} `json:"states"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, &ImportError{File: name, Err: fmt.Errorf("want a JSON array of {\"operator\", \"states\"}: %v", err)}
	}
	// either returns the one of two spellings of a field that is given;
	// both given must agree.
	either := func(a, b, aName, bName string) (string, error) {
		switch {
		case a != "" && b != "" && a != b:
			return "", fmt.Errorf("%s %q and %s %q disagree", aName, a, bName, b)
		case a != "":
			return a, nil
		}
		return b, nil
	}
	ops := make([]format.OperatorState, len(in))
	for i, o := range in {
		id, err := either(o.Operator, o.ID, "operator", "id")
		if err == nil {
			err = checkImportID("operator id", id)
		}
		if err != nil {
			key := "id" // the field the file used, or the manifest's name when it has none
			if o.Operator != "" {
				key = "operator"
			}
			return nil, &ImportError{File: name, Field: fmt.Sprintf("[%d].%s", i, key), Err: err}
		}
		ops[i] = format.OperatorState{ID: id, States: make([]format.StateDescriptor, len(o.States))}
		for j, d := range o.States {
			field := fmt.Sprintf("[%d].states[%d]", i, j)
			st, err := either(d.State, d.Name, "state", "name")
			if err != nil {
				return nil, &ImportError{File: name, Field: field, Err: err}
			}
			var ttl int64
			switch {
			case d.TTLMS != nil && d.TTLMillis != nil && *d.TTLMS != *d.TTLMillis:
				return nil, &ImportError{File: name, Field: field, Err: fmt.Errorf("ttl_ms %d and ttl_millis %d disagree", *d.TTLMS, *d.TTLMillis)}
			case d.TTLMS != nil:
				ttl = *d.TTLMS
			case d.TTLMillis != nil:
				ttl = *d.TTLMillis
			}
			ops[i].States[j] = format.StateDescriptor{Name: st, Kind: d.Kind, Codec: d.Codec, TTLMillis: ttl}
			if err := checkDescriptor(ops[i].States[j]); err != nil {
				return nil, &ImportError{File: name, Field: field, Err: err}
			}
		}
	}
	return ops, nil
}

// read parses and checks every line and collects the entries per operator.
func (imp *importer) read(ctx context.Context, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var buf []byte
	for line := 1; ; line++ {
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		text, err := readImportLine(br, &buf)
		if errors.Is(err, errLineTooLong) {
			return &ImportError{File: imp.opts.Name, Line: line, Err: err}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("checkpoint: import: read %s: %w", imp.opts.Name, err)
		}
		if t := bytes.TrimSpace(text); len(t) > 0 {
			if ierr := imp.line(t, line); ierr != nil {
				return ierr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxImportLineLen)

// readImportLine returns the next line without its newline, in *buf's
// storage; at the end of input it returns the last (possibly empty) line
// and io.EOF.
func readImportLine(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	*buf = (*buf)[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if len(*buf)+len(chunk) > maxImportLineLen {
			return nil, errLineTooLong
		}
		*buf = append(*buf, chunk...)
		switch err {
		case nil:
			return bytes.TrimSuffix(*buf, []byte("\n")), nil
		case bufio.ErrBufferFull:
			continue
		}
		return *buf, err
	}
}

// line turns one line of the input into an entry of its operator: the
// record (DumpRecord), the state it belongs to (descriptor), the entry
// (entryOf), the memory budget, and filing it (add).
func (imp *importer) line(text []byte, line int) *ImportError {
	fail := func(field string, err error) *ImportError {
		return &ImportError{File: imp.opts.Name, Line: line, Field: field, Err: err}
	}
	var rec DumpRecord
	if err := rec.UnmarshalJSON(text); err != nil {
		var fe *RecordFieldError
		if errors.As(err, &fe) {
			return fail(fe.Field, fe.Err)
		}
		return fail("", err)
	}
	if imp.opts.Operator != "" && rec.Operator != imp.opts.Operator {
		imp.res.Skipped++
		return nil
	}
	d, field, err := imp.descriptor(&rec)
	if err != nil {
		return fail(field, err)
	}
	e, field, err := entryOf(&rec, d, imp.keyGroups)
	if err != nil {
		return fail(field, err)
	}
	imp.mem += int64(len(e.Key)+len(e.Value)) + importEntryOverhead
	if imp.mem > imp.opts.MaxMemory {
		return fail("", fmt.Errorf("%w of %d bytes; import the operators one at a time or raise the limit", ErrImportTooLarge, imp.opts.MaxMemory))
	}
	imp.add(&rec, e, line)
	return nil
}

// descriptor finds the state a record belongs to, or says which field
// names what is missing.
func (imp *importer) descriptor(rec *DumpRecord) (d format.StateDescriptor, field string, err error) {
	if rec.Deleted && !imp.opts.Incremental {
		return d, "deleted", errors.New("a full import replaces the whole state, so it has nothing to delete from; delete entries with --incremental")
	}
	descs, ok := imp.descs[rec.Operator]
	if !ok {
		return d, "operator", fmt.Errorf("operator %q has no state descriptors (%s); declare its states in a descriptors file", rec.Operator, imp.parentWord())
	}
	if d, ok = descs[rec.State]; !ok {
		return d, "state", fmt.Errorf("operator %q has no state %q (%s); declare it in a descriptors file", rec.Operator, rec.State, imp.parentWord())
	}
	return d, "", nil
}

// entryOf turns a record of state d into the engine's entry (key group,
// stored key and value, expiry, tombstone), checking it against d and the
// format's limits; an error comes with the record field it is about.
func entryOf(rec *DumpRecord, d format.StateDescriptor, keyGroups uint32) (format.Entry, string, error) {
	kind := state.Kind(d.Kind)
	key := []byte(rec.Key)
	switch {
	case kind == state.KindMap && !rec.IsMap():
		return format.Entry{}, "map_key", fmt.Errorf("missing: state %q is a map state (want \"map_key\" or \"map_key_b64\")", rec.State)
	case kind != state.KindMap && rec.IsMap():
		return format.Entry{}, "map_key", fmt.Errorf("state %q is a %s state, not a map state", rec.State, d.Kind)
	case kind == state.KindMap:
		mk := rec.MapKeyRaw
		if rec.MapKey != nil {
			keyCodec, _, _ := state.SplitMapCodec(d.Codec)
			var err error
			if mk, err = state.ValueFromJSON(keyCodec, rec.MapKey); err != nil {
				return format.Entry{}, "map_key", err
			}
		}
		key = state.JoinMapKey(rec.Key, mk)
	}
	if len(key) > format.MaxKeyLen {
		return format.Entry{}, "key", fmt.Errorf("%d bytes stored, limit %d", len(key), format.MaxKeyLen)
	}
	value := rec.ValueRaw
	if rec.Value != nil {
		var err error
		if value, err = state.StateValueFromJSON(kind, d.Codec, rec.Value); err != nil {
			return format.Entry{}, "value", err
		}
	}
	if len(value) > format.MaxValueLen {
		return format.Entry{}, "value", fmt.Errorf("%d bytes stored, limit %d", len(value), format.MaxValueLen)
	}
	if value == nil && !rec.Deleted {
		// nil marks a tombstone in the engine; an empty value is live.
		value = []byte{}
	}
	var expires int64
	if rec.ExpiresAt != nil {
		if d.TTLMillis == 0 {
			return format.Entry{}, "expires_at", fmt.Errorf("state %q has no TTL, so its entries cannot expire", rec.State)
		}
		expires = rec.ExpiresAt.UnixNano()
		if !time.Unix(0, expires).Equal(*rec.ExpiresAt) {
			return format.Entry{}, "expires_at", fmt.Errorf("%s is outside the years 1678-2262 that Unix nanoseconds hold", rec.ExpiresAt.Format(time.RFC3339))
		}
		if expires == 0 {
			return format.Entry{}, "expires_at", errors.New("the Unix epoch is stored as \"never expires\"; omit expires_at for that")
		}
	}
	return format.Entry{
		State:     d.Name, // shared, rather than one string per line
		KeyGroup:  state.KeyGroupFor(rec.Key, keyGroups),
		Key:       key,
		Value:     value,
		ExpiresAt: expires,
		Tombstone: rec.Deleted,
	}, "", nil
}

// add files entry e of record rec, read at line, under its operator.
func (imp *importer) add(rec *DumpRecord, e format.Entry, line int) {
	op := imp.ops[rec.Operator]
	if op == nil {
		op = &importOp{}
		imp.ops[rec.Operator] = op
	}
	var del *ImportMissing
	if rec.Deleted {
		del = &ImportMissing{Line: line, Operator: rec.Operator, State: rec.State, Key: rec.Key, MapKey: rec.MapKey, MapKeyB64: rec.MapKeyRaw}
		op.deletes++
	}
	op.entries = append(op.entries, importEntry{line: line, del: del, e: e})
	imp.res.Entries++
}

func (imp *importer) parentWord() string {
	if imp.parent == nil {
		return "the store has no checkpoint"
	}
	return fmt.Sprintf("not in checkpoint %d", imp.parent.CheckpointID)
}

// plan lays each operator's entries out in key-group ranges, sorted, and
// refuses duplicate keys. The entries are sorted once by (range, state, key
// group, key) and each range gets its part of the slice, so planning needs
// no second copy of them.
func (imp *importer) plan() error {
	names := make([]string, 0, len(imp.ops))
	for name := range imp.ops {
		names = append(names, name)
	}
	slices.Sort(names) // the same input always reports the same duplicate
	for _, name := range names {
		op := imp.ops[name]
		op.ranges = imp.rangesFor(name)
		// owner maps a key group to its range.
		owner := make([]int32, imp.keyGroups)
		for i, rg := range op.ranges {
			for kg := rg.start; kg <= rg.end; kg++ {
				owner[kg] = int32(i)
			}
		}
		es := op.entries
		slices.SortFunc(es, func(a, b importEntry) int {
			if c := cmp.Compare(owner[a.e.KeyGroup], owner[b.e.KeyGroup]); c != 0 {
				return c
			}
			if c := format.CompareEntries(&a.e, &b.e); c != 0 {
				return c
			}
			return a.line - b.line
		})
		for j := 1; j < len(es); j++ {
			if format.CompareEntries(&es[j-1].e, &es[j].e) == 0 {
				field := "key"
				if imp.descs[name][es[j].e.State].Kind == format.StateKindMap {
					field = "map_key"
				}
				return &ImportError{File: imp.opts.Name, Line: es[j].line, Field: field,
					Err: fmt.Errorf("operator %q state %q: the same key as line %d", name, es[j].e.State, es[j-1].line)}
			}
		}
		for i, j := 0, 0; i < len(es); i = j {
			r := owner[es[i].e.KeyGroup]
			for j < len(es) && owner[es[j].e.KeyGroup] == r {
				j++
			}
			op.ranges[r].entries = es[i:j:j]
		}
	}
	return nil
}

// resolveDeletes checks each delete line against the latest checkpoint's
// state. A delete of an entry that is not there is reported in
// ImportResult.Missing and dropped, so that the new checkpoint holds only
// tombstones that hide something. Only the key groups that deletes name are
// read.
func (imp *importer) resolveDeletes(ctx context.Context) error {
	names := make([]string, 0, len(imp.ops))
	for name, op := range imp.ops {
		if op.deletes > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		op := imp.ops[name]
		hasOp := imp.parent != nil && findOperator(imp.parent, name) != nil
		for ri := range op.ranges {
			rg := &op.ranges[ri]
			// Within a range, entries sort by state first: gather each
			// key group's deletes, in that order, to look them up with
			// one read of the key group.
			byKG := map[uint32][]int{}
			for k := range rg.entries {
				if e := &rg.entries[k].e; e.Tombstone {
					byKG[e.KeyGroup] = append(byKG[e.KeyGroup], k)
				}
			}
			drop := map[int]bool{}
			for _, kg := range slices.Sorted(maps.Keys(byKG)) {
				idx := byKG[kg]
				live, err := imp.liveKeys(ctx, name, hasOp, rg, kg, idx)
				if err != nil {
					return err
				}
				for n, k := range idx {
					if live[n] {
						imp.res.Deleted++
						continue
					}
					drop[k] = true
					imp.res.Missing = append(imp.res.Missing, *rg.entries[k].del)
				}
			}
			if len(drop) > 0 {
				kept := make([]importEntry, 0, len(rg.entries)-len(drop))
				for k, e := range rg.entries {
					if !drop[k] {
						kept = append(kept, e)
					}
				}
				rg.entries = kept
			}
		}
	}
	slices.SortFunc(imp.res.Missing, func(a, b ImportMissing) int { return cmp.Compare(a.Line, b.Line) })
	return nil
}

// liveKeys reports, for the entries of rg at idx (all of key group kg, in
// sorted order), whether the parent holds a live entry of that state and
// key.
func (imp *importer) liveKeys(ctx context.Context, op string, hasOp bool, rg *importRange, kg uint32, idx []int) ([]bool, error) {
	live := make([]bool, len(idx))
	if !hasOp || len(rg.parent) == 0 {
		return live, nil
	}
	v, err := OpenViewRange(ctx, imp.repo, imp.parent, op, state.KeyGroupRange{Start: kg, End: kg})
	if err != nil {
		return nil, err
	}
	defer v.Close()
	i := 0
	for i < len(idx) && v.Next() {
		for i < len(idx) && format.CompareEntries(&rg.entries[idx[i]].e, v.Entry()) < 0 {
			i++
		}
		if i < len(idx) && format.CompareEntries(&rg.entries[idx[i]].e, v.Entry()) == 0 {
			live[i] = true
			i++
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return live, v.Close()
}

// rangesFor returns the operator's ranges in the new checkpoint: the
// parent's, with their layers, and new ranges for any key groups they do
// not cover.
func (imp *importer) rangesFor(op string) []importRange {
	var out []importRange
	next := uint32(0) // first key group not yet covered
	if imp.parent != nil {
		if o := findOperator(imp.parent, op); o != nil {
			for _, rs := range o.Ranges { // sorted and disjoint
				if rs.Start > next {
					out = append(out, importRange{start: next, end: rs.Start - 1})
				}
				out = append(out, importRange{start: rs.Start, end: rs.End, parent: rs.Layers})
				next = rs.End + 1
			}
		}
	}
	if next < imp.keyGroups {
		out = append(out, importRange{start: next, end: imp.keyGroups - 1})
	}
	return out
}

// write stores the segments and commits the checkpoint.
func (imp *importer) write(ctx context.Context, latest uint64) (*ImportResult, error) {
	id := latest + 1
	b, err := imp.repo.NewCheckpoint(ctx, id, latest, BuilderOptions{SpoolDir: imp.opts.SpoolDir, Segment: imp.opts.Segment})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(imp.ops))
	for name := range imp.ops {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		descs := imp.operatorDescs(name)
		for _, rg := range imp.ops[name].ranges {
			layers, err := imp.rangeLayers(ctx, b, id, name, rg)
			if err != nil {
				return nil, fmt.Errorf("checkpoint %d: import operator %s range [%d,%d]: %w", id, name, rg.start, rg.end, err)
			}
			if err := b.AddRange(name, descs, format.RangeState{Start: rg.start, End: rg.end, Layers: layers}); err != nil {
				return nil, err
			}
		}
	}
	if imp.parent != nil {
		for _, o := range imp.parent.Operators {
			_, imported := imp.ops[o.ID]
			keep := imp.opts.Incremental || (imp.opts.Operator != "" && o.ID != imp.opts.Operator)
			if imported || !keep {
				continue
			}
			for _, rs := range o.Ranges {
				if err := b.AddRange(o.ID, o.States, rs); err != nil {
					return nil, err
				}
			}
		}
		b.SetSources(imp.parent.Sources)
		b.SetTxlog(imp.parent.Txlog)
		for _, p := range imp.parent.Pending {
			b.AddPending(p)
		}
	}
	m, err := b.Commit(ctx)
	if err != nil {
		return nil, err
	}
	imp.res.Manifest = m
	imp.res.Build = b.Stats()
	return &imp.res, nil
}

// operatorDescs returns the descriptors the new checkpoint records for an
// imported operator: every state known for it, in name order.
func (imp *importer) operatorDescs(op string) []format.StateDescriptor {
	var out []format.StateDescriptor
	for _, d := range imp.descs[op] {
		out = append(out, d)
	}
	sortStates(out)
	return out
}

// rangeLayers writes the range's segment, if any, and returns its layers.
func (imp *importer) rangeLayers(ctx context.Context, b *Builder, id uint64, op string, rg importRange) ([]format.SegmentRef, error) {
	switch {
	case !imp.opts.Incremental:
		if len(rg.entries) == 0 {
			return nil, nil
		}
		ref, err := imp.putSegment(ctx, b, id, format.LayerBase, func(w *format.SegmentWriter) error { return addEntries(w, rg.entries) })
		return []format.SegmentRef{ref}, err
	case len(rg.entries) == 0:
		return rg.parent, nil
	case len(rg.parent) == 0:
		ref, err := imp.putSegment(ctx, b, id, format.LayerBase, func(w *format.SegmentWriter) error { return addEntries(w, rg.entries) })
		return []format.SegmentRef{ref}, err
	case len(rg.parent) >= DefaultMaxChain:
		ref, err := imp.putSegment(ctx, b, id, format.LayerBase, func(w *format.SegmentWriter) error {
			return imp.writeCompacted(ctx, w, op, rg)
		})
		return []format.SegmentRef{ref}, err
	}
	ref, err := imp.putSegment(ctx, b, id, format.LayerDelta, func(w *format.SegmentWriter) error { return addEntries(w, rg.entries) })
	return append(slices.Clone(rg.parent), ref), err
}

func addEntries(w *format.SegmentWriter, es []importEntry) error {
	for i := range es {
		if err := w.Add(&es[i].e); err != nil {
			return err
		}
	}
	return nil
}

// writeCompacted writes the parent's resolved state of the range with the
// imported entries laid over it: a new base.
func (imp *importer) writeCompacted(ctx context.Context, w *format.SegmentWriter, op string, rg importRange) error {
	v, err := OpenViewRange(ctx, imp.repo, imp.parent, op, state.KeyGroupRange{Start: rg.start, End: rg.end})
	if err != nil {
		return err
	}
	defer v.Close()
	es := rg.entries
	have := v.Next()
	for have || len(es) > 0 {
		// c < 0 takes the parent's entry, c > 0 the imported one, and on a
		// tie the imported one replaces the parent's.
		var c int
		switch {
		case !have:
			c = 1
		case len(es) == 0:
			c = -1
		default:
			c = format.CompareEntries(v.Entry(), &es[0].e)
		}
		switch {
		case c < 0:
			err = w.Add(v.Entry())
		case es[0].e.Tombstone:
			// A new base holds live entries only: the delete takes
			// the parent's entry away, and is not written itself.
			es = es[1:]
		default:
			err = w.Add(&es[0].e)
			es = es[1:]
		}
		if err != nil {
			return err
		}
		if c <= 0 {
			have = v.Next()
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	return v.Close()
}

func (imp *importer) putSegment(ctx context.Context, b *Builder, id uint64, kind string, write func(*format.SegmentWriter) error) (format.SegmentRef, error) {
	sp, err := SpoolSegment(imp.opts.SpoolDir, imp.opts.Segment, write)
	if err != nil {
		return format.SegmentRef{}, err
	}
	defer sp.Remove()
	uploaded, err := imp.repo.PutSegment(ctx, sp)
	if err != nil {
		return format.SegmentRef{}, err
	}
	b.stats.Segments++
	if uploaded {
		b.stats.SegmentsUploaded++
		b.stats.BytesUploaded += sp.Info.Size
	}
	return format.SegmentRef{Hash: sp.Hash(), Size: sp.Info.Size, Kind: kind, Entries: sp.Info.Entries, Checkpoint: id}, nil
}
