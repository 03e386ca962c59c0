package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A manifest is a JSON envelope around a checksummed body:
//
//	{
//	  "format": "arkstate-manifest",
//	  "version": 1,
//	  "checksum": "sha256:<64 lowercase hex>",
//	  "body": { ...Manifest... }
//	}
//
// The checksum is SHA-256 over the exact bytes of the "body" value as stored,
// from its opening '{' to its closing '}'. Readers ignore unknown fields in
// the envelope and in the body, but refuse a version they do not know.
// The full specification is in docs/FORMAT.md, section "Manifest".

// ManifestVersion1 is the first manifest format: the envelope above, a SHA-256
// body checksum, and the body fields of Manifest as of arkstate 0.1.
const ManifestVersion1 = 1

// ManifestFormat is the value of the envelope's "format" field; anything else
// is not a manifest (ErrBadMagic).
const ManifestFormat = "arkstate-manifest"

// MaxManifestSize bounds a manifest file. It is far above any real job
// (about 300 bytes per segment reference) and exists so that a wrong or
// hostile file cannot make a reader allocate without limit.
const MaxManifestSize = 64 << 20

// MaxIDLen bounds every identifier in manifests and transaction-log records:
// job, operator, state, codec, source, output, transaction and stream names.
const MaxIDLen = 1024

// Checkpoint kinds (Manifest.Kind).
const (
	// KindFull is a checkpoint whose layers need no other checkpoint's
	// manifest to be restored; it has no parent.
	KindFull = "full"
	// KindIncremental is a checkpoint that re-references segments of its
	// parent chain and adds delta layers on top.
	KindIncremental = "incremental"
)

// State kinds (StateDescriptor.Kind), matching the typed accessors of pkg/state.
const (
	StateKindValue    = "value"
	StateKindMap      = "map"
	StateKindList     = "list"
	StateKindReducing = "reducing"
	// StateKindAggregating is an accumulator per key; Codec is the
	// accumulator's.
	StateKindAggregating = "aggregating"
)

// Layer kinds (SegmentRef.Kind).
const (
	// LayerBase is a segment holding the complete state of a range at the
	// checkpoint that wrote it; it is always the first layer of a range.
	LayerBase = "base"
	// LayerDelta holds puts and tombstones relative to the layers below it.
	LayerDelta = "delta"
)

// Manifest describes one complete checkpoint. Its presence in the store is
// what makes the checkpoint complete, so it is written last.
type Manifest struct {
	// JobID names the job the checkpoint belongs to; restore refuses a
	// manifest of another job.
	JobID string `json:"job_id"`
	// CheckpointID is the checkpoint's number, > 0, increasing per job; it is
	// also the barrier epoch that produced it.
	CheckpointID uint64 `json:"checkpoint_id"`
	// Parent is the checkpoint whose layers an incremental checkpoint builds
	// on; it is < CheckpointID, set for KindIncremental and 0 for KindFull.
	// Retention uses it to keep a chain restorable.
	Parent uint64 `json:"parent,omitempty"`
	// Kind is KindFull or KindIncremental.
	Kind string `json:"kind"`
	// CreatedAt is when the checkpoint completed. It is stored in UTC with
	// nanosecond precision; DecodeManifest returns it in UTC.
	CreatedAt time.Time `json:"created_at"`
	// KeyGroups is the job's key-group count (its maximum parallelism), > 0.
	// Every range lies within [0, KeyGroups).
	KeyGroups uint32 `json:"key_groups"`
	// Operators lists the keyed state of each operator. Stateless operators
	// may be omitted.
	Operators []OperatorState `json:"operators"`
	// Sources holds each input's position to resume from.
	Sources []SourcePosition `json:"sources,omitempty"`
	// Txlog is the transaction-log position at the checkpoint's barrier:
	// replay starts after it. Nil when the job runs without a transaction log.
	Txlog *TxlogPosition `json:"txlog,omitempty"`
	// Pending lists the two-phase-commit transactions pre-committed at this
	// checkpoint's barrier; recovery commits exactly these.
	Pending []PendingTxn `json:"pending,omitempty"`
}

// OperatorState is one operator's keyed state in a checkpoint.
type OperatorState struct {
	// ID is the operator's stable id from the pipeline definition; unique
	// within the manifest.
	ID string `json:"id"`
	// States declares the operator's named states; names are unique.
	States []StateDescriptor `json:"states"`
	// Ranges holds the segment layers per key-group range, sorted by Start
	// and disjoint. Key groups covered by no range have no state.
	Ranges []RangeState `json:"ranges"`
}

