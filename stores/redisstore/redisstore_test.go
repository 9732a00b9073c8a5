package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/redisstore"
	"github.com/fibersession/session/stores/storetest"
)

// The Redis the tests use: SESSION_REDIS_ADDR, a standalone server (default
// loopback), or, when SESSION_REDIS_CLUSTER is set, the Redis Cluster whose
// nodes it lists ("127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"; .ci/run
// starts such a cluster with .ci/redis-cluster and runs the tests against
// it too). TestRedisDown, which puts a proxy in front of one server, runs
// against the standalone server only, and is skipped with a cluster.
var (
	redisAddr    = storetest.Addr("SESSION_REDIS_ADDR", "127.0.0.1:6379")
	redisCluster = clusterAddrs(os.Getenv("SESSION_REDIS_CLUSTER"))
)

// clusterAddrs splits a comma-separated list of addresses; nil when empty.
func clusterAddrs(list string) []string {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// The store's capabilities, checked at compile time.
var _ interface {
	session.TTLGetter
	session.Toucher
	session.CompareAndSetter
} = (*redisstore.Store)(nil)

// newClient returns a client of the test Redis (a cluster client when
// SESSION_REDIS_CLUSTER is set), closed when the test ends, or skips (fails
// with SESSION_REQUIRE_SERVERS=1) when Redis is unreachable.
func newClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	if redisCluster != nil {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redisCluster, ContextTimeoutEnabled: true, DialTimeout: 2 * time.Second})
		t.Cleanup(func() { _ = c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		// Every master must answer, and the cluster must serve every slot.
		err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return node.Ping(ctx).Err() })
		if err == nil {
			var info string
			if info, err = c.ClusterInfo(ctx).Result(); err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster_state is not ok")
			}
		}
		if err != nil {
			storetest.Unavailable(t, "Redis Cluster at "+strings.Join(redisCluster, ","), err)
		}
		return c
	}
	return newStandalone(t)
}

// newStandalone returns a client of the standalone test Redis, closed when
// the test ends, or skips (fails with SESSION_REQUIRE_SERVERS=1) when it is
// unreachable.
func newStandalone(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true, DialTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		storetest.Unavailable(t, "Redis at "+redisAddr, err)
	}
	return c
}

// newStore returns a store on c under prefix ("": the default).
func newStore(t testing.TB, c redis.UniversalClient, prefix string) *redisstore.Store {
	t.Helper()
	st, err := redisstore.New(context.Background(), c, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testPrefix returns a key prefix of its own for one test, and deletes every
// key under it when the test ends, so test binaries sharing the server do
// not see one another's records.
func testPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	prefix := "sessiontest:" + randomHex(8) + ":"
	t.Cleanup(func() { deletePrefix(t, c, prefix) })
	return prefix
}

// deletePrefix deletes the keys under prefix: on every master of a cluster
// (SCAN lists one node's keys), one DEL a key (a DEL of several keys in
// different slots is refused), pipelined.
func deletePrefix(t testing.TB, c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		pipe := c.Pipeline()
		for iter.Next(ctx) {
			pipe.Del(ctx, iter.Val())
			if pipe.Len() == 500 {
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if pipe.Len() > 0 {
			_, err := pipe.Exec(ctx)
			return err
		}
		return nil
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(ctx, c)
	}
	if err != nil {
		t.Errorf("cleanup of %s*: %v", prefix, err)
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomID() string { return randomHex(32) }

func TestConformance(t *testing.T) {
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	// The Close subtest is skipped: the store has no Close (the client is
	// the caller's). No other capability is skipped.
	//
	// TTLGranularity is one millisecond, not zero: Redis stores an expiry as
	// its millisecond clock at the write plus the TTL, and PTTL subtracts its
	// millisecond clock at the read, so a TTL read back right after a write
	// can be up to 1ms below the TTL minus the time that really passed (seen:
	// "59m59.999s left, want at least 59m59.999464s").
	storetest.Run(t, func(*testing.T) session.Store { return st }, storetest.Options{TTLGranularity: time.Millisecond})
}

// TestNew: New refuses a nil client and fails, naming the PING, when the
// server does not answer or its context is done.
func TestNew(t *testing.T) {
	if st, err := redisstore.New(context.Background(), nil, redisstore.Config{}); err == nil || st != nil {
		t.Errorf("New(nil client) = %v, %v; want an error", st, err)
	}
	// Nothing listens on a port that was just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	down := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, tc := range map[string]struct {
		ctx    context.Context
		client redis.UniversalClient
		is     error // also matched, when set
	}{
		"ServerDown":  {context.Background(), down, nil},
		"DoneContext": {canceled, newClient(t), context.Canceled},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := redisstore.New(tc.ctx, tc.client, redisstore.Config{})
			if err == nil || st != nil {
				t.Fatalf("New = %v, %v; want an error", st, err)
			}
			if !strings.HasPrefix(err.Error(), "redisstore: ping: ") || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("New: %v; want a \"redisstore: ping: \" error (matching %v)", err, tc.is)
			}
		})
	}
}

