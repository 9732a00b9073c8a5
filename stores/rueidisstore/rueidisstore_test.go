package rueidisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/rueidisstore"
	"github.com/fibersession/session/stores/storetest"
)

// The Redis the tests use: SESSION_REDIS_ADDR, a standalone server (default
// loopback), or, when SESSION_REDIS_CLUSTER is set, the Redis Cluster whose
// nodes it lists ("127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"; .ci/run
// starts such a cluster with .ci/redis-cluster and runs the tests against
// it too). The tests that put a proxy in front of one server run against
// the standalone server only, and are skipped with a cluster.
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

// The store's capabilities, checked at compile time; and the ones it must
// not have, so that the middleware decides touches from the record's own
// write time and extends a session by a conditional rewrite.
var (
	_ session.CompareAndSetter = (*rueidisstore.Store)(nil)
	_ session.StaleReader      = (*rueidisstore.Store)(nil)
)

func TestNoTTLNoTouch(t *testing.T) {
	var st session.Store = (*rueidisstore.Store)(nil)
	if _, ok := st.(session.TTLGetter); ok {
		t.Error("the store is a session.TTLGetter")
	}
	if _, ok := st.(session.Toucher); ok {
		t.Error("the store is a session.Toucher")
	}
}

// clientOptions are the options of the tests' clients: a dial that gives
// up after two seconds, and the short timeouts the package documentation
// recommends.
func clientOptions(addrs ...string) rueidis.ClientOption {
	return rueidis.ClientOption{
		InitAddress:      addrs,
		Dialer:           netDialer(2*time.Second, 0),
		ConnWriteTimeout: 2 * time.Second,
	}
}

// newClient returns a client of the test Redis (a cluster client when
// SESSION_REDIS_CLUSTER is set), closed when the test ends, or skips (fails
// with SESSION_REQUIRE_SERVERS=1) when Redis is unreachable.
func newClient(t testing.TB) rueidis.Client {
	t.Helper()
	return newClientWith(t, func(*rueidis.ClientOption) {})
}

// newClientWith is newClient with options changed by opt.
func newClientWith(t testing.TB, opt func(*rueidis.ClientOption)) rueidis.Client {
	t.Helper()
	if redisCluster == nil {
		return newStandaloneWith(t, opt)
	}
	o := clientOptions(redisCluster...)
	opt(&o)
	c, err := rueidis.NewClient(o)
	if err == nil {
		t.Cleanup(c.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		// Every node must answer, and the cluster must serve every slot.
		for addr, n := range c.Nodes() {
			if err = n.Do(ctx, n.B().Ping().Build()).Error(); err != nil {
				err = errors.New(addr + ": " + err.Error())
				break
			}
		}
		if err == nil {
			var info string
			if info, err = c.Do(ctx, c.B().ClusterInfo().Build()).ToString(); err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster_state is not ok")
			}
		}
	}
	if err != nil {
		storetest.Unavailable(t, "Redis Cluster at "+strings.Join(redisCluster, ","), err)
	}
	return c
}

// newStandalone returns a client of the standalone test Redis, closed when
// the test ends, or skips (fails with SESSION_REQUIRE_SERVERS=1) when it is
// unreachable.
func newStandalone(t testing.TB) rueidis.Client {
	t.Helper()
	return newStandaloneWith(t, func(*rueidis.ClientOption) {})
}