// StateDescriptor declares one named state so that a reader can decode its
// values without the pipeline's code.
type StateDescriptor struct {
	// Name is the state name, as in Entry.State.
	Name string `json:"name"`
	// Kind is StateKindValue, StateKindMap, StateKindList, StateKindReducing
	// or StateKindAggregating.
	Kind string `json:"kind"`
	// Codec names the value encoding, e.g. "uint64", "json", "bytes". The
	// format does not interpret it; pkg/state resolves it.
	Codec string `json:"codec"`
	// TTLMillis is the time-to-live of entries in milliseconds; 0 means
	// entries never expire.
	TTLMillis int64 `json:"ttl_millis"`
}

// RangeState is the state of one inclusive key-group range as an ordered
// stack of segment layers.
type RangeState struct {
	// Start is the first key group of the range.
	Start uint32 `json:"start"`
	// End is the last key group of the range (inclusive), >= Start.
	End uint32 `json:"end"`
	// Layers are applied in order: the base first, then each delta. Empty
	// means the range holds no state.
	Layers []SegmentRef `json:"layers"`
}

// SegmentRef names one immutable, content-addressed segment file.
type SegmentRef struct {
	// Hash is the SHA-256 of the whole segment file as 64 lowercase hex
	// digits; the file lives at SegmentPath(Hash).
	Hash string `json:"hash"`
	// Size is the file's size in bytes, checked by verify before reading.
	Size int64 `json:"size"`
	// Kind is LayerBase or LayerDelta.
	Kind string `json:"kind"`
	// Entries is the number of entries (puts and tombstones) in the segment.
	Entries uint64 `json:"entries"`
	// Checkpoint is the checkpoint that wrote the segment, in
	// [1, Manifest.CheckpointID]; it does not decrease along a range's layers.
	Checkpoint uint64 `json:"checkpoint"`
}

// SourcePosition is the position one input resumes from.
type SourcePosition struct {
	// Source is the input's name in the pipeline; unique within the manifest.
	Source string `json:"source"`
	// Position is owned by the input (an offset, a file and line, a Kafka
	// partition map). It must be valid JSON; the format only stores it.
	Position json.RawMessage `json:"position"`
}

// TxlogPosition is a point in a transaction-log stream.
type TxlogPosition struct {
	// Stream is the transaction-log stream, a directory name under txlog/.
	Stream string `json:"stream"`
	// LSN is the log sequence number of the last record covered by the
	// checkpoint.
	LSN uint64 `json:"lsn"`
}

// PendingTxn is a two-phase-commit transaction pre-committed by an output at
// the checkpoint's barrier and not yet known to be committed.
type PendingTxn struct {
	// Output is the output's name in the pipeline.
	Output string `json:"output"`
	// TxnID identifies the transaction within the output; (Output, TxnID)
	// is unique within the manifest.
	TxnID string `json:"txn_id"`
	// Epoch is the barrier epoch whose data the transaction holds.
	Epoch uint64 `json:"epoch"`
	// Data is output-specific (a pending file path, a multipart upload id).
	// Optional; when present it must be valid JSON.
	Data json.RawMessage `json:"data,omitempty"`
}

