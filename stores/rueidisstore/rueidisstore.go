package rueidisstore

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ctxerr"
	"github.com/fibersession/session/internal/rediskey"
	"github.com/fibersession/session/internal/ttl"
)

// Config holds the store's options. The zero value is the default.
type Config struct {
	// Prefix is put before every session id to make the Redis key.
	// Default: "session:".
	Prefix string

	// CacheTTL is the longest a record is served from the client-side
	// cache without the server: the safety net on top of the server's
	// invalidations, which normally remove a changed record from the cache
	// within a millisecond. A record is never cached past its own TTL on the
	// server. A positive CacheTTL is rounded up to whole milliseconds.
	// Negative: no caching; every Get is a plain GET and StaleReads reports
	// false. Default: one minute.
	//
	// The cache's memory is bounded by the client's
	// rueidis.ClientOption.CacheSizeEachConn, in bytes per connection
	// (rueidis's default: 128 MiB), beyond which the least recently used
	// records are evicted.
	CacheTTL time.Duration
}

// withDefaults returns cfg with every unset field filled in: the one place
// the defaults live.
func (cfg Config) withDefaults() Config {
	if cfg.Prefix == "" {
		cfg.Prefix = "session:"
	}
	switch {
	case cfg.CacheTTL == 0:
		cfg.CacheTTL = time.Minute
	case cfg.CacheTTL > 0:
		cfg.CacheTTL = ttl.Round(cfg.CacheTTL, time.Millisecond)
	}
	return cfg
}

// Store is a session.Store on Redis through rueidis, with server-assisted
// client-side caching. It implements session.CompareAndSetter,
// session.StaleReader, session.Scanner, session.Counter, session.Clearer
// and session.OwnerIndex (no Toucher, no TTLGetter), and is safe for
// concurrent use. It has no Close: the client is the caller's.
type Store struct {
	client   rueidis.Client
	prefix   string
	cacheTTL time.Duration // > 0: Get reads through the client-side cache
	own      *writes       // the store's recent writes; nil without caching

	rechecks atomic.Int64 // Gets whose cached answer a plain GET checked
}

// New returns a store on client configured by cfg, once the server has
// answered a PING sent under ctx. It fails if client is nil or the PING
// fails. The client stays the caller's, who closes it.
func New(ctx context.Context, client rueidis.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("rueidisstore: nil client")
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "rueidisstore: ping", err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		return nil, ctxerr.Wrap(ctx, "rueidisstore: ping", err)
	}
	cfg = cfg.withDefaults()
	s := &Store{client: client, prefix: cfg.Prefix}
	if cfg.CacheTTL > 0 {
		s.cacheTTL = cfg.CacheTTL
		s.own = newWrites(cfg.CacheTTL)
	}
	return s, nil
}

// Key returns the Redis key of the record under id.
func (s *Store) Key(id string) string { return s.prefix + id }

// StaleReads reports whether Get may answer from the client-side cache,
// and so with a record that another client has changed a moment before
// (until the server's invalidation arrives; see the package
// documentation): true unless Config.CacheTTL is negative. It makes the
// store a session.StaleReader: the middleware then fails a save with
// session.ErrStale rather than write a key the request read and changed
// when the stored value is no longer the one read.
func (s *Store) StaleReads() bool { return s.own != nil }

// Get returns the record under id, or session.ErrNotFound when the key is
// absent or expired: from the client-side cache when it holds the key
// (DoCache of GET key, for at most CacheTTL), else with one round trip. A
// Get after this store's own write of id, or after a failed call, may ask
// the server with a plain GET instead (see the package documentation). The
// bytes returned are the cache's own: the caller must not change them.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "rueidisstore: get", err)
	}
	data, err := s.get(ctx, s.Key(id))
	if err != nil && err != session.ErrNotFound {
		return nil, ctxerr.Wrap(ctx, "rueidisstore: get", err)
	}
	return data, err
}

func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	if s.own == nil {
		return value(s.client.Do(ctx, s.client.B().Get().Key(key).Build()))
	}
	m, plain, epoch := s.own.lookup(key)
	if plain {
		return s.plain(ctx, key, epoch)
	}
	data, err := value(s.client.DoCache(ctx, s.client.B().Get().Key(key).Cache(), s.cacheTTL))
	switch {
	case failure(err):
		s.own.fail()
		return nil, err
	case err != nil && err != session.ErrNotFound: // a Redis error reply, such as WRONGTYPE
		return nil, err
	case m == nil:
		return data, err
	case m.matches(s.own.seed, data, err):
		s.own.forget(key, m.seq)
		return data, err
	}
	// The cache may hold the key as it was before this store's last write:
	// the server has the last word.
	s.rechecks.Add(1)
	fresh, ferr := s.plain(ctx, key, 0)
	if same(fresh, ferr, data, err) {
		s.own.forget(key, m.seq)
	}
	return fresh, ferr
}

