package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf8"
)

// A transaction-log record is framed and checksummed on its own, so a log is
// a plain concatenation of records and a reader can stop at the first torn
// or damaged one:
//
//	+-------------+-------------+------------------------------------------+
//	| length  u32 | crc32c  u32 | body (length bytes)                      |
//	| LE          | LE, of body | type u8 | LSN uvarint | time varint |    |
//	|             |             | epoch uvarint | type-specific fields     |
//	+-------------+-------------+------------------------------------------+
//
// Strings and byte fields are a uvarint length followed by the bytes. Varints
// must be minimal. The full specification, with each type's fields, is in
// docs/FORMAT.md, section "Transaction log record".

// RecordHeaderSize is the size of a record's frame: body length and CRC32C.
const RecordHeaderSize = 8

// MaxRecordSize bounds a record's body length. It admits state values of
// several megabytes while keeping a reader's buffer bounded when a length
// field is damaged.
const MaxRecordSize = 16 << 20

// recordCRCTable is CRC32C (Castagnoli): hardware-accelerated on amd64 and
// arm64, and better at burst errors than IEEE.
var recordCRCTable = crc32.MakeTable(crc32.Castagnoli)

// RecordType says what a record means and which fields it carries.
type RecordType uint8

// Record types. The numbers are part of the format and are never reused.
const (
	// RecordEpochBegin opens a barrier epoch. Fields: the common header only.
	RecordEpochBegin RecordType = 1
	// RecordMutation is one state change: Operator, State, KeyGroup, Key,
	// Delete, Value, ExpiresAt. A delete carries no value and no expiry.
	RecordMutation RecordType = 2
	// RecordPosition is an input's position after the epoch's records:
	// Source, Position (opaque bytes owned by the input).
	RecordPosition RecordType = 3
	// RecordTxnPrepare is an output's two-phase-commit pre-commit: Output,
	// TxnID, Data (output-specific, e.g. a pending file path).
	RecordTxnPrepare RecordType = 4
	// RecordTxnCommit says the transaction was committed: Output, TxnID, Data.
	RecordTxnCommit RecordType = 5
	// RecordTxnAbort says the transaction was aborted: Output, TxnID, Data.
	RecordTxnAbort RecordType = 6
	// RecordEpochEnd closes an epoch; Checkpoint is the checkpoint (> 0)
	// whose barrier ended it.
	RecordEpochEnd RecordType = 7
	// RecordInput holds bytes an input read that cannot be read again
	// (standard input), logged before they are parsed: Source, Position
	// (input-owned: where Data starts in the input's stream), Data. A
	// record without Data marks a restart: the input's stream continues
	// with bytes that did not follow the earlier ones.
	RecordInput RecordType = 8
	// RecordMutations is several state changes of one operator's state,
	// logged together: Operator, State, Batch (the entries, see
	// AppendMutationEntry). They share the record's LSN, time and epoch;
	// Record.Mutations yields them one by one, as mutation records.
	RecordMutations RecordType = 9
)