// FieldError names the manifest field that breaks a rule, as a path like
// "operators[2].ranges[0].layers[1].hash". It matches ErrMalformed with
// errors.Is.
type FieldError struct {
	Field  string // path from the body's root, JSON names and [index]
	Reason string // what is wrong, e.g. "not 64 hex digits"
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes a FieldError an ErrMalformed.
func (e *FieldError) Unwrap() error { return ErrMalformed }

// under prefixes the field path with the enclosing field, so each validator
// reports paths relative to itself and the full path is built only on failure.
func (e *FieldError) under(prefix string) *FieldError {
	if e != nil {
		e.Field = prefix + "." + e.Field
	}
	return e
}

func manifestFieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// EncodeManifest validates m and returns its file bytes. The output depends
// only on the value of m: the body is indented JSON in struct-field order
// with HTML escaping off, CreatedAt in UTC, and nil lists written as [].
func EncodeManifest(m *Manifest) ([]byte, error) {
	if m == nil {
		return nil, errors.New("format: encode manifest: nil manifest")
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("format: encode manifest for checkpoint %d: %w", m.CheckpointID, err)
	}
	body, err := marshalManifestBody(m)
	if err != nil {
		return nil, fmt.Errorf("format: encode manifest for checkpoint %d: %w", m.CheckpointID, err)
	}
	out := sealManifest(body)
	if len(out) > MaxManifestSize {
		return nil, fmt.Errorf("format: encode manifest for checkpoint %d: %d bytes, limit %d: %w",
			m.CheckpointID, len(out), MaxManifestSize, ErrTooLarge)
	}
	return out, nil
}

// marshalManifestBody renders the body as stored, indented to sit at depth 1
// of the envelope.
func marshalManifestBody(m *Manifest) ([]byte, error) {
	c := *m
	c.CreatedAt = m.CreatedAt.UTC()
	// Required lists are written as [] rather than null so that hand-written
	// tools see the same shape for empty and non-empty values.
	c.Operators = make([]OperatorState, len(m.Operators))
	for i, op := range m.Operators {
		if op.States == nil {
			op.States = []StateDescriptor{}
		}
		ranges := make([]RangeState, len(op.Ranges))
		for j, r := range op.Ranges {
			if r.Layers == nil {
				r.Layers = []SegmentRef{}
			}
			ranges[j] = r
		}
		op.Ranges = ranges
		c.Operators[i] = op
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// sealManifest wraps a body in the envelope with the body's checksum.
func sealManifest(body []byte) []byte {
	sum := sha256.Sum256(body)
	var buf bytes.Buffer
	buf.Grow(len(body) + 192)
	buf.WriteString("{\n  \"format\": \"" + ManifestFormat + "\",\n")
	buf.WriteString("  \"version\": " + strconv.Itoa(ManifestVersion1) + ",\n")
	buf.WriteString("  \"checksum\": \"sha256:" + hex.EncodeToString(sum[:]) + "\",\n")
	buf.WriteString("  \"body\": ")
	buf.Write(body)
	buf.WriteString("\n}\n")
	return buf.Bytes()
}

// DecodeManifest parses and checks a manifest file. name is used in errors
// only. The checks run in order: size bound, JSON envelope, format string
// (ErrBadMagic), version (ErrUnsupportedVersion), checksum over the raw body
// bytes (ErrChecksum), body decoding and Validate (ErrMalformed, with a
// *FieldError naming the field). Every failure is a *CorruptError.
//
// Decoding normalises the value so that decode(encode(m)) == m for every m
// that decoding returns: CreatedAt is in UTC, Position and Data are compact
// JSON, and empty lists are nil.
func DecodeManifest(data []byte, name string) (*Manifest, error) {
	const rec = "manifest"
	if len(data) > MaxManifestSize {
		return nil, corrupt(name, -1, rec, ErrTooLarge, "%d bytes, limit %d", len(data), MaxManifestSize)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, corrupt(name, int64(len(data)), rec, ErrTruncated, "no JSON value")
	}
	if trimmed[0] != '{' {
		return nil, corrupt(name, int64(len(data)-len(trimmed)), rec, ErrBadMagic, "not a JSON object")
	}
	// A map keeps key matching exact (a struct would fold case), so a
	// damaged key such as "Format" is not silently accepted.
	var env map[string]json.RawMessage
	if err := json.Unmarshal(data, &env); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			if se.Offset >= int64(len(bytes.TrimRight(data, " \t\r\n"))) {
				return nil, corrupt(name, se.Offset, rec, ErrTruncated, "%v", err)
			}
			return nil, corrupt(name, se.Offset, rec, ErrMalformed, "%v", err)
		}
		return nil, corrupt(name, -1, rec, ErrMalformed, "%v", err)
	}

	var format string
	if raw, ok := env["format"]; !ok || json.Unmarshal(raw, &format) != nil || format != ManifestFormat {
		return nil, corrupt(name, -1, rec, ErrBadMagic, "format is %s, want %q", describeRaw(raw, ok), ManifestFormat)
	}

	rawVersion, ok := env["version"]
	switch {
	case !ok:
		return nil, corrupt(name, -1, rec, ErrMalformed, "version missing")
	case string(rawVersion) == strconv.Itoa(ManifestVersion1):
	case isJSONNumber(rawVersion):
		return nil, corrupt(name, -1, rec, ErrUnsupportedVersion, "version %s, this build reads %d", rawVersion, ManifestVersion1)
	default:
		return nil, corrupt(name, -1, rec, ErrMalformed, "version is %s, want an integer", describeRaw(rawVersion, true))
	}

	var checksum string
	if raw, ok := env["checksum"]; !ok || json.Unmarshal(raw, &checksum) != nil {
		return nil, corrupt(name, -1, rec, ErrMalformed, "checksum is %s, want a string", describeRaw(raw, ok))
	}
	stored, ok := strings.CutPrefix(checksum, "sha256:")
	if !ok || !IsSegmentHash(stored) {
		return nil, corrupt(name, -1, rec, ErrMalformed, "checksum %q is not \"sha256:\" and 64 lowercase hex digits", truncateForError(checksum))
	}

	body, ok := env["body"]
	if !ok {
		return nil, corrupt(name, -1, rec, ErrMalformed, "body missing")
	}
	if len(body) == 0 || body[0] != '{' {
		return nil, corrupt(name, -1, rec, ErrMalformed, "body is %s, want a JSON object", describeRaw(body, true))
	}
	sum := sha256.Sum256(body)
	if computed := hex.EncodeToString(sum[:]); computed != stored {
		return nil, corrupt(name, -1, rec, ErrChecksum, "stored sha256:%s, computed sha256:%s", stored, computed)
	}

	m := new(Manifest)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, corrupt(name, -1, "manifest body", ErrMalformed, "%v", err)
	}
	if err := m.normalize(); err != nil {
		return nil, &CorruptError{File: name, Offset: -1, Record: "manifest body", Err: err}
	}
	if err := m.Validate(); err != nil {
		return nil, &CorruptError{File: name, Offset: -1, Record: "manifest body", Err: err}
	}
	return m, nil
}

