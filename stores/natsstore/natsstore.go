// Package natsstore keeps sessions in a NATS JetStream key-value bucket, so
// every app instance connected to the NATS cluster shares them and the
// bucket's replicas survive the loss of a server.
//
//	nc, _ := nats.Connect(url, nats.MaxReconnects(-1))
//	js, _ := jetstream.New(nc)
//	kv, _ := natsstore.CreateBucket(ctx, js, "sessions", 7*24*time.Hour)
//	store, _ := natsstore.New(ctx, kv, natsstore.Config{})
//
// # TTL and the bucket
//
// A key-value bucket has one TTL for all its keys (KeyValueConfig.TTL, the
// stream's MaxAge): the server removes a value that long after it was
// written. Sessions have TTLs of their own, so the store keeps each record's
// absolute expiry inside the value (8 bytes of big-endian Unix milliseconds
// from the app's clock, before the data) and treats a value past it as
// absent: it is never returned, touched or compared equal, and a
// compare-and-set with a nil old may overwrite it. The bucket TTL is only the
// garbage collector that eventually removes the bytes. Hence:
//
//   - The bucket TTL must be at least the longest TTL a session can get,
//     which is the middleware's AbsoluteTimeout (remember-me idle timeouts are
//     capped by it). New reads the bucket's TTL once, and Set, CompareAndSet
//     and Touch refuse a longer ttl with an error wrapping ErrTTLTooLong
//     rather than letting the server drop a session early. A bucket TTL of 0
//     accepts any ttl but never removes anything: expired records, and the
//     markers Delete leaves, stay until they are overwritten.
//   - Expired records occupy the bucket until the bucket TTL has passed since
//     their last write, so size the bucket (MaxBytes) for the sessions
//     written within one bucket TTL.
//   - The server's clock decides when the bucket TTL has passed and the app's
//     clock decides when a session expires; keep them in sync (NTP), or give
//     the bucket TTL a margin above AbsoluteTimeout.
//
// Per-message TTLs (servers 2.11+, KeyValueConfig.LimitMarkerTTL) are not
// used: nats.go can set them only on Create, not on Update, and the store
// rewrites records with Update, so the bucket TTL is the one that works on
// every JetStream server (tested against 2.9).
//
// # Compare-and-set
//
// CompareAndSet uses the bucket's per-key revisions. With a nil old it calls
// Create, which fails if the key holds a value; if that value turns out to be
// expired, it is replaced with Update against its revision. With a non-nil
// old it reads the value and its revision, compares the record with old, and
// writes with Update against that revision, so a write by anyone in between
// makes it report false. Touch is the same guarded rewrite with the data
// unchanged (KV has no TTL-only update): a touch that loses to a concurrent
// write is dropped, since that write set its own expiry.
//
// # Large records
//
// A NATS message is limited by the server's max_payload (1 MiB by default).
// Records longer than Config.ChunkSize are split into chunk keys named
// "<key>.<chunk set>.<n>", written before the record's own key, which then
// holds the chunk set's name, the number of chunks and the SHA-256 of the
// data instead of the data. Every write of such a record writes a new chunk
// set and, once the key points to it, purges the old one; reads verify the
// hash and re-read when a concurrent write purged the chunks they were
// reading; a compare-and-set compares old with the hash. Chunks that a
// failed or cancelled write could not purge, and those of a chunked record
// that Set replaces, are removed by the bucket TTL. Session records are
// normally far below the limit, so this costs nothing then.
//
// # Timeouts and the connection
//
// The store does no I/O of its own beyond the calls it is given a context
// for. A context without a deadline is bounded by the JetStream context's
// default timeout (5 seconds, jetstream.WithDefaultTimeout); set the
// middleware's StoreTimeout to fail sooner. The connection belongs to the
// caller, so the store has no Close. Recommended client options:
// nats.MaxReconnects(-1) so the client keeps reconnecting after an outage,
// and nats.ReconnectBufSize(-1) so requests made while disconnected fail at
// once instead of being buffered (a buffered write can otherwise reach the
// server after its caller has given up with a timeout).
package natsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/fibersession/session"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrTTLTooLong is wrapped by the error of a write whose ttl exceeds the
// bucket's TTL (see the package documentation).
var ErrTTLTooLong = errors.New("natsstore: ttl exceeds the bucket's TTL")

// DefaultChunkSize is the default Config.ChunkSize: half of the server's
// default max_payload, leaving room for headers.
const DefaultChunkSize = 512 << 10

// Config holds the store's options. The zero value is ready to use.
type Config struct {
	// Prefix is put before every session id to make its key, so that one
	// bucket can hold the sessions of several apps. It may hold the
	// characters of a NATS key (A-Z a-z 0-9 - _ = / .), must not start with
	// '.' or contain "..", and should end with a separator such as '.'.
	// Default: "" (the key is the session id).
	Prefix string

	// ChunkSize is the largest record stored in one message; longer ones
	// are split into chunks of this size. Keep it below the server's
	// max_payload minus about 1 KiB. Default: DefaultChunkSize (512 KiB).
	ChunkSize int
}

