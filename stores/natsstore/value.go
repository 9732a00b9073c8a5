package natsstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
)

// A value is an 8-byte big-endian expiry (Unix ms) and a kind byte, then
// either the data (kindInline) or a chunk manifest (kindChunked): the chunk
// set's id (8 bytes), the number of chunks (4 bytes) and the SHA-256 of the
// data.
const (
	headerLen   = 9
	kindInline  = 'i'
	kindChunked = 'c'
	manifestLen = 8 + 4 + sha256.Size
)

// chunks names a chunk set; the zero value is "no chunks".
type chunks struct {
	id uint64
	n  uint32
}

// key returns the key of chunk i of the set, for the record under key.
func (c chunks) key(key string, i uint32) string {
	return key + "." + strconv.FormatUint(c.id, 36) + "." + strconv.FormatUint(uint64(i), 10)
}

// entry is the parsed value under a key.
type entry struct {
	rev     uint64 // the key's revision; 0 when the key holds no value
	valid   bool   // the value parsed (false for values the store did not write)
	expires int64  // Unix ms
	data    []byte // kindInline: the record
	chunks  chunks // kindChunked: where the record is
	sum     [sha256.Size]byte
}

// live reports whether e holds a record that has not expired at now.
func (e *entry) live(now time.Time) bool { return e.valid && e.expires > now.UnixMilli() }

// equal reports whether e's record is old, without reading chunks.
func (e *entry) equal(old []byte) bool {
	if e.chunks.n == 0 {
		return bytes.Equal(e.data, old)
	}
	return sha256.Sum256(old) == e.sum
}

// parse reads the value v of revision rev. A value the store did not write
// gives an entry that is not valid, which reads as no record.
func parse(rev uint64, v []byte) entry {
	e := entry{rev: rev}
	if len(v) < headerLen {
		return e
	}
	e.expires = int64(binary.BigEndian.Uint64(v))
	switch body := v[headerLen:]; v[8] {
	case kindInline:
		e.data, e.valid = body, true
	case kindChunked:
		if len(body) != manifestLen {
			return e
		}
		e.chunks = chunks{id: binary.BigEndian.Uint64(body), n: binary.BigEndian.Uint32(body[8:])}
		copy(e.sum[:], body[12:])
		e.valid = e.chunks.n > 0
	}
	return e
}

// inlineValue returns the value that holds data itself until expires (Unix
// ms).
func inlineValue(expires uint64, data []byte) []byte {
	v := make([]byte, headerLen+len(data))
	binary.BigEndian.PutUint64(v, expires)
	v[8] = kindInline
	copy(v[headerLen:], data)
	return v
}

// manifestValue returns the value that points to data, stored in the chunk
// set c, until expires (Unix ms).
func manifestValue(expires uint64, c chunks, data []byte) []byte {
	v := make([]byte, 0, headerLen+manifestLen)
	v = binary.BigEndian.AppendUint64(v, expires)
	v = append(v, kindChunked)
	v = binary.BigEndian.AppendUint64(v, c.id)
	v = binary.BigEndian.AppendUint32(v, c.n)
	sum := sha256.Sum256(data)
	return append(v, sum[:]...)
}
