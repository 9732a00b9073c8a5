// Package redisstore keeps sessions in Redis through go-redis v9. It takes a
// redis.UniversalClient, so a standalone server, Sentinel and Cluster all work
// through the same code: every operation touches exactly one key, so under
// Cluster each one goes to a single node.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	app.Use(session.New(session.Config[User, Msg]{Secrets: keys, Store: redisstore.New(rdb)}))
//
// # Keys and TTL
//
// A record lives under Config.Prefix + id (default "session:") as a plain
// string value. Its time to live is the key's own expiry, kept to the
// millisecond: Set is SET key data PX ttl (go-redis writes the same as EX
// when the TTL is whole seconds), Touch is PEXPIRE key ttl. A TTL that is not
// a whole number of milliseconds is rounded up. Redis never returns an
// expired key, so an expired record is ErrNotFound at once, and Redis removes
// it itself: there is no sweeper.
//
// # Round trips
//
//	Get            GET key                                    1 round trip
//	GetTTL         GET key + PTTL key in one pipeline         1 round trip
//	Set            SET key data PX ttl                        1 round trip
//	Touch          PEXPIRE key ttl                            1 round trip
//	Delete         DEL key                                    1 round trip
//	CompareAndSet  SET ... NX, or EVALSHA of one Lua script   1 round trip
//
// So through the middleware a request that only reads its session costs one
// round trip (GetTTL), a request that changes it two (GetTTL, then
// CompareAndSet), and an idle session is extended with one PEXPIRE at most
// once per session.Config.TouchInterval. The first CompareAndSet after the
// server's script cache was emptied (a restart, SCRIPT FLUSH) costs one more
// round trip: EVALSHA answers NOSCRIPT and go-redis falls back to EVAL.
//
// GetTTL is a pipeline rather than a script: both commands touch the same key
// (one Cluster slot, so one node), there is no script to load, and they show
// up as plain GET and PTTL in the server's statistics. The two commands are not
// one atomic step; the only difference that can make is a record that expires
// or is deleted between them, which GetTTL reports as ErrNotFound, or a TTL
// that belongs to a record written between them, which is harmless since the
// TTL only decides when to touch.
//
// # Compare-and-set
//
// CompareAndSet is one command, atomic on the server. With a nil old it is
// SET key data PX ttl NX; otherwise it runs one Lua script that compares GET
// key with old byte for byte and, when equal, runs SET key data PX ttl. No
// WATCH, no MULTI, no extra round trip. The old value travels to the server
// with the new one.
//
// # Timeouts
//
// The store adds no timeouts of its own; every call runs under the context
// it is given, and a context that is already done fails the call before any
// I/O with an error wrapping context.Canceled or context.DeadlineExceeded
// (as does a call cut short by its context). go-redis ignores a context's
// deadline during I/O unless the client is created with
// ContextTimeoutEnabled: true; otherwise a call is bounded only by the
// client's DialTimeout (default 5s), ReadTimeout and WriteTimeout (default
// 3s), repeated for DialerRetries (default 5 dial attempts, 100ms apart) and
// MaxRetries (default 3 retries). With Redis down that can hold a request for
// seconds. For a session store, create the client with ContextTimeoutEnabled
// and set session.Config.StoreTimeout (say 1s), and consider fewer retries,
// so that an outage answers requests with an error quickly.
//
// # Ownership
//
// The store does not own the client: Close does nothing unless
// Config.CloseClient is set, so one client can serve sessions and the rest of
// the application. The store starts no goroutines.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
)

// Config holds the store's options. The zero value is the default.
type Config struct {
	// Prefix is put before every session id to make the Redis key.
	// Default: "session:".
	Prefix string

	// CloseClient makes Close close the client. Default: false, the store
	// does not own the client and Close leaves it open.
	CloseClient bool
}

// Store is a session.Store on Redis. It implements session.Toucher,
// session.TTLGetter, session.CompareAndSetter and session.Closer, and is
// safe for concurrent use.
type Store struct {
	client      redis.UniversalClient
	prefix      string
	closeClient bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ session.Store            = (*Store)(nil)
	_ session.Toucher          = (*Store)(nil)
	_ session.TTLGetter        = (*Store)(nil)
	_ session.CompareAndSetter = (*Store)(nil)
	_ session.Closer           = (*Store)(nil)
)

