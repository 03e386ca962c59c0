package format

import (
	"encoding/binary"
	"fmt"
)

// A mutations record (RecordMutations) holds several state changes of one
// operator's state in one frame: one LSN, one time, one checksum and the
// names once, where mutation records repeat them per change. A writer
// that logs every change of a busy operator uses it to cut the log's size
// and cost (docs/FORMAT.md, "Transaction log record").
//
// Its Batch is the entries one after the other, each encoded as the last
// five fields of a mutation record: key group uvarint, key bytes, delete
// u8, value bytes, expires_at varint.

// AppendMutationsHead appends the tail of a mutations record up to its
// entries: epoch, operator and state. The caller appends entries with
// AppendMutationEntry, and must have checked the names with
// CheckRecordName; the record is framed by AppendFramedRecord, and must
// hold at least one entry and at most MaxRecordTail bytes of tail.
func AppendMutationsHead(dst []byte, epoch uint64, operator, state string) []byte {
	dst = binary.AppendUvarint(dst, epoch)
	dst = appendRecordBytes(dst, operator)
	return appendRecordBytes(dst, state)
}

// AppendMutationEntry appends one entry of a mutations record. A delete
// ignores value and expiresAt.
func AppendMutationEntry(dst []byte, keyGroup uint32, key, value []byte, expiresAt int64, del bool) []byte {
	if del {
		value, expiresAt = nil, 0
	}
	dst = binary.AppendUvarint(dst, uint64(keyGroup))
	dst = appendRecordBytes(dst, key)
	if del {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = appendRecordBytes(dst, value)
	return binary.AppendVarint(dst, expiresAt)
}

// MutationEntrySize bounds what AppendMutationEntry appends for a key and
// value of these lengths.
func MutationEntrySize(key, value int) int {
	return key + value + 4*binary.MaxVarintLen64 + 1
}

// Mutations calls fn with each state change r holds: r itself for a
// mutation record; for a mutations record, one mutation record per entry,
// with r's LSN, time, epoch, operator and state. The record passed is
// reused from call to call and aliases r.Batch. A damaged entry stops it
// with an error naming the entry; other record types yield nothing.
func (r *Record) Mutations(fn func(*Record) error) error {
	switch r.Type {
	case RecordMutation:
		return fn(r)
	case RecordMutations:
	default:
		return nil
	}
	m := Record{Type: RecordMutation, LSN: r.LSN, Time: r.Time, Epoch: r.Epoch, Operator: r.Operator, State: r.State}
	c := recordCursor{b: r.Batch}
	for i := 0; c.off < len(c.b); i++ {
		m.KeyGroup, m.Key, m.Value, m.ExpiresAt, m.Delete = 0, nil, nil, 0, false
		c.mutationEntry(&m)
		if c.err != nil {
			return fmt.Errorf("%w: mutations entry %d: %s at batch offset %d: %v", ErrMalformed, i, c.field, c.at, c.err)
		}
		if m.Delete && (len(m.Value) > 0 || m.ExpiresAt != 0) {
			return fmt.Errorf("%w: mutations entry %d: delete carries a value or an expiry", ErrMalformed, i)
		}
		if err := fn(&m); err != nil {
			return err
		}
	}
	return nil
}

// mutationEntry reads the fields a mutation record and a mutations entry
// share into m.
func (c *recordCursor) mutationEntry(m *Record) {
	kg := c.uvarint("key group")
	if c.err == nil && kg > 1<<32-1 {
		c.fail("key group", "%d does not fit 32 bits", kg)
	}
	m.KeyGroup = uint32(kg)
	m.Key = c.lenBytes("key")
	switch flag := c.u8("delete flag"); flag {
	case 0:
	case 1:
		m.Delete = true
	default:
		c.fail("delete flag", "%d is not 0 or 1", flag)
	}
	m.Value = c.lenBytes("value")
	m.ExpiresAt = c.varint("expires at")
}