// normalize puts a freshly decoded manifest in the canonical form described
// on DecodeManifest.
func (m *Manifest) normalize() error {
	m.CreatedAt = m.CreatedAt.UTC()
	if len(m.Operators) == 0 {
		m.Operators = nil
	}
	for i := range m.Operators {
		op := &m.Operators[i]
		if len(op.States) == 0 {
			op.States = nil
		}
		if len(op.Ranges) == 0 {
			op.Ranges = nil
		}
		for j := range op.Ranges {
			if len(op.Ranges[j].Layers) == 0 {
				op.Ranges[j].Layers = nil
			}
		}
	}
	if len(m.Sources) == 0 {
		m.Sources = nil
	}
	for i := range m.Sources {
		c, err := compactJSON(m.Sources[i].Position)
		if err != nil {
			return manifestFieldErr(fmt.Sprintf("sources[%d].position", i), "%v", err)
		}
		m.Sources[i].Position = c
	}
	if len(m.Pending) == 0 {
		m.Pending = nil
	}
	for i := range m.Pending {
		c, err := compactJSON(m.Pending[i].Data)
		if err != nil {
			return manifestFieldErr(fmt.Sprintf("pending[%d].data", i), "%v", err)
		}
		m.Pending[i].Data = c
	}
	return nil
}

func compactJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return json.RawMessage(buf.Bytes()), nil
}

// Validate checks every rule of the manifest body and returns a *FieldError
// for the first field that breaks one, in field order.
//
// Rules: identifiers are non-empty, at most MaxIDLen bytes of UTF-8 without
// control characters (the txlog stream additionally a single path element);
// CheckpointID > 0; Kind is known; an incremental checkpoint has a parent and
// a full one has none; Parent < CheckpointID; CreatedAt is set and in years
// 1-9999; KeyGroups > 0; operator ids, state names per operator, source names
// and (output, txn id) pairs are unique; state kinds are known and TTLs >= 0;
// ranges satisfy Start <= End < KeyGroups and are sorted by Start and
// disjoint; a range's first layer is a base and the others are deltas; layer
// hashes are 64 lowercase hex digits, sizes >= 0, and the writing checkpoint
// is in [1, CheckpointID] and non-decreasing along the layers; source
// positions are valid JSON, and pending data is valid JSON when present.
func (m *Manifest) Validate() error {
	if err := m.validate(); err != nil {
		return err
	}
	return nil
}

