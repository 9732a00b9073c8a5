// Package rueidisstore keeps sessions in Redis through rueidis, with
// server-assisted client-side caching: a request that only reads its
// session usually makes no round trip at all. It takes a rueidis.Client,
// so a standalone server, Sentinel and Cluster all work through the same
// code: every session and owner index operation touches exactly one key,
// so under Cluster each one goes to a single node; the administration
// methods (Scan, Count, Clear) SCAN every master.
//
//	client, err := rueidis.NewClient(rueidis.ClientOption{
//		InitAddress:       []string{"127.0.0.1:6379"},
//		CacheSizeEachConn: 64 << 20, // the cache's memory bound, per connection
//		Dialer:            net.Dialer{Timeout: time.Second, KeepAlive: 500 * time.Millisecond},
//		ConnWriteTimeout:  500 * time.Millisecond,
//	})
//	if err != nil {
//		return err
//	}
//	store, err := rueidisstore.New(ctx, client, rueidisstore.Config{})
//	if err != nil {
//		return err // Redis did not answer the PING
//	}
//	app.Use(session.New(session.Config[User, Msg]{Secrets: keys, Store: store, StoreTimeout: time.Second}))
//
// New sends one PING under its context, so that a wrong address or a server
// that is down fails at start rather than with the first request. The
// server must speak RESP3 (Redis 6 or later), which rueidis's cache needs.
//
// # Keys and TTL
//
// A record lives under Config.Prefix + id (default "session:") as a plain
// string value, as with redisstore: the two stores can share records. Its
// time to live is the key's own expiry, kept to the millisecond: Set is SET
// key data PX ttl. A TTL that is not a whole number of milliseconds is
// rounded up, and one under a millisecond becomes one millisecond (never 0,
// which would make a key that never expires). Redis removes expired keys
// itself: there is no sweeper. The store has no Touch and no GetTTL: the
// middleware decides when an unchanged session is due for an extension
// from the time of its last write, kept in the record, and extends it by a
// conditional rewrite (CompareAndSet), at most once per
// session.Config.TouchInterval, so that a read-only request needs nothing
// from the server but the record, which the cache holds.
//
// # Caching
//
// Get is rueidis's DoCache of GET key with Config.CacheTTL (default one
// minute): the first Get of a key on a connection sends CLIENT CACHING YES,
// MULTI, PTTL key, GET key, EXEC in one round trip, after which the server
// tracks the key for that connection (CLIENT TRACKING ON OPTIN, which
// rueidis turns on), and later Gets answer from the client's memory, without
// the server, until one of these happens:
//
//   - The key changes or goes. Any write, by any client (another instance
//     of the app, this one, redis-cli), expiry or eviction makes the server
//     send an invalidation on the tracking connection, and rueidis drops
//     the entry when it reads it. Measured on loopback (two instances, 500
//     rounds, from one's SET returning to the other's first Get of the new
//     record, its own round trip to read it included): p50 about 0.2ms and
//     p99 about 1.5ms on a two-core machine, standalone and Cluster alike,
//     p99 up to 6ms while the machine was busy (TestInvalidationDelay).
//   - CacheTTL passes since the Get that read the record began: the bound
//     that holds even if invalidations were lost without the connection
//     breaking. A record is never kept past its own TTL on the server
//     either (the PTTL read with it caps the entry).
//   - The connection breaks: rueidis drops its whole cache, and the next
//     Get reads through a new connection.
//   - The cache is full: rueidis evicts the least recently used entries of
//     a connection past rueidis.ClientOption.CacheSizeEachConn bytes
//     (default 128 MiB). That option is the cache's memory bound: with a
//     cache of 64 KiB, reading 8 MiB of records left the heap where it
//     was, against 10 MiB more with the default (TestEviction). The bytes
//     Get returns are the cached string's own, not a copy.
//
// What can be stale, and for how long: a record that another client changed
// can be answered from the cache until its invalidation has been applied
// (the delay above). When the connection that carries the invalidations
// freezes (open, but nothing arrives), until rueidis notices, or one of the
// store's own calls fails, whichever comes first, and at most CacheTTL:
// rueidis PINGs a connection that received nothing for a Dialer.KeepAlive,
// and drops it with its cache when the answer takes longer than
// ConnWriteTimeout, which makes up to two KeepAlives plus ConnWriteTimeout:
// 12 seconds with rueidis's defaults (1s and 10s), 1.5 seconds with the
// settings above. A cut connection is noticed at once. Measured through a
// proxy with a KeepAlive of 100ms and ConnWriteTimeout 250ms
// (TestConnectionLoss): after a cut, no stale read; after a freeze, stale
// reads for 450ms. After a call fails otherwise than with a Redis error
// reply, every Get asks the server (bypassing the cache, and so failing
// while the server is unreachable) until one such GET succeeds
// (TestFailureStopsCache).
//
// The store's own writes are read back at once. A write's reply does not
// say that the connection whose cache holds the key has applied the
// invalidation yet: rueidis sends plain commands on a connection it picks
// at random (PipelineMultiplex), not on the one a key's DoCache uses. So the
// store keeps a mark per key it wrote (a hash of the bytes, or "deleted";
// "unknown" after a write that failed or a compare-and-set that did not
// write), and the next Get of that key checks what DoCache answers against
// it: the write itself (usually, the invalidation having emptied the entry
// and DoCache having read the key again) stands; anything else is checked
// with a plain GET, which answers. A mark lives at most CacheTTL plus a
// second (no older entry can be served by then), and there are at most
// 65,536 (a part of the record that fills up is dropped, and Gets of its
// keys are plain GETs for as long as its marks would have lived). Right
// after a write, the cache still answered the old record to about one Get
// in five on a standalone server (four goroutines, 4,000 writes, each read
// back at once: TestReadYourWrites), and to a few in 4,000 on the Cluster
// (one connection a node), which the check turned into plain GETs. Clear,
// which deletes keys without marking each, makes every Get a plain GET for
// CacheTTL.
//
// StaleReads reports true when the cache is on, which makes the store a
// session.StaleReader: the middleware then treats every key a request read
// and then set or unset as read-modify-write, and when the stored value of
// such a key is no longer the one read, the save fails with
// session.ErrStale and writes nothing, so that a value computed from a
// stale read never undoes another instance's write (Update is re-applied
// instead). The compare-and-set behind every save compares on the server,
// never with the cache, and after one that did not write, the store marks
// the key, so that the middleware's next read of it asks the server. Two
// instances taking turns at incrementing one session's counter over HTTP
// (storetest.RunSeveralInstances, 200 requests) had none refused.
//
// With Config.CacheTTL negative the store caches nothing: every Get is a
// plain GET, one round trip, and StaleReads reports false. Do not route the
// store's reads to replicas (ClientOption.SendToReplicas, ReplicaOnly):
// a replica may answer a record older than the store's own write.
//
// # Round trips
//
//	Get, cached    none
//	Get, not       DoCache: CLIENT CACHING YES, MULTI, PTTL, GET, EXEC   1 round trip
//	Get, cache off GET key                                              1 round trip
//	Set            SET key data PX ttl                                  1 round trip
//	Delete         DEL key                                              1 round trip
//	CompareAndSet  SET ... NX, or EVALSHA of one Lua script             1 round trip
//	Own            EVALSHA of one Lua script                            1 round trip
//	Disown         ZREM key id...                                       1 round trip
//	Owned          ZRANGEBYSCORE key (now +inf                          1 round trip
//
// Through the middleware (TestRoundTrips, counted by the client and by the
// server's INFO commandstats on a server of its own): a read-only request
// whose session is in the cache makes no round trip and the server runs no
// command; the first read of a session by an instance makes one; a request
// that changes a cached session makes one (EVALSHA), and one more when it
// reads the session right after its own or another's write; a new session
// is one SET ... NX, a sign-in with RegenerateID(true) a read, SET ... NX,
// EVALSHA and DEL, a sign-out one DEL: the writes are redisstore's. An
// idle session is extended with one EVALSHA at most once per TouchInterval
// (TestTouchOncePerInterval), and read again once after it. The first
// CompareAndSet after the server's script cache was emptied (a restart,
// SCRIPT FLUSH) costs one more round trip: EVALSHA answers NOSCRIPT and the
// store sends EVAL.
//
// # Compare-and-set
//
// CompareAndSet is one command, atomic on the server, as in redisstore:
// with a nil old it is SET key data PX ttl NX; otherwise one Lua script
// that compares GET key with old byte for byte and, when equal, runs SET key
// data PX ttl. It compares on the server, never with the cache.
//
// # Administration and the owner index
//
// The store implements session.Scanner, session.Counter and session.Clearer
// within its prefix, and session.OwnerIndex, with redisstore's layout and
// commands, none of them through the cache. Scan, Count and Clear run SCAN
// MATCH prefix* COUNT 1000 (the prefix's glob characters escaped), batch by
// batch, on each node that Client.Nodes lists and whose ROLE is master (all
// nodes of a Cluster, replicas left out), never DBSIZE or KEYS: Scan reads a
// batch's records with one DoMulti of GETs (keys gone since the SCAN and
// keys that are not strings are skipped), Count counts the batch, Clear
// deletes it with one DoMulti of an UNLINK a key. Clear deletes every key
// under the prefix, and nothing else; give stores that share a server
// prefixes of which none begins another.
//
// An owner's index is one sorted set under Prefix + "owner:" + the owner in
// unpadded base64url (Store.OwnerKey): member the session id, score its
// until in Unix milliseconds. Scan and Count leave out keys under Prefix +
// "owner:", so ids that begin with "owner:" are reserved. Own is one Lua
// script on that key: ZADD, ZREMRANGEBYSCORE -inf now, and PEXPIRE of the
// key to its latest until. Owned is ZRANGEBYSCORE (now +inf, Disown ZREM.
// "now" is the client's clock.
//
// # Timeouts
//
// The store adds no timeouts of its own; every call, and New's PING, runs
// under the context it is given (rueidis honours a context's deadline while
// it waits), and a context that is already done fails the call before any
// I/O with an error wrapping context.Canceled or context.DeadlineExceeded.
// Set session.Config.StoreTimeout (say 1s). rueidis retries a read that
// failed on a broken connection until the context ends
// (ClientOption.DisableRetry turns that off). Set Dialer.Timeout,
// Dialer.KeepAlive and ConnWriteTimeout as above, shorter than rueidis's
// defaults (5s, 1s, 10s): they bound how long a frozen connection keeps
// serving its cache, and how long a dial to a dead server holds a request.
// storetest.RunFaults passes with a dial timeout of 250ms, a KeepAlive of
// 100ms and ConnWriteTimeout 250ms (TestRedisDown).
//
// # Versions
//
// The module requires rueidis v1.0.34, the lowest release it works with
// (v1.0.19, the one before it on the module proxy, panics on 32-bit
// platforms: an unaligned 64-bit atomic in its cache), and its tests pass
// with v1.0.59 too. That is a floor, not a recommendation: require a
// current rueidis in your app.
//
// # Errors
//
// A missing or expired record is session.ErrNotFound (rueidis's nil reply
// never leaves the store). Every other error names the package and the
// operation ("rueidisstore: get: ...", "rueidisstore: ping: ...") and wraps
// rueidis's error.
//
// # Ownership
//
// The client stays the caller's: the store never closes it, so one client
// can serve sessions and the rest of the application; close it when the
// application is done with it. The store starts no goroutines, so it has no
// Close, and session.Manager.Close leaves the client open.
package rueidisstore
