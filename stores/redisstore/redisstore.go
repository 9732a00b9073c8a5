// Package redisstore keeps sessions in Redis through go-redis v9. It takes a
// redis.UniversalClient, so a standalone server, Sentinel and Cluster all work
// through the same code: every session and owner index operation touches
// exactly one key, so under Cluster each one goes to a single node; the
// administration methods (Scan, Count, Clear) SCAN every master.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	store, err := redisstore.New(ctx, rdb, redisstore.Config{})
//	if err != nil {
//		return err // Redis did not answer the PING
//	}
//	app.Use(session.New(session.Config[User, Msg]{Secrets: keys, Store: store, StoreTimeout: time.Second}))
//
// New sends one PING under its context, so that a wrong address or a server
// that is down fails at start rather than with the first request.
//
// # Keys and TTL
//
// A record lives under Config.Prefix + id (default "session:") as a plain
// string value. Its time to live is the key's own expiry, kept to the
// millisecond: Set is SET key data PX ttl (go-redis writes the same as EX
// when the TTL is whole seconds), Touch is PEXPIRE key ttl. A TTL that is not
// a whole number of milliseconds is rounded up, and one under a millisecond
// becomes one millisecond (never 0, which would make a key that never
// expires). Redis never returns an expired key, so an expired record is
// ErrNotFound at once, and Redis removes it itself: there is no sweeper.
//
// # Administration and the owner index
//
// The store implements session.Scanner, session.Counter and session.Clearer
// within its prefix, and session.OwnerIndex. Scan, Count and Clear run
// SCAN MATCH prefix* COUNT 1000 (the prefix's glob characters escaped),
// batch by batch, never holding every key at once, on each master of a
// Cluster (each shard of a Ring) in turn, and never DBSIZE or KEYS: Scan
// reads a batch's records with a pipeline of GETs (which a Cluster client
// splits by node; keys gone since the SCAN and keys that are not strings are
// skipped), Count counts the batch, Clear deletes it with UNLINK (one
// UNLINK a key with a Cluster or a Ring, since one command cannot name keys
// of several slots). Clear deletes every key under the prefix, and nothing
// else; give stores that share a server prefixes of which none begins
// another.
//
// An owner's index is one sorted set under Prefix + "owner:" + the owner in
// unpadded base64url (Store.OwnerKey): member the session id, score its
// until in Unix milliseconds. The encoding keeps any owner string, binary
// or holding ':' or '*', from naming another's key; the ':' keeps the key
// apart from every id of the middleware's form (43 characters of
// base64url), and Scan and Count leave out keys under Prefix + "owner:", so
// ids that begin with "owner:" are reserved. Own is one Lua script on that
// key: ZADD, ZREMRANGEBYSCORE -inf now, and PEXPIRE of the key to its latest
// until, so the index of an owner who never returns expires too. Owned is
// ZRANGEBYSCORE (now +inf, Disown ZREM. "now" is the client's clock.
//
// # Round trips
//
//	Get            GET key                                    1 round trip
//	GetTTL         GET key + PTTL key in one pipeline         1 round trip
//	Set            SET key data PX ttl                        1 round trip
//	Touch          PEXPIRE key ttl                            1 round trip
//	Delete         DEL key                                    1 round trip
//	CompareAndSet  SET ... NX, or EVALSHA of one Lua script   1 round trip
//	Own            EVALSHA of one Lua script                  1 round trip
//	Disown         ZREM key id...                             1 round trip
//	Owned          ZRANGEBYSCORE key (now +inf                1 round trip
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
// The store adds no timeouts of its own; every call, and New's PING, runs
// under the context it is given, and a context that is already done fails
// the call before any I/O with an error wrapping context.Canceled or
// context.DeadlineExceeded (as does a call cut short by its context).
// go-redis ignores a context's deadline during I/O unless the client is
// created with ContextTimeoutEnabled: true; otherwise a call is bounded only
// by the client's DialTimeout (default 5s), ReadTimeout and WriteTimeout
// (default 3s), repeated for DialerRetries (go-redis v9.16 and later: default
// 5 dial attempts, 100ms apart) and MaxRetries (default 3 retries). With Redis down that can hold a
// request for seconds. For a session store, create the client with
// ContextTimeoutEnabled and set session.Config.StoreTimeout (say 1s), and
// consider fewer retries, so that an outage answers requests with an error
// quickly.
//
// # Errors
//
// A missing or expired record is session.ErrNotFound (go-redis's redis.Nil
// never leaves the store). Every other error names the package and the
// operation ("redisstore: get: ...", "redisstore: ping: ...") and wraps
// go-redis's error.
//
// # Ownership
//
// The client stays the caller's: the store never closes it, so one client
// can serve sessions and the rest of the application; close it when the
// application is done with it. The store holds nothing else (it starts no
// goroutines), so it has no Close, and session.Manager.Close leaves the
// client open.
package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

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
}