// validate returns the concrete type so that callers can add path prefixes;
// Validate converts a nil *FieldError to a nil error.
func (m *Manifest) validate() *FieldError {
	if fe := checkManifestID("job_id", m.JobID); fe != nil {
		return fe
	}
	if m.CheckpointID == 0 {
		return manifestFieldErr("checkpoint_id", "must be > 0")
	}
	switch m.Kind {
	case KindFull:
		if m.Parent != 0 {
			return manifestFieldErr("parent", "%d set on a full checkpoint", m.Parent)
		}
	case KindIncremental:
		if m.Parent == 0 {
			return manifestFieldErr("parent", "missing on an incremental checkpoint")
		}
		if m.Parent >= m.CheckpointID {
			return manifestFieldErr("parent", "%d is not below checkpoint_id %d", m.Parent, m.CheckpointID)
		}
	default:
		return manifestFieldErr("kind", "%q is not %q or %q", truncateForError(m.Kind), KindFull, KindIncremental)
	}
	if m.CreatedAt.IsZero() {
		return manifestFieldErr("created_at", "not set")
	}
	if y := m.CreatedAt.UTC().Year(); y < 1 || y > 9999 {
		return manifestFieldErr("created_at", "year %d outside 1-9999", y)
	}
	if m.KeyGroups == 0 {
		return manifestFieldErr("key_groups", "must be > 0")
	}
	opIDs := make(map[string]int, len(m.Operators))
	for i := range m.Operators {
		op := &m.Operators[i]
		if fe := m.validateOperator(op); fe != nil {
			return fe.under(fmt.Sprintf("operators[%d]", i))
		}
		if prev, dup := opIDs[op.ID]; dup {
			return manifestFieldErr(fmt.Sprintf("operators[%d].id", i), "%q repeats operators[%d].id", op.ID, prev)
		}
		opIDs[op.ID] = i
	}
	sources := make(map[string]int, len(m.Sources))
	for i, s := range m.Sources {
		prefix := fmt.Sprintf("sources[%d]", i)
		if fe := checkManifestID("source", s.Source); fe != nil {
			return fe.under(prefix)
		}
		if prev, dup := sources[s.Source]; dup {
			return manifestFieldErr(prefix+".source", "%q repeats sources[%d].source", s.Source, prev)
		}
		sources[s.Source] = i
		if len(s.Position) == 0 {
			return manifestFieldErr(prefix+".position", "missing")
		}
		if fe := checkManifestJSON("position", s.Position); fe != nil {
			return fe.under(prefix)
		}
	}
	if m.Txlog != nil {
		if fe := checkManifestStream(m.Txlog.Stream); fe != nil {
			return fe.under("txlog")
		}
	}
	type txnKey struct{ output, id string }
	txns := make(map[txnKey]int, len(m.Pending))
	for i, p := range m.Pending {
		prefix := fmt.Sprintf("pending[%d]", i)
		if fe := checkManifestID("output", p.Output); fe != nil {
			return fe.under(prefix)
		}
		if fe := checkManifestID("txn_id", p.TxnID); fe != nil {
			return fe.under(prefix)
		}
		k := txnKey{p.Output, p.TxnID}
		if prev, dup := txns[k]; dup {
			return manifestFieldErr(prefix+".txn_id", "%q of output %q repeats pending[%d]", p.TxnID, p.Output, prev)
		}
		txns[k] = i
		if len(p.Data) > 0 {
			if fe := checkManifestJSON("data", p.Data); fe != nil {
				return fe.under(prefix)
			}
		}
	}
	return nil
}

func (m *Manifest) validateOperator(op *OperatorState) *FieldError {
	if fe := checkManifestID("id", op.ID); fe != nil {
		return fe
	}
	names := make(map[string]int, len(op.States))
	for i, s := range op.States {
		prefix := fmt.Sprintf("states[%d]", i)
		if fe := checkManifestID("name", s.Name); fe != nil {
			return fe.under(prefix)
		}
		if prev, dup := names[s.Name]; dup {
			return manifestFieldErr(prefix+".name", "%q repeats states[%d].name", s.Name, prev)
		}
		names[s.Name] = i
		switch s.Kind {
		case StateKindValue, StateKindMap, StateKindList, StateKindReducing, StateKindAggregating:
		default:
			return manifestFieldErr(prefix+".kind", "%q is not one of value, map, list, reducing, aggregating", truncateForError(s.Kind))
		}
		if fe := checkManifestID("codec", s.Codec); fe != nil {
			return fe.under(prefix)
		}
		if s.TTLMillis < 0 {
			return manifestFieldErr(prefix+".ttl_millis", "%d is negative", s.TTLMillis)
		}
	}
	for i := range op.Ranges {
		r := &op.Ranges[i]
		prefix := fmt.Sprintf("ranges[%d]", i)
		if r.Start > r.End {
			return manifestFieldErr(prefix+".start", "%d is above end %d", r.Start, r.End)
		}
		if r.End >= m.KeyGroups {
			return manifestFieldErr(prefix+".end", "%d is outside key groups [0,%d)", r.End, m.KeyGroups)
		}
		if i > 0 && r.Start <= op.Ranges[i-1].End {
			prev := op.Ranges[i-1]
			return manifestFieldErr(prefix+".start", "range [%d,%d] overlaps or precedes ranges[%d] [%d,%d]; ranges must be sorted and disjoint",
				r.Start, r.End, i-1, prev.Start, prev.End)
		}
		for j := range r.Layers {
			if fe := m.validateLayer(r.Layers, j); fe != nil {
				return fe.under(fmt.Sprintf("%s.layers[%d]", prefix, j))
			}
		}
	}
	return nil
}

