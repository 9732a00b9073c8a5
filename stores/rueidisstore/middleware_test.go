package rueidisstore_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

// netDialer returns a dialer that gives up after timeout, with TCP
// keep-alive probes every keepAlive (0: rueidis's default, one second),
// which is also how often rueidis PINGs an idle connection.
func netDialer(timeout, keepAlive time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: keepAlive}
}

// TestMiddleware runs the middleware-level checks with the cache on, each
// subtest's store on a client of its own, with a look at the key in Redis
// itself.
func TestMiddleware(t *testing.T) {
	admin := newClient(t)
	prefix := testPrefix(t, admin)
	storetest.RunMiddleware(t, func(t *testing.T) session.Store {
		return newStore(t, newClient(t), prefix)
	}, storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			n, err := admin.Do(context.Background(), admin.B().Exists().Key(prefix+id).Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	})
}

// TestSeveralInstances: two apps, each with its own rueidis client and so
// its own cache, on one Redis: what one writes, the other reads at once
// (the server's invalidation reaches its cache first).
func TestSeveralInstances(t *testing.T) {
	prefix := testPrefix(t, newClient(t))
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		return newStore(t, newClient(t), prefix)
	})
}

// faultOptions are the client options the fault tests use, which the
// package documentation recommends: a dial that gives up after 250ms, a
// PING of an idle connection every 100ms (Dialer.KeepAlive) that must be
// answered within 250ms (ConnWriteTimeout), else the connection, and with
// it its cache, is dropped.
func faultOptions(addr string) rueidis.ClientOption {
	o := clientOptions(addr)
	o.ForceSingleClient = true
	o.Dialer = netDialer(250*time.Millisecond, 100*time.Millisecond)
	o.ConnWriteTimeout = 250 * time.Millisecond
	return o
}

// TestRedisDown runs the fault checks (storetest.RunFaults: the server cut
// off and frozen, alone and under load, and no goroutine left once the
// clients are closed) with the cache on and the short timeouts of
// faultOptions. The proxy stands in front of one server, so the test runs
// against the standalone Redis, not a cluster.
//
// With the connections frozen, a read that the cache could answer must
// fail all the same: the store stops trusting the cache once one of its
// calls failed, until a plain GET succeeds, and rueidis drops a frozen
// connection's cache once its PING goes unanswered.
func TestRedisDown(t *testing.T) {
	if redisCluster != nil {
		t.Skip("SESSION_REDIS_CLUSTER is set: the fault test proxies one standalone server (SESSION_REDIS_ADDR) and runs without it")
	}
	prefix := testPrefix(t, newStandalone(t))
	storetest.RunFaults(t, func(t *testing.T, addr string) session.Store {
		c, err := rueidis.NewClient(faultOptions(addr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close) // before the proxy stops
		return newStore(t, c, prefix)
	}, redisAddr, time.Second)
}