// String returns the type's name as the CLI prints it.
func (t RecordType) String() string {
	switch t {
	case RecordEpochBegin:
		return "epoch-begin"
	case RecordMutation:
		return "mutation"
	case RecordPosition:
		return "position"
	case RecordTxnPrepare:
		return "txn-prepare"
	case RecordTxnCommit:
		return "txn-commit"
	case RecordTxnAbort:
		return "txn-abort"
	case RecordEpochEnd:
		return "epoch-end"
	case RecordInput:
		return "input"
	case RecordMutations:
		return "mutations"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Record is one transaction-log record. Type, LSN, Time and Epoch are common
// to all types; each type uses the other fields listed on its constant and
// leaves the rest zero. AppendRecord refuses a record that sets a field its
// type does not use, so that decoding returns exactly what was appended.
// Empty byte fields decode as nil.
type Record struct {
	Type  RecordType // what the record means
	LSN   uint64     // log sequence number, assigned by pkg/txlog
	Time  int64      // when the record was written, Unix nanoseconds
	Epoch uint64     // barrier epoch the record belongs to

	Operator  string // mutation: operator id
	State     string // mutation: state name
	KeyGroup  uint32 // mutation: key group of Key
	Key       []byte // mutation: user key; may be empty
	Value     []byte // mutation: new value; nil for a delete
	ExpiresAt int64  // mutation: expiry, Unix nanoseconds; 0 means never
	Delete    bool   // mutation: the key is deleted

	Source   string // position, input: input name
	Position []byte // position, input: input-owned position bytes

	Output string // txn-*: output name
	TxnID  string // txn-*: transaction id within the output
	Data   []byte // txn-*: output-specific bytes; input: the bytes read

	Checkpoint uint64 // epoch-end: checkpoint id, > 0

	Batch []byte // mutations: the encoded entries
}

// Clone returns a copy of r that shares no memory with it, for keeping a
// record returned by DecodeRecord or RecordReader.Next.
func (r *Record) Clone() *Record {
	c := *r
	c.Key = cloneBytes(r.Key)
	c.Value = cloneBytes(r.Value)
	c.Position = cloneBytes(r.Position)
	c.Data = cloneBytes(r.Data)
	c.Batch = cloneBytes(r.Batch)
	return &c
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// recordField bits name the type-specific fields, so that one table says
// which type uses what.
type recordField uint16

const (
	rfOperator recordField = 1 << iota
	rfState
	rfKeyGroup
	rfKey
	rfValue
	rfExpiresAt
	rfDelete
	rfSource
	rfPosition
	rfOutput
	rfTxnID
	rfData
	rfCheckpoint
	rfBatch
)

func recordFieldsOf(t RecordType) (recordField, bool) {
	switch t {
	case RecordEpochBegin:
		return 0, true
	case RecordMutation:
		return rfOperator | rfState | rfKeyGroup | rfKey | rfValue | rfExpiresAt | rfDelete, true
	case RecordPosition:
		return rfSource | rfPosition, true
	case RecordTxnPrepare, RecordTxnCommit, RecordTxnAbort:
		return rfOutput | rfTxnID | rfData, true
	case RecordEpochEnd:
		return rfCheckpoint, true
	case RecordInput:
		return rfSource | rfPosition | rfData, true
	case RecordMutations:
		return rfOperator | rfState | rfBatch, true
	}
	return 0, false
}

// setFields returns the type-specific fields that hold a non-zero value.
func (r *Record) setFields() recordField {
	var f recordField
	set := func(bit recordField, isSet bool) {
		if isSet {
			f |= bit
		}
	}
	set(rfOperator, r.Operator != "")
	set(rfState, r.State != "")
	set(rfKeyGroup, r.KeyGroup != 0)
	set(rfKey, len(r.Key) > 0)
	set(rfValue, len(r.Value) > 0)
	set(rfExpiresAt, r.ExpiresAt != 0)
	set(rfDelete, r.Delete)
	set(rfSource, r.Source != "")
	set(rfPosition, len(r.Position) > 0)
	set(rfOutput, r.Output != "")
	set(rfTxnID, r.TxnID != "")
	set(rfData, len(r.Data) > 0)
	set(rfCheckpoint, r.Checkpoint != 0)
	set(rfBatch, len(r.Batch) > 0)
	return f
}

// recordFieldName names a single field bit as the Record struct spells it.
func recordFieldName(bit recordField) string {
	switch bit {
	case rfOperator:
		return "Operator"
	case rfState:
		return "State"
	case rfKeyGroup:
		return "KeyGroup"
	case rfKey:
		return "Key"
	case rfValue:
		return "Value"
	case rfExpiresAt:
		return "ExpiresAt"
	case rfDelete:
		return "Delete"
	case rfSource:
		return "Source"
	case rfPosition:
		return "Position"
	case rfOutput:
		return "Output"
	case rfTxnID:
		return "TxnID"
	case rfData:
		return "Data"
	case rfBatch:
		return "Batch"
	case rfCheckpoint:
		return "Checkpoint"
	}
	return fmt.Sprintf("field(%#x)", uint16(bit))
}

// check applies the rules shared by the encoder and the decoder: a known
// type, required names present and well-formed, unused fields zero, a delete
// without value or expiry, an epoch-end with a checkpoint.
func (r *Record) check() error {
	used, ok := recordFieldsOf(r.Type)
	if !ok {
		return fmt.Errorf("%w: unknown record type %d", ErrMalformed, uint8(r.Type))
	}
	if extra := r.setFields() &^ used; extra != 0 {
		return fmt.Errorf("%w: field %s is not used by %s records", ErrMalformed, recordFieldName(extra&-extra), r.Type)
	}
	switch r.Type {
	case RecordMutation:
		if err := checkRecordName("operator", r.Operator); err != nil {
			return err
		}
		if err := checkRecordName("state", r.State); err != nil {
			return err
		}
		if r.Delete && (len(r.Value) > 0 || r.ExpiresAt != 0) {
			return fmt.Errorf("%w: delete mutation carries a value or an expiry", ErrMalformed)
		}
	case RecordMutations:
		if err := checkRecordName("operator", r.Operator); err != nil {
			return err
		}
		if err := checkRecordName("state", r.State); err != nil {
			return err
		}
		if len(r.Batch) == 0 {
			return fmt.Errorf("%w: mutations record without entries", ErrMalformed)
		}
		if err := r.Mutations(func(*Record) error { return nil }); err != nil {
			return err
		}
	case RecordPosition, RecordInput:
		if err := checkRecordName("source", r.Source); err != nil {
			return err
		}
	case RecordTxnPrepare, RecordTxnCommit, RecordTxnAbort:
		if err := checkRecordName("output", r.Output); err != nil {
			return err
		}
		if err := checkRecordName("txn id", r.TxnID); err != nil {
			return err
		}
	case RecordEpochEnd:
		if r.Checkpoint == 0 {
			return fmt.Errorf("%w: epoch-end without a checkpoint id", ErrMalformed)
		}
	}
	return nil
}

// checkRecordName applies the manifest's identifier rule, since operator,
// state, source and output names in the log must match the manifest's.
func checkRecordName(field, s string) error {
	if len(s) > MaxIDLen {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, field, len(s), MaxIDLen)
	}
	if fe := checkManifestID(field, s); fe != nil {
		return fe
	}
	return nil
}

// AppendRecord appends r's encoding to dst. It refuses, leaving dst as it
// was, a record that breaks the rules on Record (ErrMalformed) or whose body
// would exceed MaxRecordSize or whose names exceed MaxIDLen (ErrTooLarge).
func AppendRecord(dst []byte, r *Record) ([]byte, error) {
	if err := r.checkSize(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // the frame, filled below
	dst = append(dst, byte(r.Type))
	dst = binary.AppendUvarint(dst, r.LSN)
	dst = binary.AppendVarint(dst, r.Time)
	dst = appendRecordTail(dst, r)
	body := dst[start+RecordHeaderSize:]
	if len(body) > MaxRecordSize {
		return dst[:start], fmt.Errorf("format: append %s record lsn %d: body %d bytes, limit %d: %w",
			r.Type, r.LSN, len(body), MaxRecordSize, ErrTooLarge)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, recordCRCTable))
	return dst, nil
}

// MaxRecordTail bounds a record's tail (AppendRecordTail), so that any
// LSN and time frame it within MaxRecordSize.
const MaxRecordTail = MaxRecordSize - 1 - 2*binary.MaxVarintLen64

// AppendRecordTail appends the part of r's encoding after its LSN and
// time: the epoch and the type-specific fields. AppendFramedRecord frames
// it with an LSN and a time into exactly what AppendRecord encodes. It is
// for a writer that encodes records before they get their LSN (pkg/txlog,
// Log.SubmitTails), outside the lock that hands LSNs out. It refuses what
// AppendRecord refuses, and a tail over MaxRecordSize - 21 bytes.
func AppendRecordTail(dst []byte, r *Record) ([]byte, error) {
	if err := r.checkSize(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = appendRecordTail(dst, r)
	if n := len(dst) - start; n > MaxRecordTail {
		return dst[:start], fmt.Errorf("format: append %s record tail: %d bytes, limit %d: %w", r.Type, n, MaxRecordTail, ErrTooLarge)
	}
	return dst, nil
}

// CheckRecordName reports whether s may be an operator, state, source or
// output name in a record (the manifest's identifier rule), as
// AppendRecord checks it. A writer that checks a name once may then use
// AppendMutationsHead, which does not check it again.
func CheckRecordName(field, s string) error {
	return checkRecordName(field, s)
}

// AppendFramedRecord appends the record of type t with LSN lsn and time
// unixNano whose tail AppendRecordTail encoded.
func AppendFramedRecord(dst []byte, t RecordType, lsn uint64, unixNano int64, tail []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = append(dst, byte(t))
	dst = binary.AppendUvarint(dst, lsn)
	dst = binary.AppendVarint(dst, unixNano)
	dst = append(dst, tail...)
	body := dst[start+RecordHeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, recordCRCTable))
	return dst
}

// checkSize applies the rules on Record and refuses, before anything is
// copied, a payload that cannot fit.
func (r *Record) checkSize() error {
	if err := r.check(); err != nil {
		return fmt.Errorf("format: append %s record lsn %d: %w", r.Type, r.LSN, err)
	}
	if payload := len(r.Key) + len(r.Value) + len(r.Position) + len(r.Data) + len(r.Batch); payload > MaxRecordSize {
		return fmt.Errorf("format: append %s record lsn %d: payload %d bytes, limit %d: %w",
			r.Type, r.LSN, payload, MaxRecordSize, ErrTooLarge)
	}
	return nil
}

// appendRecordTail appends r's epoch and type-specific fields.
func appendRecordTail(dst []byte, r *Record) []byte {
	dst = binary.AppendUvarint(dst, r.Epoch)
	switch r.Type {
	case RecordMutation:
		// The fields after the names are a mutations record's entry.
		dst = appendRecordBytes(dst, r.Operator)
		dst = appendRecordBytes(dst, r.State)
		dst = AppendMutationEntry(dst, r.KeyGroup, r.Key, r.Value, r.ExpiresAt, r.Delete)
	case RecordPosition:
		dst = appendRecordBytes(dst, r.Source)
		dst = appendRecordBytes(dst, r.Position)
	case RecordTxnPrepare, RecordTxnCommit, RecordTxnAbort:
		dst = appendRecordBytes(dst, r.Output)
		dst = appendRecordBytes(dst, r.TxnID)
		dst = appendRecordBytes(dst, r.Data)
	case RecordEpochEnd:
		dst = binary.AppendUvarint(dst, r.Checkpoint)
	case RecordInput:
		dst = appendRecordBytes(dst, r.Source)
		dst = appendRecordBytes(dst, r.Position)
		dst = appendRecordBytes(dst, r.Data)
	case RecordMutations:
		dst = appendRecordBytes(dst, r.Operator)
		dst = appendRecordBytes(dst, r.State)
		dst = append(dst, r.Batch...)
	}
	return dst
}

func appendRecordBytes[T string | []byte](dst []byte, b T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// DecodeRecord decodes the record at the front of b and returns it with the
// number of bytes it took. The record's byte slices alias b.
//
// Errors are *CorruptError with Offset 0 (the record's start in b):
// ErrTruncated when b ends before the record does (a torn tail),
// ErrTooLarge when the length field exceeds MaxRecordSize (nothing is
// allocated for it), ErrChecksum when the body does not match its CRC32C,
// and ErrMalformed for a body that passes its CRC but breaks the format: an
// unknown type, a field running past the body, a non-minimal varint,
// trailing bytes, or a rule on Record.
func DecodeRecord(b []byte) (r Record, n int, err error) {
	if len(b) < RecordHeaderSize {
		return Record{}, 0, corrupt("", 0, "record header", ErrTruncated, "%d of %d header bytes", len(b), RecordHeaderSize)
	}
	length, sum, cerr := parseRecordHeader(b[:RecordHeaderSize])
	if cerr != nil {
		return Record{}, 0, cerr
	}
	if uint64(len(b)-RecordHeaderSize) < uint64(length) {
		return Record{}, 0, corrupt("", 0, "record", ErrTruncated, "body of %d bytes, %d present", length, len(b)-RecordHeaderSize)
	}
	n = RecordHeaderSize + int(length)
	if cerr := decodeRecordBody(b[RecordHeaderSize:n], sum, &r); cerr != nil {
		return Record{}, 0, cerr
	}
	return r, n, nil
}

// parseRecordHeader checks the frame's length field before anyone allocates
// or reads for it.
func parseRecordHeader(h []byte) (length, sum uint32, err *CorruptError) {
	length = binary.LittleEndian.Uint32(h)
	sum = binary.LittleEndian.Uint32(h[4:])
	if length > MaxRecordSize {
		return 0, 0, corrupt("", 0, "record header", ErrTooLarge, "body length %d, limit %d", length, MaxRecordSize)
	}
	if length == 0 {
		return 0, 0, corrupt("", 0, "record header", ErrMalformed, "body length 0")
	}
	return length, sum, nil
}

// decodeRecordBody verifies body against sum and decodes it into r.
func decodeRecordBody(body []byte, sum uint32, r *Record) *CorruptError {
	if got := crc32.Checksum(body, recordCRCTable); got != sum {
		return corrupt("", 0, "record", ErrChecksum, "stored crc32c %08x, computed %08x", sum, got)
	}
	c := recordCursor{b: body}
	*r = Record{Type: RecordType(c.u8("type"))}
	if _, ok := recordFieldsOf(r.Type); !ok {
		return corrupt("", 0, "record", ErrMalformed, "unknown record type %d", uint8(r.Type))
	}
	r.LSN = c.uvarint("lsn")
	r.Time = c.varint("time")
	r.Epoch = c.uvarint("epoch")
	switch r.Type {
	case RecordMutation:
		r.Operator = c.str("operator")
		r.State = c.str("state")
		c.mutationEntry(r)
	case RecordPosition:
		r.Source = c.str("source")
		r.Position = c.lenBytes("position")
	case RecordTxnPrepare, RecordTxnCommit, RecordTxnAbort:
		r.Output = c.str("output")
		r.TxnID = c.str("txn id")
		r.Data = c.lenBytes("data")
	case RecordEpochEnd:
		r.Checkpoint = c.uvarint("checkpoint")
	case RecordInput:
		r.Source = c.str("source")
		r.Position = c.lenBytes("position")
		r.Data = c.lenBytes("data")
	case RecordMutations:
		r.Operator = c.str("operator")
		r.State = c.str("state")
		if c.err == nil {
			// The entries run to the end of the body; check parses them.
			r.Batch = c.b[c.off:]
			c.off = len(c.b)
		}
	}
	if c.err != nil {
		return c.corrupt()
	}
	if c.off != len(body) {
		return corrupt("", 0, "record", ErrMalformed, "%d trailing bytes after %s record", len(body)-c.off, r.Type)
	}
	if err := r.check(); err != nil {
		return &CorruptError{Offset: 0, Record: "record", Err: err}
	}
	return nil
}

// recordCursor reads a body's fields. The first failure sticks and later
// reads return zero values, so the decoder checks once per group of fields.
type recordCursor struct {
	b     []byte
	off   int
	err   error
	field string
	at    int
}

func (c *recordCursor) fail(field, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
		c.field = field
		c.at = c.off
	}
}

func (c *recordCursor) corrupt() *CorruptError {
	return corrupt("", 0, "record", ErrMalformed, "%s at body offset %d: %v", c.field, c.at, c.err)
}

func (c *recordCursor) u8(field string) byte {
	if c.err != nil {
		return 0
	}
	if c.off >= len(c.b) {
		c.fail(field, "runs past the end of the body")
		return 0
	}
	v := c.b[c.off]
	c.off++
	return v
}

func (c *recordCursor) uvarint(field string) uint64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Uvarint(c.b[c.off:])
	switch {
	case n == 0:
		c.fail(field, "varint runs past the end of the body")
		return 0
	case n < 0:
		c.fail(field, "varint overflows 64 bits")
		return 0
	case n > 1 && c.b[c.off+n-1] == 0:
		// A trailing zero group adds nothing: the encoding is not minimal,
		// and accepting it would give one record two encodings.
		c.fail(field, "non-minimal varint")
		return 0
	}
	c.off += n
	return v
}

func (c *recordCursor) varint(field string) int64 {
	u := c.uvarint(field)
	// Zigzag, as binary.AppendVarint writes it.
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// lenBytes returns a length-prefixed field aliasing the body, nil when empty.
// The length is checked against what remains of the body, which is itself
// bounded by MaxRecordSize.
func (c *recordCursor) lenBytes(field string) []byte {
	start := c.off
	n := c.uvarint(field)
	if c.err != nil {
		return nil
	}
	if left := len(c.b) - c.off; n > uint64(left) {
		c.off = start
		c.fail(field, "length %d exceeds the %d bytes left in the body", n, left)
		return nil
	}
	if n == 0 {
		return nil
	}
	v := c.b[c.off : c.off+int(n) : c.off+int(n)]
	c.off += int(n)
	return v
}

func (c *recordCursor) str(field string) string {
	start := c.off
	b := c.lenBytes(field)
	if c.err == nil && len(b) > MaxIDLen {
		c.off = start
		c.fail(field, "%d bytes, limit %d", len(b), MaxIDLen)
		return ""
	}
	if c.err == nil && !utf8.Valid(b) {
		c.off = start
		c.fail(field, "not valid UTF-8")
		return ""
	}
	return string(b)
}

// RecordReader reads records one after another from a stream, such as a
// transaction-log segment file.
type RecordReader struct {
	r    io.Reader
	name string
	off  int64
	hdr  [RecordHeaderSize]byte
	buf  []byte
	rec  Record
	err  error
}

// NewRecordReader returns a reader of the records in r. name is used in
// errors only.
func NewRecordReader(r io.Reader, name string) *RecordReader {
	return &RecordReader{r: r, name: name}
}

// Offset returns the offset just past the last record Next returned: after
// an ErrTruncated error, where a writer may cut the torn tail off.
func (rr *RecordReader) Offset() int64 { return rr.off }

// Next returns the next record. The record and its byte slices are valid
// until the next call to Next; use Record.Clone to keep one.
//
// At a clean end of input (between records) Next returns io.EOF. Damage is a
// *CorruptError with the file name and the record's byte offset, as described
// on DecodeRecord; ErrTruncated means the input ended inside a record. Read
// errors of the underlying reader are returned wrapped. Errors are sticky.
//
// The body buffer grows with the bytes actually read, not with the length
// field, so a damaged length near MaxRecordSize costs memory only if the
// input really is that long.
func (rr *RecordReader) Next() (*Record, error) {
	if rr.err != nil {
		return nil, rr.err
	}
	rec, err := rr.next()
	if err != nil {
		rr.err = err
		return nil, err
	}
	return rec, nil
}

func (rr *RecordReader) next() (*Record, error) {
	n, err := io.ReadFull(rr.r, rr.hdr[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, rr.locate(corrupt("", 0, "record header", ErrTruncated, "%d of %d header bytes", n, RecordHeaderSize))
	case err != nil:
		return nil, fmt.Errorf("format: read %s at offset %d: %w", rr.name, rr.off, err)
	}
	length, sum, cerr := parseRecordHeader(rr.hdr[:])
	if cerr != nil {
		return nil, rr.locate(cerr)
	}
	if err := rr.readBody(int(length)); err != nil {
		return nil, err
	}
	if cerr := decodeRecordBody(rr.buf, sum, &rr.rec); cerr != nil {
		return nil, rr.locate(cerr)
	}
	rr.off += RecordHeaderSize + int64(length)
	return &rr.rec, nil
}

// readBody fills rr.buf with exactly n bytes, growing it at most by doubling
// what has already arrived.
func (rr *RecordReader) readBody(n int) error {
	const minChunk = 64 << 10
	rr.buf = rr.buf[:0]
	for len(rr.buf) < n {
		chunk := min(n-len(rr.buf), max(len(rr.buf), minChunk))
		have := len(rr.buf)
		if cap(rr.buf)-have < chunk {
			grown := make([]byte, have, have+chunk)
			copy(grown, rr.buf)
			rr.buf = grown
		}
		m, err := io.ReadFull(rr.r, rr.buf[have:have+chunk])
		rr.buf = rr.buf[:have+m]
		switch {
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			return rr.locate(corrupt("", 0, "record", ErrTruncated, "body of %d bytes, %d present", n, len(rr.buf)))
		case err != nil:
			return fmt.Errorf("format: read %s at offset %d: %w", rr.name, rr.off+RecordHeaderSize+int64(len(rr.buf)), err)
		}
	}
	return nil
}

// locate turns a decoder error, positioned relative to the record, into one
// naming the file and the record's offset in it.
func (rr *RecordReader) locate(e *CorruptError) *CorruptError {
	e.File = rr.name
	e.Offset += rr.off
	return e
}