// plain reads key with a GET past the cache. Once it succeeds, the failure
// epoch (0: none) no longer makes the cache suspect.
func (s *Store) plain(ctx context.Context, key string, epoch uint64) ([]byte, error) {
	data, err := value(s.client.Do(ctx, s.client.B().Get().Key(key).Build()))
	if failure(err) {
		s.own.fail()
	} else {
		s.own.recovered(epoch)
	}
	return data, err
}

// value turns a GET's answer into the store's: the bytes, aliasing the
// string rueidis read (which nothing changes: the session never writes to
// a record it got), or session.ErrNotFound for a nil reply.
func value(r rueidis.RedisResult) ([]byte, error) {
	s, err := r.ToString()
	switch {
	case rueidis.IsRedisNil(err):
		return nil, session.ErrNotFound
	case err != nil:
		return nil, err
	case s == "":
		return []byte{}, nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s)), nil
}

// failure reports whether err is a failure to reach the server, rather
// than an answer: not a record found or missing, nor a Redis error reply.
func failure(err error) bool {
	if err == nil || err == session.ErrNotFound {
		return false
	}
	_, reply := rueidis.IsRedisErr(err)
	return !reply
}

// str returns data as a string without copying it, for a command's
// argument: the session never changes a record after handing it to Set or
// CompareAndSet (session.Store), nor one it got from Get.
func str(data []byte) string {
	return unsafe.String(unsafe.SliceData(data), len(data))
}

// wrote records the outcome of a write of key that should have left data
// (nil: deleted) there: written, refused (written false), or failed.
func (s *Store) wrote(key string, data []byte, written bool, err error) {
	if s.own == nil {
		return
	}
	switch {
	case err != nil:
		if failure(err) {
			s.own.fail()
		}
		s.own.add(key, markUnknown, nil)
	case !written:
		s.own.add(key, markUnknown, nil)
	case data == nil:
		s.own.add(key, markDeleted, nil)
	default:
		s.own.add(key, markWritten, data)
	}
}

// Set stores data under id for d (SET key data PX d), replacing any record
// and its TTL.
func (s *Store) Set(ctx context.Context, id string, data []byte, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "rueidisstore: set", err)
	}
	key := s.Key(id)
	px := ttl.Round(d, time.Millisecond).Milliseconds()
	err := s.client.Do(ctx, s.client.B().Set().Key(key).Value(str(data)).PxMilliseconds(px).Build()).Error()
	s.wrote(key, nonNil(data), true, err)
	return ctxerr.Wrap(ctx, "rueidisstore: set", err)
}

// nonNil returns data, or an empty slice for nil: a record written, not a
// key deleted.
func nonNil(data []byte) []byte {
	if data == nil {
		return []byte{}
	}
	return data
}

// Delete removes the record under id (DEL key). Deleting a missing record is
// not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "rueidisstore: delete", err)
	}
	key := s.Key(id)
	err := s.client.Do(ctx, s.client.B().Del().Key(key).Build()).Error()
	s.wrote(key, nil, true, err)
	return ctxerr.Wrap(ctx, "rueidisstore: delete", err)
}

// casScript is CompareAndSet's script, shared with the other Redis store.
var casScript = rueidis.NewLuaScript(rediskey.CompareAndSet)

// CompareAndSet stores data under id for d only if the record stored now
// is byte for byte old, or, with a nil old, only if there is none. With a nil
// old it is SET key data PX d NX; otherwise one Lua script (EVALSHA, falling
// back to EVAL when the server does not have it cached) that compares GET
// key with old on the server. It reports whether it wrote.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, d time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, ctxerr.Wrap(ctx, "rueidisstore: compare-and-set", err)
	}
	key := s.Key(id)
	px := ttl.Round(d, time.Millisecond).Milliseconds()
	var wrote bool
	var err error
	if old == nil {
		err = s.client.Do(ctx, s.client.B().Set().Key(key).Value(str(data)).Nx().PxMilliseconds(px).Build()).Error()
		wrote = err == nil
		if rueidis.IsRedisNil(err) { // NX refused: the key exists
			err = nil
		}
	} else {
		var n int64
		n, err = casScript.Exec(ctx, s.client, []string{key}, []string{str(data), strconv.FormatInt(px, 10), str(old)}).AsInt64()
		wrote = err == nil && n == 1
	}
	s.wrote(key, nonNil(data), wrote, err)
	if err != nil {
		return false, ctxerr.Wrap(ctx, "rueidisstore: compare-and-set", err)
	}
	return wrote, nil
}