// New returns a store on client configured by cfg (at most one; none means
// the defaults). It panics if client is nil.
func New(client redis.UniversalClient, cfg ...Config) *Store {
	if client == nil {
		panic("redisstore: nil client")
	}
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	if c.Prefix == "" {
		c.Prefix = "session:"
	}
	return &Store{client: client, prefix: c.Prefix, closeClient: c.CloseClient}
}

// Key returns the Redis key of the record under id.
func (s *Store) Key(id string) string { return s.prefix + id }

// Get returns the record under id (GET), or session.ErrNotFound when the key
// is absent or expired.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := s.client.Get(ctx, s.Key(id)).Bytes()
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return data, nil
}

// GetTTL returns the record under id and its remaining time to live in one
// round trip (a pipeline of GET and PTTL), or session.ErrNotFound. A key
// without an expiry (written by something else than this store) reports a
// TTL of -1, "unknown".
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	key := s.Key(id)
	pipe := s.client.Pipeline()
	get := pipe.Get(ctx, key)
	pttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, s.fail(ctx, err)
	}
	data, err := get.Bytes()
	if err != nil {
		return nil, 0, s.fail(ctx, err)
	}
	ttl, err := pttl.Result()
	switch {
	case err != nil:
		return nil, 0, s.fail(ctx, err)
	case ttl == -2: // gone between GET and PTTL
		return nil, 0, session.ErrNotFound
	case ttl < 0:
		return data, -1, nil
	}
	return data, ttl, nil
}

// Set stores data under id for ttl (SET key data PX ttl), replacing any
// record and its TTL.
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.fail(ctx, s.client.Set(ctx, s.Key(id), data, roundMs(ttl)).Err())
}

// Touch sets the remaining time to live of the record under id to ttl
// (PEXPIRE key ttl). A missing record is not an error and is not created.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.fail(ctx, s.client.PExpire(ctx, s.Key(id), roundMs(ttl)).Err())
}

// Delete removes the record under id (DEL key). Deleting a missing record is
// not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.fail(ctx, s.client.Del(ctx, s.Key(id)).Err())
}

// casScript is CompareAndSet: KEYS[1] the key, ARGV[1] the new data,
// ARGV[2] the TTL in milliseconds, ARGV[3] the expected data (absent: the key
// must not exist). It returns 1 when it wrote, 0 when not.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// CompareAndSet stores data under id for ttl only if the record stored now
// is byte for byte old, or, with a nil old, only if there is none. With a nil
// old it is SET ... NX; otherwise one Lua script (EVALSHA, falling back to
// EVAL when the server does not have it cached). It reports whether it wrote.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if old == nil {
		ok, err := s.client.SetNX(ctx, s.Key(id), data, roundMs(ttl)).Result()
		if err != nil {
			return false, s.fail(ctx, err)
		}
		return ok, nil
	}
	n, err := casScript.Run(ctx, s.client, []string{s.Key(id)}, data, roundMs(ttl).Milliseconds(), old).Int64()
	if err != nil {
		return false, s.fail(ctx, err)
	}
	return n == 1, nil
}

// Close closes the client if Config.CloseClient is set, once however often it
// is called, and otherwise does nothing. The store has no goroutines to stop.
func (s *Store) Close() error {
	if !s.closeClient {
		return nil
	}
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}

// fail maps go-redis's "no such key" to session.ErrNotFound and makes an
// error that happened because ctx ended also wrap ctx's error.
func (s *Store) fail(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return session.ErrNotFound
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// roundMs rounds ttl up to whole milliseconds, the precision Redis keeps,
// and to at least one: a zero TTL would make SET write a key that never
// expires.
func roundMs(ttl time.Duration) time.Duration {
	return max(ttl+time.Millisecond-1, time.Millisecond).Truncate(time.Millisecond)
}