// Store is a session store on a JetStream key-value bucket. It is safe for
// concurrent use.
type Store struct {
	kv     jetstream.KeyValue
	prefix string
	chunk  int
	maxTTL time.Duration // the bucket's TTL; 0: no limit
}

// Interface checks.
var (
	_ session.Store            = (*Store)(nil)
	_ session.Toucher          = (*Store)(nil)
	_ session.TTLGetter        = (*Store)(nil)
	_ session.CompareAndSetter = (*Store)(nil)
)

// BucketConfig is the bucket configuration CreateBucket uses: one revision
// per key (so a purged session leaves no older revisions behind), file
// storage, and ttl as the bucket TTL. Adjust it (Replicas, MaxBytes,
// Placement) and pass it to jetstream.JetStream.CreateOrUpdateKeyValue to
// create a replicated bucket.
func BucketConfig(bucket string, ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "fibersession sessions",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
	}
}

// CreateBucket creates the bucket with BucketConfig(bucket, ttl), or binds to
// it and updates it to that configuration if it exists. Pass the session
// AbsoluteTimeout (or more) as ttl.
func CreateBucket(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	if ttl < 0 {
		return nil, errors.New("natsstore: negative bucket TTL")
	}
	return js.CreateOrUpdateKeyValue(ctx, BucketConfig(bucket, ttl))
}

// New returns a store on kv. It reads the bucket's status once, to learn its
// TTL, and fails if the bucket cannot be reached or cfg is invalid.
func New(ctx context.Context, kv jetstream.KeyValue, cfg Config) (*Store, error) {
	if kv == nil {
		return nil, errors.New("natsstore: nil KeyValue")
	}
	if !validPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("natsstore: invalid key prefix %q", cfg.Prefix)
	}
	switch {
	case cfg.ChunkSize == 0:
		cfg.ChunkSize = DefaultChunkSize
	case cfg.ChunkSize < 0:
		return nil, errors.New("natsstore: negative ChunkSize")
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsstore: bucket status: %w", err)
	}
	return &Store{kv: kv, prefix: cfg.Prefix, chunk: cfg.ChunkSize, maxTTL: st.TTL()}, nil
}

// validPrefix reports whether p followed by a session id is a valid key.
func validPrefix(p string) bool {
	if p == "" {
		return true
	}
	if p[0] == '.' || strings.Contains(p, "..") {
		return false
	}
	for _, c := range []byte(p) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '=' || c == '/' || c == '.':
		default:
			return false
		}
	}
	return true
}

// ------------------------------------------------------------ value layout

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

// ------------------------------------------------------------------ reads

// errChunksGone: a chunk is missing or the chunks do not match their hash.
var errChunksGone = errors.New("natsstore: record chunks missing")

// load returns the entry under key; a missing key gives an entry with rev 0.
func (s *Store) load(ctx context.Context, key string) (entry, error) {
	kve, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted), errors.Is(err, jetstream.ErrInvalidKey):
		return entry{}, nil
	case err != nil:
		return entry{}, wrap(ctx, "get", err)
	}
	return parse(kve.Revision(), kve.Value()), nil
}

// read returns the live entry under key with its whole record in e.data,
// or session.ErrNotFound.
func (s *Store) read(ctx context.Context, key string) (entry, error) {
	for try := 0; ; try++ {
		e, err := s.load(ctx, key)
		if err != nil {
			return entry{}, err
		}
		if !e.live(time.Now()) {
			return entry{}, session.ErrNotFound
		}
		if e.chunks.n == 0 {
			return e, nil
		}
		e.data, err = s.readChunks(ctx, key, &e)
		switch {
		case err == nil:
			return e, nil
		case !errors.Is(err, errChunksGone):
			return entry{}, err
		case try == 2: // not a concurrent rewrite: the chunks are lost
			return entry{}, session.ErrNotFound
		}
	}
}

func (s *Store) readChunks(ctx context.Context, key string, e *entry) ([]byte, error) {
	var data []byte
	for i := range e.chunks.n {
		kve, err := s.kv.Get(ctx, e.chunks.key(key, i))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, errChunksGone
		case err != nil:
			return nil, wrap(ctx, "get chunk", err)
		}
		data = append(data, kve.Value()...)
	}
	if sha256.Sum256(data) != e.sum {
		return nil, errChunksGone
	}
	return data, nil
}

// Get returns the record under id, or session.ErrNotFound when there is none
// or it has expired (even if the bucket still holds it).
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.GetTTL(ctx, id)
	return data, err
}

// GetTTL is Get that also returns the record's remaining time to live, from
// the expiry stored in the value: one round trip for records not chunked.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	e, err := s.read(ctx, s.prefix+id)
	if err != nil {
		return nil, 0, err
	}
	left := time.Until(time.UnixMilli(e.expires))
	if left <= 0 {
		return nil, 0, session.ErrNotFound
	}
	return e.data, left, nil
}

// ----------------------------------------------------------------- writes

// check refuses a done ctx and a ttl the bucket would cut short.
func (s *Store) check(ctx context.Context, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.maxTTL > 0 && ttl > s.maxTTL {
		return fmt.Errorf("%w: ttl %v, bucket TTL %v; raise the bucket TTL to the session AbsoluteTimeout", ErrTTLTooLong, ttl, s.maxTTL)
	}
	return nil
}