// TestKeys pins the key layout: Prefix + id, default "session:", with the TTL
// on the key itself, and stores with different prefixes do not see each
// other's records under the same id.
func TestKeys(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	a := newStore(t, c, testPrefix(t, c))
	b := newStore(t, c, testPrefix(t, c))
	def := newStore(t, c, "")
	id := randomID()
	t.Cleanup(func() { c.Del(context.Background(), "session:"+id) })

	if got := def.Key(id); got != "session:"+id {
		t.Errorf("default key %q, want %q", got, "session:"+id)
	}
	for _, st := range []*redisstore.Store{a, b, def} {
		if err := st.Set(ctx, id, []byte(st.Key(id)), 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []*redisstore.Store{a, b, def} {
		key := st.Key(id)
		if got, err := c.Get(ctx, key).Result(); err != nil || got != key {
			t.Errorf("GET %s = %q, %v; want the record written through its store", key, got, err)
		}
		if ttl := c.PTTL(ctx, key).Val(); ttl <= 89*time.Second || ttl > 90*time.Second {
			t.Errorf("PTTL %s = %v, want about 90s", key, ttl)
		}
	}
	if err := a.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	for _, st := range []*redisstore.Store{b, def} {
		if got, err := st.Get(ctx, id); err != nil || string(got) != st.Key(id) {
			t.Errorf("a Delete through another prefix removed %s: %q, %v", st.Key(id), got, err)
		}
	}
}

// TestTTLPrecision checks that TTLs reach Redis to the millisecond, rounded
// up, and never as "no expiry".
func TestTTLPrecision(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	for _, tc := range []struct {
		ttl, lo, hi time.Duration
	}{
		{1500 * time.Millisecond, 1400 * time.Millisecond, 1500 * time.Millisecond},
		{time.Minute + 1, time.Minute - 100*time.Millisecond, time.Minute + time.Millisecond}, // rounded up to the next ms
		{time.Nanosecond, 0, time.Millisecond},                                                // 1ms, not a key without expiry
	} {
		id := randomID()
		if err := st.Set(ctx, id, []byte("x"), tc.ttl); err != nil {
			t.Fatal(err)
		}
		ttl := c.PTTL(ctx, st.Key(id)).Val()
		if ttl == -1 || ttl > tc.hi || ttl < tc.lo && ttl != -2 {
			t.Errorf("Set with TTL %v: PTTL %v, want within [%v, %v] (or already gone)", tc.ttl, ttl, tc.lo, tc.hi)
		}
	}
}

// TestGetTTLNoExpiry: a key without an expiry (not written by the store)
// reports its TTL as unknown (-1), which makes the middleware rewrite rather
// than touch it.
func TestGetTTLNoExpiry(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	id := randomID()
	if err := c.Set(ctx, st.Key(id), "forever", 0).Err(); err != nil {
		t.Fatal(err)
	}
	data, ttl, err := st.GetTTL(ctx, id)
	if err != nil || string(data) != "forever" || ttl != -1 {
		t.Errorf("GetTTL of a key without expiry = %q, %v, %v; want \"forever\", -1, nil", data, ttl, err)
	}
}

// TestWrongType: a key of another type under the session key makes reads
// and compare-and-set fail with an error that names the operation, not a
// missing record, a silent overwrite or a "not equal".
func TestWrongType(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	id := randomID()
	if err := c.RPush(ctx, st.Key(id), "a list").Err(); err != nil {
		t.Fatal(err)
	}
	for op, call := range map[string]func() error{
		"get": func() error {
			_, err := st.Get(ctx, id)
			return err
		},
		"get ttl": func() error {
			_, _, err := st.GetTTL(ctx, id)
			return err
		},
		"compare-and-set": func() error {
			ok, err := st.CompareAndSet(ctx, id, []byte("x"), []byte("y"), time.Minute)
			if ok {
				t.Error("CompareAndSet over a list reported a write")
			}
			return err
		},
	} {
		want := "redisstore: " + op + ": WRONGTYPE"
		if err := call(); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s over a list: %v; want an error starting %q", op, err, want)
		}
	}
	if n := c.LLen(ctx, st.Key(id)).Val(); n != 1 {
		t.Errorf("the list has %d items after CompareAndSet, want 1", n)
	}
}
