package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"
)

// Record format, versions 1 and 2. All integers are unsigned varints; times
// are Unix milliseconds, durations milliseconds.
//
//	byte    format version: 1 without a CSRF secret, 2 with one
//	byte    flags (flagMoved: the id was rotated away; read-only grace copy;
//	        flagOwner: the owner fields below are present)
//	uvarint created, deadline (absolute), idle override (0: none), written
//	uvarint write version (incremented by every save)
//	        version 2 only: uvarint len (always csrfLen), the CSRF secret (csrf.go)
//	        flagOwner only: uvarint len, owner; uvarint len, user agent;
//	        uvarint len, IP address (the last two empty unless Config.Devices)
//	uvarint number of values, then per value: uvarint len, key, uvarint len, encoded value
//	uvarint number of flash messages, then the same as values
//
// A record without a CSRF secret is written as version 1, byte for byte what
// the library wrote before version 2 existed, so apps that do not use the
// CSRF protection write what they always wrote, and older records still load.
// A grace copy (flagMoved) is always version 1: rotation leaves the old
// secret behind (graceCopy). A record without an owner has no flagOwner and
// no owner fields, so it too is what earlier releases wrote; one with an
// owner reads as no session in a release before owners existed (it refuses
// flags it does not know).
//
// Values stay encoded until read: a value nobody reads is neither decoded nor
// re-encoded.
const (
	recordVersion     = 1 // without a CSRF secret
	recordVersionCSRF = 2 // with one
	flagMoved         = 1 << 0
	flagOwner         = 1 << 1
	knownFlags        = flagMoved | flagOwner
	maxEntries        = 1 << 16
)

var errRecord = errors.New("session: malformed record")

// entry is one value or flash message: encoded (raw), decoded (has), or both.
type entry[T any] struct {
	key string
	raw []byte // nil when v was set and is not yet encoded
	v   T
	has bool // v holds the decoded value
}

type record[V, F any] struct {
	flags    byte
	created  int64 // ms
	deadline int64 // ms
	idle     int64 // ms; 0: the configured idle timeout
	written  int64 // ms
	version  uint64
	csrf     []byte // the CSRF secret (csrfLen bytes), or nil; never changed in place
	owner    string // SetOwner; "" when none (flagOwner is set on encoding)
	device   string // the user agent and IP address of the owner's latest write (Config.Devices), encoded as in the record (see agentIP), or ""
	vals     []entry[V]
	flash    []entry[F]
}

func (r *record[V, F]) moved() bool { return r.flags&flagMoved != 0 }

// idleTimeout returns the record's idle timeout: its override, else def.
func (r *record[V, F]) idleTimeout(def time.Duration) time.Duration {
	if r.idle > 0 {
		return time.Duration(r.idle) * time.Millisecond
	}
	return def
}

// ttl returns how long the record should live from now: the earlier of its
// idle timeout (def without an override) and its absolute deadline. It is
// the one place a record's time to live is computed.
func (r *record[V, F]) ttl(now time.Time, def time.Duration) time.Duration {
	return min(r.idleTimeout(def), time.UnixMilli(r.deadline).Sub(now))
}

// decodeRecord parses data into r, reusing the capacity of r's entry slices.
// The entries' keys and raw bytes alias data, which must not change
// afterwards (the Store contract). It never panics on any input.
func decodeRecord[V, F any](data []byte, r *record[V, F]) error {
	if len(data) < 2 || data[0] != recordVersion && data[0] != recordVersionCSRF {
		return errRecord
	}
	d := decoder{b: data[2:]}
	r.flags = data[1]
	r.created = int64(d.uvarint())
	r.deadline = int64(d.uvarint())
	r.idle = int64(d.uvarint())
	r.written = int64(d.uvarint())
	r.version = d.uvarint()
	r.csrf = nil
	if data[0] == recordVersionCSRF {
		if r.csrf = d.bytes(); len(r.csrf) != csrfLen {
			return errRecord
		}
	}
	r.owner, r.device = "", ""
	if r.flags&flagOwner != 0 {
		r.owner = d.str()
		dev := d.b
		d.bytes()
		d.bytes()
		if r.owner == "" || d.bad {
			return errRecord
		}
		if n := len(dev) - len(d.b); n > 2 { // two empty strings are none
			r.device = unsafe.String(unsafe.SliceData(dev), n)
		}
	}
	r.vals = decodeEntries(&d, r.vals[:0])
	r.flash = decodeEntries(&d, r.flash[:0])
	// Flags this release does not know mean a newer release wrote the
	// record: reading it as if they were not there could lose what they
	// mean, and writing it back would drop them.
	if d.bad || len(d.b) != 0 || r.flags&^knownFlags != 0 || r.created < 0 || r.deadline < 0 || r.idle < 0 || r.written < 0 {
		return errRecord
	}
	return nil
}