// encode returns the value that stores data under key until ttl from now,
// first writing data's chunks if it is longer than the chunk size.
func (s *Store) encode(ctx context.Context, key string, data []byte, ttl time.Duration) ([]byte, chunks, error) {
	expires := uint64(time.Now().Add(ttl).UnixMilli())
	if len(data) <= s.chunk {
		v := make([]byte, headerLen+len(data))
		binary.BigEndian.PutUint64(v, expires)
		v[8] = kindInline
		copy(v[headerLen:], data)
		return v, chunks{}, nil
	}
	c := chunks{id: rand.Uint64(), n: uint32((len(data) + s.chunk - 1) / s.chunk)}
	for i := range c.n {
		piece := data[int(i)*s.chunk : min(int(i+1)*s.chunk, len(data))]
		if _, err := s.kv.Put(ctx, c.key(key, i), piece); err != nil {
			s.purge(ctx, key, chunks{id: c.id, n: i})
			return nil, chunks{}, wrap(ctx, "put chunk", err)
		}
	}
	v := make([]byte, 0, headerLen+manifestLen)
	v = binary.BigEndian.AppendUint64(v, expires)
	v = append(v, kindChunked)
	v = binary.BigEndian.AppendUint64(v, c.id)
	v = binary.BigEndian.AppendUint32(v, c.n)
	sum := sha256.Sum256(data)
	return append(v, sum[:]...), c, nil
}

// purge removes a chunk set, as far as it can: what it misses, the bucket
// TTL removes.
func (s *Store) purge(ctx context.Context, key string, c chunks) {
	for i := range c.n {
		_ = s.kv.Purge(ctx, c.key(key, i))
	}
}

// Set stores data under id for ttl with an unconditional Put. When it
// replaces a chunked record, the old chunks are left to the bucket TTL.
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := s.check(ctx, ttl); err != nil {
		return err
	}
	key := s.prefix + id
	v, c, err := s.encode(ctx, key, data, ttl)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, v); err != nil {
		s.purge(ctx, key, c)
		return wrap(ctx, "put", err)
	}
	return nil
}

// replace writes data over cur with Update against cur's revision, and
// reports false if the key was written in between.
func (s *Store) replace(ctx context.Context, key string, cur entry, data []byte, ttl time.Duration) (bool, error) {
	v, c, err := s.encode(ctx, key, data, ttl)
	if err != nil {
		return false, err
	}
	if _, err := s.kv.Update(ctx, key, v, cur.rev); err != nil {
		s.purge(ctx, key, c)
		if conflict(err) {
			return false, nil
		}
		return false, wrap(ctx, "update", err)
	}
	s.purge(ctx, key, cur.chunks)
	return true, nil
}

// CompareAndSet stores data under id for ttl only if the live record under
// id is old, or, with a nil old, only if there is no live record. It is
// atomic through the key's revision (see the package documentation).
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if err := s.check(ctx, ttl); err != nil {
		return false, err
	}
	key := s.prefix + id
	if old != nil {
		cur, err := s.load(ctx, key)
		if err != nil || !cur.live(time.Now()) || !cur.equal(old) {
			return false, err
		}
		return s.replace(ctx, key, cur, data, ttl)
	}
	v, c, err := s.encode(ctx, key, data, ttl)
	if err != nil {
		return false, err
	}
	_, err = s.kv.Create(ctx, key, v)
	if err == nil {
		return true, nil
	}
	s.purge(ctx, key, c)
	if !conflict(err) {
		return false, wrap(ctx, "create", err)
	}
	// The key holds a value: still absent for us if it has expired.
	cur, err := s.load(ctx, key)
	if err != nil || cur.rev == 0 || cur.live(time.Now()) {
		return false, err
	}
	return s.replace(ctx, key, cur, data, ttl)
}

// Touch sets the remaining time to live of the live record under id to ttl
// by rewriting it unchanged against its revision. A missing record, and a
// record written by someone else meanwhile, are left alone (nil error).
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := s.check(ctx, ttl); err != nil {
		return err
	}
	key := s.prefix + id
	cur, err := s.read(ctx, key)
	if errors.Is(err, session.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.replace(ctx, key, cur, cur.data, ttl)
	return err
}

// Delete removes the record under id with Purge, which also drops any older
// revisions a bucket with History > 1 keeps, and then its chunks. Deleting a
// missing id writes nothing and is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key := s.prefix + id
	cur, err := s.load(ctx, key)
	if err != nil || cur.rev == 0 {
		return err
	}
	if err := s.kv.Purge(ctx, key); err != nil {
		return wrap(ctx, "purge", err)
	}
	s.purge(ctx, key, cur.chunks)
	return nil
}

// conflict reports whether err says the key's revision was not the expected
// one (Create of an existing key, Update after another write).
func conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// wrap annotates err and makes sure it reports ctx's error when ctx is done.
func wrap(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("natsstore: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("natsstore: %s: %w", op, err)
}