func (m *Manifest) validateLayer(layers []SegmentRef, j int) *FieldError {
	l := &layers[j]
	if !IsSegmentHash(l.Hash) {
		return manifestFieldErr("hash", "%q is not 64 lowercase hex digits", truncateForError(l.Hash))
	}
	if l.Size < 0 {
		return manifestFieldErr("size", "%d is negative", l.Size)
	}
	want := LayerDelta
	if j == 0 {
		want = LayerBase
	}
	if l.Kind != want {
		return manifestFieldErr("kind", "%q at position %d, want %q (a base first, then deltas)", truncateForError(l.Kind), j, want)
	}
	if l.Checkpoint == 0 || l.Checkpoint > m.CheckpointID {
		return manifestFieldErr("checkpoint", "%d is outside [1,%d]", l.Checkpoint, m.CheckpointID)
	}
	if j > 0 && l.Checkpoint < layers[j-1].Checkpoint {
		return manifestFieldErr("checkpoint", "%d is below the previous layer's %d", l.Checkpoint, layers[j-1].Checkpoint)
	}
	return nil
}

// checkManifestID applies the identifier rule. Control characters are
// refused because ids end up in terminal tables, logs and metric labels.
func checkManifestID(field, s string) *FieldError {
	switch {
	case s == "":
		return manifestFieldErr(field, "empty")
	case len(s) > MaxIDLen:
		return manifestFieldErr(field, "%d bytes, limit %d", len(s), MaxIDLen)
	case !utf8.ValidString(s):
		return manifestFieldErr(field, "not valid UTF-8")
	}
	// C0 controls and DEL are single bytes in UTF-8 and never occur inside
	// a multi-byte sequence, so a byte scan finds them.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return manifestFieldErr(field, "control character %U in %q", rune(c), truncateForError(s))
		}
	}
	return nil
}

// checkManifestStream applies the identifier rule plus what a single path
// element under txlog/ needs.
func checkManifestStream(s string) *FieldError {
	if fe := checkManifestID("stream", s); fe != nil {
		return fe
	}
	if s == "." || s == ".." || strings.ContainsAny(s, `/\`) {
		return manifestFieldErr("stream", "%q is not a single path element", truncateForError(s))
	}
	return nil
}

// checkManifestJSON requires valid JSON in UTF-8; encoding/json accepts
// invalid UTF-8 inside strings, which would not survive other readers.
func checkManifestJSON(field string, raw json.RawMessage) *FieldError {
	if !json.Valid(raw) {
		return manifestFieldErr(field, "not valid JSON")
	}
	if !utf8.Valid(raw) {
		return manifestFieldErr(field, "not valid UTF-8")
	}
	return nil
}

func isJSONNumber(raw json.RawMessage) bool {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal(raw, &n) == nil
}

// describeRaw renders a raw envelope value for an error message, shortened
// so that a huge damaged field does not make a huge error.
func describeRaw(raw json.RawMessage, present bool) string {
	if !present {
		return "missing"
	}
	return truncateForError(string(raw))
}

func truncateForError(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// IsSegmentHash reports whether s is a segment hash as manifests store it:
// exactly 64 lowercase hex digits (a SHA-256).
func IsSegmentHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// LogicalBytes is the size of every segment layer the manifest lists, as a
// restore reads them: a segment shared by several ranges counts once per
// range.
func (m *Manifest) LogicalBytes() int64 {
	var n int64
	for _, op := range m.Operators {
		for _, rs := range op.Ranges {
			for _, l := range rs.Layers {
				n += l.Size
			}
		}
	}
	return n
}