func newStandaloneWith(t testing.TB, opt func(*rueidis.ClientOption)) rueidis.Client {
	t.Helper()
	o := clientOptions(redisAddr)
	o.ForceSingleClient = true
	opt(&o)
	c, err := rueidis.NewClient(o)
	if err != nil {
		storetest.Unavailable(t, "Redis at "+redisAddr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// newStore returns a store on c under prefix ("": the default), with the
// default cache.
func newStore(t testing.TB, c rueidis.Client, prefix string) *rueidisstore.Store {
	t.Helper()
	st, err := rueidisstore.New(context.Background(), c, rueidisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if !st.StaleReads() {
		t.Fatal("StaleReads = false with the default CacheTTL")
	}
	return st
}

// testPrefix returns a key prefix of its own for one test, and deletes every
// key under it when the test ends, so test binaries sharing the server do
// not see one another's records.
func testPrefix(t testing.TB, c rueidis.Client) string {
	t.Helper()
	prefix := "sessiontest:" + randomHex(8) + ":"
	t.Cleanup(func() { deletePrefix(t, c, prefix) })
	return prefix
}

// deletePrefix deletes the keys under prefix, through a store's Clear
// (SCAN on every master, UNLINK a key).
func deletePrefix(t testing.TB, c rueidis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := rueidisstore.New(ctx, c, rueidisstore.Config{Prefix: prefix, CacheTTL: -1})
	if err == nil {
		err = st.Clear(ctx)
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

// TestConformance runs the conformance suite with the cache on (the
// default): every read of the suite goes through DoCache, and the suite's
// write-then-read checks go through the store's own-write marks.
func TestConformance(t *testing.T) {
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	// The Close subtest is skipped: the store has no Close (the client is
	// the caller's); Touch and GetTTL too, by design. TTLGranularity is one
	// millisecond: Redis keeps PX to the millisecond.
	storetest.Run(t, func(*testing.T) session.Store { return st }, storetest.Options{TTLGranularity: time.Millisecond})
}

// TestConformanceNoCache runs the conformance suite with the cache off.
func TestConformanceNoCache(t *testing.T) {
	c := newClient(t)
	st, err := rueidisstore.New(context.Background(), c, rueidisstore.Config{Prefix: testPrefix(t, c), CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	if st.StaleReads() {
		t.Error("StaleReads = true with caching off")
	}
	storetest.Run(t, func(*testing.T) session.Store { return st }, storetest.Options{TTLGranularity: time.Millisecond})
}

// TestNew: New refuses a nil client and fails, naming the PING, when the
// server does not answer or its context is done.
func TestNew(t *testing.T) {
	if st, err := rueidisstore.New(context.Background(), nil, rueidisstore.Config{}); err == nil || st != nil {
		t.Errorf("New(nil client) = %v, %v; want an error", st, err)
	}
	// A client whose server went away after it connected: a proxy in front
	// of the standalone server, stopped.
	newStandalone(t) // skips when the server is down
	proxy := storetest.NewProxy(t, redisAddr)
	o := clientOptions(proxy.Addr())
	o.ForceSingleClient = true
	o.Dialer = netDialer(250*time.Millisecond, 0)
	o.DisableRetry = true
	down, err := rueidis.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	proxy.Stop()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, tc := range map[string]struct {
		ctx    context.Context
		client rueidis.Client
		is     error // also matched, when set
	}{
		"ServerDown":  {context.Background(), down, nil},
		"DoneContext": {canceled, newClient(t), context.Canceled},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := rueidisstore.New(tc.ctx, tc.client, rueidisstore.Config{})
			if err == nil || st != nil {
				t.Fatalf("New = %v, %v; want an error", st, err)
			}
			if !strings.HasPrefix(err.Error(), "rueidisstore: ping: ") || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("New: %v; want a \"rueidisstore: ping: \" error (matching %v)", err, tc.is)
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
	t.Cleanup(func() { c.Do(context.Background(), c.B().Del().Key("session:"+id).Build()) })

	if got := def.Key(id); got != "session:"+id {
		t.Errorf("default key %q, want %q", got, "session:"+id)
	}
	for _, st := range []*rueidisstore.Store{a, b, def} {
		if err := st.Set(ctx, id, []byte(st.Key(id)), 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []*rueidisstore.Store{a, b, def} {
		key := st.Key(id)
		if got, err := c.Do(ctx, c.B().Get().Key(key).Build()).ToString(); err != nil || got != key {
			t.Errorf("GET %s = %q, %v; want the record written through its store", key, got, err)
		}
		if ms, _ := c.Do(ctx, c.B().Pttl().Key(key).Build()).AsInt64(); ms <= 89_000 || ms > 90_000 {
			t.Errorf("PTTL %s = %dms, want about 90s", key, ms)
		}
	}
	if err := a.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	for _, st := range []*rueidisstore.Store{b, def} {
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
		ttl    time.Duration
		lo, hi int64 // ms
	}{
		{1500 * time.Millisecond, 1400, 1500},
		{time.Minute + 1, 59_900, 60_001}, // rounded up to the next ms
		{time.Nanosecond, 0, 1},           // 1ms, not a key without expiry
	} {
		id := randomID()
		if err := st.Set(ctx, id, []byte("x"), tc.ttl); err != nil {
			t.Fatal(err)
		}
		ms, err := c.Do(ctx, c.B().Pttl().Key(st.Key(id)).Build()).AsInt64()
		if err != nil || ms == -1 || ms > tc.hi || ms < tc.lo && ms != -2 {
			t.Errorf("Set with TTL %v: PTTL %dms (%v), want within [%d, %d] (or already gone)", tc.ttl, ms, err, tc.lo, tc.hi)
		}
	}
}

// TestWrongType: a key of another type under the session key makes reads
// and compare-and-set fail with an error that names the operation, not a
// missing record, a silent overwrite or a "not equal", through the cache or
// not.
func TestWrongType(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	prefix := testPrefix(t, c)
	cached := newStore(t, c, prefix)
	uncached, err := rueidisstore.New(ctx, c, rueidisstore.Config{Prefix: prefix, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	id := randomID()
	if err := c.Do(ctx, c.B().Rpush().Key(cached.Key(id)).Element("a list").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*rueidisstore.Store{"cached": cached, "uncached": uncached} {
		for op, call := range map[string]func() error{
			"get": func() error {
				_, err := st.Get(ctx, id)
				return err
			},
			"compare-and-set": func() error {
				ok, err := st.CompareAndSet(ctx, id, []byte("x"), []byte("y"), time.Minute)
				if ok {
					t.Errorf("%s: CompareAndSet over a list reported a write", name)
				}
				return err
			},
		} {
			want := "rueidisstore: " + op + ": WRONGTYPE"
			if err := call(); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s: %s over a list: %v; want an error starting %q", name, op, err, want)
			}
		}
	}
	if n, _ := c.Do(ctx, c.B().Llen().Key(cached.Key(id)).Build()).AsInt64(); n != 1 {
		t.Errorf("the list has %d items after CompareAndSet, want 1", n)
	}
}
