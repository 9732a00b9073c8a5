package redisstore_test

import (
	"context"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
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

// TestRedisDown runs the fault checks with a client that has short
// timeouts and one retry, and honours contexts (ContextTimeoutEnabled) so
// that Config.StoreTimeout bounds every call, however many times go-redis
// dials (v9.16 and later retry a failed dial, Options.DialerRetries; the
// test sets only options that v9.0.0 has, the module's floor); go-redis may
// wait up to a second before it dials again after a run of failed dials,
// hence Reconnect. Then it checks that the store starts no
// goroutines of its own: once the caller closes the client, its pool's
// goroutines (such as the one that redials after a run of failed dials) end
// too, and nothing of the store's is left running.
func TestRedisDown(t *testing.T) {
	prefix := testPrefix(t, newClient(t))
	// fasthttp starts a goroutine of its own, for good, with the first
	// request it serves; have it running before counting.
	warm := fiber.New(fiber.Config{DisableStartupMessage: true})
	if resp, err := warm.Test(httptest.NewRequest("GET", "/", nil), -1); err == nil {
		resp.Body.Close()
	}
	goroutines := runtime.NumGoroutine()

	t.Run("Faults", func(t *testing.T) {
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
	})

	// The subtest's cleanups closed the client and stopped the proxy.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after the client was closed, %d before it:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
