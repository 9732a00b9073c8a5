package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

// TestMiddleware runs the middleware-level checks, with a look at the key in
// Redis itself.
func TestMiddleware(t *testing.T) {
	admin := newClient(t)
	prefix := testPrefix(t, admin)
	storetest.RunMiddleware(t, func(t *testing.T) session.Store {
		return newStore(t, newClient(t), prefix)
	}, storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			n, err := admin.Exists(context.Background(), prefix+id).Result()
			if err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	})
}

// TestSeveralInstances: two apps, each with its own go-redis client, on one
// Redis.
func TestSeveralInstances(t *testing.T) {
	prefix := testPrefix(t, newClient(t))
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		return newStore(t, newClient(t), prefix)
	})
}

// TestRedisDown runs the fault checks (storetest.RunFaults: the server
// cut off and frozen, alone and under load, and no goroutine left once the
// clients are closed) with a client that has short timeouts and one retry,
// and honours contexts (ContextTimeoutEnabled) so that Config.StoreTimeout
// bounds every call, however many times go-redis dials (v9.16 and later
// retry a failed dial, Options.DialerRetries; the test sets only options
// that v9.0.0 has, the module's floor); go-redis may wait up to a second
// before it dials again after a run of failed dials, hence Reconnect. The
// store starts no goroutines of its own: once the caller closes the client,
// its pool's goroutines (such as the one that redials after a run of failed
// dials) end too, which RunFaults checks.
//
// The proxy stands in front of one server, so the test runs against the
// standalone Redis, not a cluster.
func TestRedisDown(t *testing.T) {
	if redisCluster != nil {
		t.Skip("SESSION_REDIS_CLUSTER is set: the fault test proxies one standalone server (SESSION_REDIS_ADDR) and runs without it")
	}
	prefix := testPrefix(t, newStandalone(t))
	storetest.RunFaults(t, func(t *testing.T, addr string) session.Store {
		c := redis.NewClient(&redis.Options{
			Addr:                  addr,
			DialTimeout:           250 * time.Millisecond,
			ReadTimeout:           250 * time.Millisecond,
			WriteTimeout:          250 * time.Millisecond,
			MaxRetries:            1,
			ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { _ = c.Close() }) // before the proxy stops
		return newStore(t, c, prefix)
	}, redisAddr, time.Second, storetest.FaultOptions{Reconnect: 10 * time.Second})
}