func decodeEntries[T any](d *decoder, es []entry[T]) []entry[T] {
	n := d.uvarint()
	if n == 0 || d.bad {
		return nil
	}
	if n > maxEntries || n > uint64(len(d.b))/2 { // every entry takes at least two bytes
		d.bad = true
		return nil
	}
	es = slices.Grow(es, int(n))[:n]
	for i := range es {
		k := d.bytes()
		es[i] = entry[T]{key: unsafe.String(unsafe.SliceData(k), len(k)), raw: d.bytes()}
		if d.bad {
			return nil
		}
		if es[i].raw == nil {
			es[i].raw = []byte{}
		}
	}
	return es
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

// agentIP returns the user agent and IP address in r.device.
func (r *record[V, F]) agentIP() (agent, ip string) {
	d := decoder{b: unsafe.Slice(unsafe.StringData(r.device), len(r.device))}
	return d.str(), d.str()
}

// device returns agent and ip encoded for record.device.
func device(agent, ip string) string {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(agent)+len(ip))
	b = binary.AppendUvarint(b, uint64(len(agent)))
	b = append(b, agent...)
	b = binary.AppendUvarint(b, uint64(len(ip)))
	return string(append(b, ip...))
}

// str returns the next length-prefixed bytes as a string that aliases them.
func (d *decoder) str() string {
	b := d.bytes()
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

// encodeRecord returns r encoded in a buffer of exactly its size (a store
// may keep it as it is), encoding every entry that has no raw bytes with c
// (an error wraps ErrEncode). Encoded entries keep their new raw bytes, a
// slice of the record itself.
func encodeRecord[V, F any](c Codec, r *record[V, F]) ([]byte, error) {
	// Values not encoded yet are encoded first, each after a 4-byte length,
	// into a pooled buffer; then the record is sized and copied together.
	buf := scratch.Get().(*[]byte)
	fresh, err := encodeNew(c, (*buf)[:0], r.vals)
	if err == nil {
		fresh, err = encodeNew(c, fresh, r.flash)
	}
	defer func() {
		if cap(fresh) <= 64<<10 {
			*buf = fresh[:0]
			scratch.Put(buf)
		}
	}()
	if err != nil {
		return nil, err
	}
	n := 2 + uvarintLen(uint64(r.created)) + uvarintLen(uint64(r.deadline)) + uvarintLen(uint64(r.idle)) +
		uvarintLen(uint64(r.written)) + uvarintLen(r.version)
	if r.csrf != nil {
		n += uvarintLen(uint64(len(r.csrf))) + len(r.csrf)
	}
	flags := r.flags &^ flagOwner
	if r.owner != "" {
		flags |= flagOwner
		n += uvarintLen(uint64(len(r.owner))) + len(r.owner) + max(len(r.device), 2)
	}
	rest := fresh
	n += entriesSize(r.vals, &rest) + entriesSize(r.flash, &rest)

	b := make([]byte, 0, n)
	if r.csrf == nil {
		b = append(b, recordVersion, flags)
	} else {
		b = append(b, recordVersionCSRF, flags)
	}
	b = binary.AppendUvarint(b, uint64(r.created))
	b = binary.AppendUvarint(b, uint64(r.deadline))
	b = binary.AppendUvarint(b, uint64(r.idle))
	b = binary.AppendUvarint(b, uint64(r.written))
	b = binary.AppendUvarint(b, r.version)
	if r.csrf != nil {
		b = binary.AppendUvarint(b, uint64(len(r.csrf)))
		b = append(b, r.csrf...)
	}
	if r.owner != "" {
		b = binary.AppendUvarint(b, uint64(len(r.owner)))
		b = append(b, r.owner...)
		if r.device == "" {
			b = append(b, 0, 0)
		}
		b = append(b, r.device...)
	}
	rest = fresh
	b = appendEntries(b, r.vals, &rest)
	return appendEntries(b, r.flash, &rest), nil
}

// entriesSize estimates the encoded size of es, guessing for values not yet
// encoded.
// graceCopy returns raw, a record as stored, as the read-only copy its id
// keeps for the rotation grace: marked flagMoved, without its CSRF secret,
// and with its deadline cut to until, so that it reads as no session after
// the grace even if a store keeps it longer. The secret stays behind so that
// no token issued before a rotation verifies after it, not even with the old
// cookie. raw that does not decode (it always does: it was read or written
// by this request) gives a tombstone.
func graceCopy(raw []byte, until int64) []byte {
	var rec record[struct{}, struct{}]
	if decodeRecord(raw, &rec) != nil {
		return tombstone()
	}
	rec.flags |= flagMoved
	rec.csrf = nil
	rec.deadline = min(rec.deadline, until)
	data, err := encodeRecord(nil, &rec) // every entry has its raw bytes: no codec is needed
	if err != nil {
		return tombstone()
	}
	return data
}

// tombstone returns the record that replaces an id that RegenerateID(true)
// moved away from, until it expires: a record marked moved whose deadline has
// passed, with nothing in it. It reads as no session, and no save that read
// the old record can write it again (its compare-and-set fails).
func tombstone() []byte { return tombstoneRecord }

var tombstoneRecord = []byte{recordVersion, flagMoved, 0, 0, 0, 0, 0, 0, 0} // never changed

// encodeNew appends to buf, for each entry of es without raw bytes, its
// value encoded with c after its length as 4 bytes.
func encodeNew[T any](c Codec, buf []byte, es []entry[T]) ([]byte, error) {
	for i := range es {
		e := &es[i]
		if e.raw != nil {
			continue
		}
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		var err error
		if a, ok := c.(Appender); ok {
			buf, err = a.AppendMarshal(buf, &e.v)
		} else {
			var raw []byte
			raw, err = c.Marshal(&e.v)
			buf = append(buf, raw...)
		}
		if err != nil {
			return buf, fmt.Errorf("%w: key %q: %w", ErrEncode, e.key, err)
		}
		binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	}
	return buf, nil
}

// rawOf returns e's raw bytes: its own, or the next value encodeNew wrote to
// *fresh, which it consumes.
func rawOf[T any](e *entry[T], fresh *[]byte) []byte {
	if e.raw != nil {
		return e.raw
	}
	f := *fresh
	l := binary.LittleEndian.Uint32(f)
	*fresh = f[4+l:]
	return f[4 : 4+l]
}

// entriesSize returns the encoded size of es.
func entriesSize[T any](es []entry[T], fresh *[]byte) int {
	n := uvarintLen(uint64(len(es)))
	for i := range es {
		raw := rawOf(&es[i], fresh)
		n += uvarintLen(uint64(len(es[i].key))) + len(es[i].key) + uvarintLen(uint64(len(raw))) + len(raw)
	}
	return n
}

func appendEntries[T any](b []byte, es []entry[T], fresh *[]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i := range es {
		e := &es[i]
		b = binary.AppendUvarint(b, uint64(len(e.key)))
		b = append(b, e.key...)
		raw := rawOf(e, fresh)
		b = binary.AppendUvarint(b, uint64(len(raw)))
		b = append(b, raw...)
		e.raw = b[len(b)-len(raw) : len(b) : len(b)]
	}
	return b
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// find returns the index of the entry under key in es, or -1.
func find[T any](es []entry[T], key string) int {
	for i := range es {
		if es[i].key == key {
			return i
		}
	}
	return -1
}

// put returns es with e in place of the entry under e's key, or appended.
func put[T any](es []entry[T], e entry[T]) []entry[T] {
	if i := find(es, e.key); i >= 0 {
		es[i] = e
		return es
	}
	return append(es, e)
}

// scratch holds buffers that Appender codecs encode values into.
var scratch = sync.Pool{New: func() any { return new([]byte) }}