// Store is a session.Store on Redis. It implements session.Toucher,
// session.TTLGetter, session.CompareAndSetter, session.Scanner,
// session.Counter, session.Clearer and session.OwnerIndex, and is safe for
// concurrent use. It has no Close: the client is the caller's.
type Store struct {
	client redis.UniversalClient
	prefix string
}

// New returns a store on client configured by cfg, once the server has
// answered a PING sent under ctx. It fails if client is nil or the PING
// fails. The client stays the caller's, who closes it.
func New(ctx context.Context, client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "redisstore: ping", err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "session:"
	}
	return &Store{client: client, prefix: cfg.Prefix}, nil
}

// Key returns the Redis key of the record under id.
func (s *Store) Key(id string) string { return s.prefix + id }

// Get returns the record under id (GET), or session.ErrNotFound when the key
// is absent or expired.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "redisstore: get", err)
	}
	data, err := s.client.Get(ctx, s.Key(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, session.ErrNotFound
	case err != nil:
		return nil, ctxerr.Wrap(ctx, "redisstore: get", err)
	}
	return data, nil
}

// GetTTL returns the record under id and its remaining time to live in one
// round trip (a pipeline of GET and PTTL), or session.ErrNotFound. A key
// without an expiry (written by something else than this store) reports a
// TTL of -1, "unknown".
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, ctxerr.Wrap(ctx, "redisstore: get ttl", err)
	}
	key := s.Key(id)
	pipe := s.client.Pipeline()
	get := pipe.Get(ctx, key)
	pttl := pipe.PTTL(ctx, key)
	// Exec returns the first command's error: redis.Nil only from GET.
	_, err := pipe.Exec(ctx)
	switch {
	case errors.Is(err, redis.Nil):
		return nil, 0, session.ErrNotFound
	case err != nil:
		return nil, 0, ctxerr.Wrap(ctx, "redisstore: get ttl", err)
	}
	data, _ := get.Bytes() // its error was Exec's: nil; Bytes does not copy
	switch left := pttl.Val(); {
	case left == -2: // gone between GET and PTTL
		return nil, 0, session.ErrNotFound
	case left < 0:
		return data, -1, nil
	default:
		return data, left, nil
	}
}

// Set stores data under id for d (SET key data PX d), replacing any record
// and its TTL.
func (s *Store) Set(ctx context.Context, id string, data []byte, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "redisstore: set", err)
	}
	err := s.client.Set(ctx, s.Key(id), data, ttl.Round(d, time.Millisecond)).Err()
	return ctxerr.Wrap(ctx, "redisstore: set", err)
}

// Touch sets the remaining time to live of the record under id to d
// (PEXPIRE key d). A missing record is not an error and is not created.
func (s *Store) Touch(ctx context.Context, id string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "redisstore: touch", err)
	}
	err := s.client.PExpire(ctx, s.Key(id), ttl.Round(d, time.Millisecond)).Err()
	return ctxerr.Wrap(ctx, "redisstore: touch", err)
}

// Delete removes the record under id (DEL key). Deleting a missing record is
// not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "redisstore: delete", err)
	}
	return ctxerr.Wrap(ctx, "redisstore: delete", s.client.Del(ctx, s.Key(id)).Err())
}

// casScript is CompareAndSet's script, shared with the other Redis store.
var casScript = redis.NewScript(rediskey.CompareAndSet)

// CompareAndSet stores data under id for d only if the record stored now
// is byte for byte old, or, with a nil old, only if there is none. With a nil
// old it is SET ... NX; otherwise one Lua script (EVALSHA, falling back to
// EVAL when the server does not have it cached). It reports whether it wrote.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, d time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, ctxerr.Wrap(ctx, "redisstore: compare-and-set", err)
	}
	px := ttl.Round(d, time.Millisecond)
	var wrote bool
	var err error
	if old == nil {
		wrote, err = s.client.SetNX(ctx, s.Key(id), data, px).Result()
	} else {
		var n int64
		n, err = casScript.Run(ctx, s.client, []string{s.Key(id)}, data, px.Milliseconds(), old).Int64()
		wrote = n == 1
	}
	if err != nil {
		return false, ctxerr.Wrap(ctx, "redisstore: compare-and-set", err)
	}
	return wrote, nil
}
