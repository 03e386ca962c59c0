package checkpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/arkstate/arkstate/pkg/format"
	"github.com/arkstate/arkstate/pkg/state"
)

// ErrStateNotFound means no selected operator of a checkpoint declares the
// named state.
var ErrStateNotFound = errors.New("state not found in checkpoint")

// DumpOptions select the entries Dump emits (an empty field selects all)
// and follow its progress.
type DumpOptions struct {
	Operator string // only this operator's state
	State    string // only states of this name
	// Key selects one key: for map states, every map entry under that user
	// key. Only the key's key group is read, so only the blocks that may
	// hold it. (The empty key cannot be selected: "" selects every key.)
	Key string
	// Progress, when set, is called as the dump moves on, with the
	// (state, key group) pairs done and their total over the selected
	// operators, states and key groups. Segments hold entries in (state,
	// key group, key) order, so this is how far the dump is.
	Progress func(done, total int64)
}

// DumpRecord is one live state entry in its JSON form: one line of
// `arkstate state dump`, and the input of Import.
//
// The line's fields, in this order:
//
//	operator      the operator id
//	state         the state name
//	key           the key, when it is valid UTF-8; otherwise
//	key_b64       the key's bytes in standard base64
//	map_key       map states only: the map key in its codec's JSON form; or
//	map_key_b64   the encoded map key, when it has no exact JSON form
//	value         the value in its codec's JSON form (a list state's is an
//	              array of elements; see state.ValueToJSON); or
//	value_b64     the stored bytes, when the codec is unknown or the bytes
//	              have no exact JSON form in it
//	expires_at    the entry's expiry, RFC 3339 with nanoseconds, in UTC;
//	              absent when the entry does not expire
//
// Readers ignore fields they do not know.
type DumpRecord struct {
	Operator string
	State    string
	// Key is the user key; any bytes (the engine's keys are Go strings).
	Key string
	// MapKey is the map key's JSON form. For map states exactly one of
	// MapKey and MapKeyRaw is non-nil; for other states both are nil.
	MapKey json.RawMessage
	// MapKeyRaw is the encoded map key when it has no JSON form.
	MapKeyRaw []byte
	// Value is the value's JSON form. When it is nil, ValueRaw holds the
	// stored bytes (possibly none).
	Value    json.RawMessage
	ValueRaw []byte
	// ExpiresAt is the entry's expiry in UTC; nil when it never expires.
	ExpiresAt *time.Time
	// Deleted marks a line of an incremental import that deletes the entry
	// ("deleted": true); it then has no value and no expiry. Dump never
	// writes one.
	Deleted bool
}

// IsMap reports whether the record is a map-state entry.
func (r *DumpRecord) IsMap() bool { return r.MapKey != nil || r.MapKeyRaw != nil }

// MarshalJSON returns the record as one line of JSON without the newline.
// The bytes are exact: a json-codec value appears as stored. (Encoding a
// record with encoding/json re-escapes <, > and & in such values, which
// changes their bytes; write the result of MarshalJSON directly instead.)
func (r DumpRecord) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64+len(r.Operator)+len(r.State)+len(r.Key)+len(r.MapKey)+len(r.Value)+len(r.ValueRaw)*4/3)
	b = append(b, `{"operator":`...)
	b = state.AppendJSONString(b, r.Operator)
	b = append(b, `,"state":`...)
	b = state.AppendJSONString(b, r.State)
	if utf8.ValidString(r.Key) {
		b = append(b, `,"key":`...)
		b = state.AppendJSONString(b, r.Key)
	} else {
		b = append(b, `,"key_b64":`...)
		b = appendBase64(b, []byte(r.Key))
	}
	switch {
	case r.MapKey != nil:
		b = append(b, `,"map_key":`...)
		b = append(b, r.MapKey...)
	case r.MapKeyRaw != nil:
		b = append(b, `,"map_key_b64":`...)
		b = appendBase64(b, r.MapKeyRaw)
	}
	switch {
	case r.Deleted:
		b = append(b, `,"deleted":true`...)
	case r.Value != nil:
		b = append(b, `,"value":`...)
		b = append(b, r.Value...)
	default:
		b = append(b, `,"value_b64":`...)
		b = appendBase64(b, r.ValueRaw)
	}
	if r.ExpiresAt != nil {
		b = append(b, `,"expires_at":"`...)
		b = r.ExpiresAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

func appendBase64(b, v []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// RecordFieldError reports a dump line that cannot be a DumpRecord, naming
// the JSON field ("" for the line as a whole).
type RecordFieldError struct {
	Field string
	Err   error
}

func (e *RecordFieldError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("field %q: %v", e.Field, e.Err)
}

func (e *RecordFieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) *RecordFieldError {
	return &RecordFieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// UnmarshalJSON parses one dump line. It checks the record's shape (which
// fields are present, their JSON types, base64 and time syntax) and fails
// with a *RecordFieldError; whether the values suit their state's codec is
// for the importer to decide. Unknown fields are ignored; of repeated
// fields the last counts.
func (r *DumpRecord) UnmarshalJSON(line []byte) error {
	if !utf8.Valid(line) {
		return &RecordFieldError{Err: errors.New("not valid UTF-8")}
	}
	if !json.Valid(line) {
		var v any
		var se *json.SyntaxError
		if err := json.Unmarshal(line, &v); errors.As(err, &se) {
			return &RecordFieldError{Err: fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)}
		}
		return &RecordFieldError{Err: errors.New("invalid JSON")}
	}
	// The record keeps parts of the line, which the caller may reuse.
	line = bytes.Clone(line)
	var fields lineFields
	if !fields.scan(line) {
		return &RecordFieldError{Err: errors.New("not a JSON object")}
	}
	var out DumpRecord
	var err error
	if out.Operator, err = stringField(&fields, "operator", true); err != nil {
		return err
	}
	if out.State, err = stringField(&fields, "state", true); err != nil {
		return err
	}
	_, keyRaw, err := eitherField(&fields, "key", "key_b64", true)
	switch {
	case err != nil:
		return err
	case keyRaw != nil:
		out.Key = string(keyRaw)
	default:
		if out.Key, err = stringField(&fields, "key", true); err != nil {
			return err
		}
	}
	if out.MapKey, out.MapKeyRaw, err = eitherField(&fields, "map_key", "map_key_b64", false); err != nil {
		return err
	}
	if raw, ok := fields.get("deleted"); ok {
		switch string(bytes.TrimSpace(raw)) {
		case "true":
			out.Deleted = true
		case "false":
		default:
			return fieldErr("deleted", "want true or false, got %s", truncateJSON(raw))
		}
	}
	if out.Value, out.ValueRaw, err = eitherField(&fields, "value", "value_b64", !out.Deleted); err != nil {
		return err
	}
	if out.Deleted {
		for _, f := range []string{"value", "value_b64", "expires_at"} {
			if _, ok := fields.get(f); ok {
				return fieldErr(f, "a deleted line carries no %s", strings.TrimSuffix(f, "_b64"))
			}
		}
	}
	if raw, ok := fields.get("expires_at"); ok {
		s, ok := jsonString(raw)
		if !ok {
			return fieldErr("expires_at", "want an RFC 3339 time string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fieldErr("expires_at", "%q is not an RFC 3339 time", s)
		}
		t = t.UTC()
		out.ExpiresAt = &t
	}
	*r = out
	return nil
}

// dumpFields are the fields of a record line.
var dumpFields = [...]string{"operator", "state", "key", "key_b64", "map_key", "map_key_b64", "value", "value_b64", "expires_at", "deleted"}

// lineFields holds the raw values of a line's known fields. Splitting a
// validated line by hand instead of through encoding/json's reflection
// halves the cost of an import.
type lineFields struct {
	raw [len(dumpFields)]json.RawMessage
	has [len(dumpFields)]bool
}

func (f *lineFields) get(name string) (json.RawMessage, bool) {
	for i, n := range dumpFields {
		if n == name {
			return f.raw[i], f.has[i]
		}
	}
	return nil, false
}

// scan splits b, which json.Valid accepted, into its top-level members; it
// reports false when b is not an object.
func (f *lineFields) scan(b []byte) bool {
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipJSONSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		keyEnd := jsonValueEnd(b, i)
		name, _ := jsonString(b[i:keyEnd])
		i = skipJSONSpace(b, skipJSONSpace(b, keyEnd)+1) // past the colon
		end := jsonValueEnd(b, i)
		for k, n := range dumpFields {
			if n == name {
				f.raw[k], f.has[k] = b[i:end:end], true
			}
		}
		i = skipJSONSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipJSONSpace(b, i+1)
		}
	}
	return true
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonValueEnd returns the end of the valid JSON value starting at b[i].
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = jsonStringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// jsonStringEnd returns the index after the string literal opening at b[i].
func jsonStringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// stringField reads a required or optional JSON string field.
func stringField(fields *lineFields, name string, required bool) (string, error) {
	raw, ok := fields.get(name)
	if !ok {
		if required {
			return "", fieldErr(name, "missing")
		}
		return "", nil
	}
	s, ok := jsonString(raw)
	if !ok {
		return "", fieldErr(name, "want a JSON string, got %s", truncateJSON(raw))
	}
	return s, nil
}

// jsonString decodes a JSON string literal, without reflection when it has
// no escapes (most keys and names). ok is false when raw is not a string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if body := raw[1 : len(raw)-1]; raw[len(raw)-1] == '"' && bytes.IndexByte(body, '\\') < 0 && bytes.IndexByte(body, '"') < 0 {
		plain := true
		for _, c := range body {
			if c < 0x20 {
				plain = false
				break
			}
		}
		if plain && utf8.Valid(body) {
			return string(body), true
		}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// eitherField reads a pair of alternative fields, JSON form or base64 form,
// of which exactly one must be present (or neither, when not required).
// The JSON form is returned raw, the base64 form decoded and non-nil.
func eitherField(fields *lineFields, plain, b64 string, required bool) (json.RawMessage, []byte, error) {
	rawPlain, hasPlain := fields.get(plain)
	rawB64, hasB64 := fields.get(b64)
	switch {
	case hasPlain && hasB64:
		return nil, nil, fieldErr(b64, "given together with %q; want one of them", plain)
	case hasPlain:
		return bytes.TrimSpace(rawPlain), nil, nil
	case hasB64:
		s, ok := jsonString(rawB64)
		if !ok {
			return nil, nil, fieldErr(b64, "want a base64 string, got %s", truncateJSON(rawB64))
		}
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return nil, nil, fieldErr(b64, "not standard padded base64: %v", err)
		}
		if b == nil {
			b = []byte{}
		}
		return nil, b, nil
	case required:
		return nil, nil, fieldErr(plain, "missing (want %q or %q)", plain, b64)
	}
	return nil, nil, nil
}

func truncateJSON(raw json.RawMessage) string {
	const limit = 40
	if len(raw) > limit {
		return string(raw[:limit]) + "..."
	}
	return string(raw)
}

// Dump emits the live entries of checkpoint id that f selects, operator by
// operator in id order, and within an operator in the order of its View:
// key-group range by range, then state, key group and key. Expired entries
// are emitted with their expiry, as stored: a dump shows what the
// checkpoint holds, whatever the time. Dump only reads.
//
// An unknown f.Operator fails with ErrOperatorNotFound, an f.State no
// selected operator declares with ErrStateNotFound. A segment entry that
// its manifest does not describe, whose key does not hash to its key group,
// or a map entry whose stored key is malformed is damage: a
// *format.CorruptError. An error from emit stops the dump and is returned
// as is.
func Dump(ctx context.Context, repo *Repo, id uint64, f DumpOptions, emit func(DumpRecord) error) error {
	m, err := repo.Manifest(ctx, id)
	if err != nil {
		return err
	}
	ops := m.Operators
	if f.Operator != "" {
		o := findOperator(m, f.Operator)
		if o == nil {
			return fmt.Errorf("%w: %q in checkpoint %d", ErrOperatorNotFound, f.Operator, id)
		}
		ops = []format.OperatorState{*o}
	}
	if f.State != "" {
		found := false
		for _, o := range ops {
			found = found || hasState(o.States, f.State)
		}
		if !found {
			return fmt.Errorf("%w: %q in checkpoint %d", ErrStateNotFound, f.State, id)
		}
	}
	rng := state.KeyGroupRange{Start: 0, End: m.KeyGroups - 1}
	if f.Key != "" {
		kg := state.KeyGroupFor(f.Key, m.KeyGroups)
		rng = state.KeyGroupRange{Start: kg, End: kg}
	}
	selected := ops[:0:0]
	for _, o := range ops {
		if f.State == "" || hasState(o.States, f.State) {
			selected = append(selected, o)
		}
	}
	// The view reads an operator's key-group ranges in turn, each in
	// (state, key group) order: each selected state of each range is one
	// stretch of key groups.
	type stretch struct {
		first, last uint32           // the range's key groups within rng
		states      map[string]int64 // where each state's stretch starts
	}
	stretches := make([][]stretch, len(selected))
	var total int64
	for i, o := range selected {
		var names []string
		for _, d := range o.States {
			if f.State == "" || d.Name == f.State {
				names = append(names, d.Name)
			}
		}
		slices.Sort(names)
		for _, r := range o.Ranges {
			first, last := max(r.Start, rng.Start), min(r.End, rng.End)
			if first > last {
				continue
			}
			st := stretch{first: first, last: last, states: make(map[string]int64, len(names))}
			for _, n := range names {
				st.states[n] = total
				total += int64(last-first) + 1
			}
			stretches[i] = append(stretches[i], st)
		}
	}
	for i, o := range selected {
		var progress func(e *format.Entry)
		if f.Progress != nil {
			progress = func(e *format.Entry) {
				for _, st := range stretches[i] {
					if start, ok := st.states[e.State]; ok && st.first <= e.KeyGroup && e.KeyGroup <= st.last {
						f.Progress(start+int64(e.KeyGroup-st.first), total)
						return
					}
				}
			}
		}
		if err := dumpOperator(ctx, repo, m, o, rng, f, emit, progress); err != nil {
			return err
		}
	}
	if f.Progress != nil {
		f.Progress(total, total)
	}
	return nil
}

// dumpOperator emits operator o's entries in rng; progress, when set, is
// shown the first entry of each (state, key group).
func dumpOperator(ctx context.Context, repo *Repo, m *format.Manifest, o format.OperatorState, rng state.KeyGroupRange, f DumpOptions,
	emit func(DumpRecord) error, progress func(*format.Entry)) error {
	descs := make(map[string]format.StateDescriptor, len(o.States))
	for _, d := range o.States {
		descs[d.Name] = d
	}
	v, err := OpenViewRange(ctx, repo, m, o.ID, rng)
	if err != nil {
		return err
	}
	defer v.Close()
	var lastState string
	lastKeyGroup := ^uint32(0)
	for n := 0; v.Next(); n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := v.Entry()
		if progress != nil && (e.KeyGroup != lastKeyGroup || e.State != lastState) {
			lastState, lastKeyGroup = e.State, e.KeyGroup
			progress(e)
		}
		if f.State != "" && e.State != f.State {
			continue
		}
		d, ok := descs[e.State]
		if !ok {
			return dumpCorrupt(m, o.ID, e, "the segment holds state %q, which the manifest does not describe", e.State)
		}
		rec, err := dumpRecordOf(m, o.ID, d, e)
		if err != nil {
			return err
		}
		if f.Key != "" && rec.Key != f.Key {
			continue
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	return v.Close()
}

// dumpRecordOf renders one stored entry; the record owns its memory.
func dumpRecordOf(m *format.Manifest, op string, d format.StateDescriptor, e *format.Entry) (DumpRecord, error) {
	rec := DumpRecord{Operator: op, State: e.State}
	kind := state.Kind(d.Kind)
	userKey := e.Key
	if kind == state.KindMap {
		uk, mk, ok := state.SplitMapKey(e.Key)
		if !ok {
			return rec, dumpCorrupt(m, op, e, "malformed map-state key %x", e.Key)
		}
		userKey = uk
		keyCodec, _, _ := state.SplitMapCodec(d.Codec)
		if j, err := state.ValueToJSON(keyCodec, mk); err == nil {
			rec.MapKey = j
		} else {
			rec.MapKeyRaw = append([]byte{}, mk...)
		}
	}
	if kg := state.KeyGroupFor(string(userKey), m.KeyGroups); kg != e.KeyGroup {
		return rec, dumpCorrupt(m, op, e, "key %q is recorded in key group %d but hashes to %d", userKey, e.KeyGroup, kg)
	}
	rec.Key = string(userKey)
	if j, err := state.StateValueToJSON(kind, d.Codec, e.Value); err == nil {
		rec.Value = j
	} else {
		rec.ValueRaw = append([]byte{}, e.Value...)
	}
	if e.ExpiresAt != 0 {
		t := time.Unix(0, e.ExpiresAt).UTC()
		rec.ExpiresAt = &t
	}
	return rec, nil
}

func dumpCorrupt(m *format.Manifest, op string, e *format.Entry, msg string, args ...any) error {
	return &format.CorruptError{
		File:   format.ManifestPath(m.CheckpointID),
		Offset: -1,
		Record: "operator " + strconv.Quote(op) + " state " + strconv.Quote(e.State),
		Err:    fmt.Errorf("%w: %s", format.ErrMalformed, fmt.Sprintf(msg, args...)),
	}
}
