package stores_test

// The Redis benchmarks run the core's bench scenarios
// (github.com/fibersession/session/internal/bench) with this middleware on
// the Redis store ("ours") and Fiber v2's middleware/session on the
// gofiber/storage Redis adapter (github.com/gofiber/storage/redis/v3, whose
// Storage implements fiber v2's fiber.Storage) ("fiber"), on the same Redis,
// with a go-redis client each of the same options. Both contenders' keys get a
// test prefix (Fiber's through KeyGenerator), so that they are cleaned up.
//
//	go test -run '^$' -bench Redis -benchmem -count 3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/gofiber/fiber/v2/utils"
	fredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
	"github.com/fibersession/session/stores/redisstore"
	"github.com/fibersession/session/stores/storetest"
)

// redisAddr is the Redis the benchmarks use: SESSION_REDIS_ADDR or loopback.
var redisAddr = storetest.Addr("SESSION_REDIS_ADDR", "127.0.0.1:6379")

func redisContenders(tb testing.TB) []bench.Contender {
	ours, peer := newRedisClient(tb), newRedisClient(tb)
	st, err := redisstore.New(context.Background(), ours, redisstore.Config{Prefix: redisTestPrefix(tb, ours)})
	if err != nil {
		tb.Fatal(err)
	}
	prefix := redisTestPrefix(tb, peer)
	return []bench.Contender{
		bench.OursWith("ours", func() (session.Store, func()) { return st, nil }),
		bench.FiberWith("fiber", func() (fsession.Config, func()) {
			return fsession.Config{
				Storage:      fredis.NewFromConnection(peer),
				KeyGenerator: func() string { return prefix + utils.UUIDv4() },
			}, nil
		}),
	}
}

func BenchmarkRedis(b *testing.B) { bench.RunAll(b, redisContenders(b)) }

// TestRedisBenchScenarios checks that every contender does what the
// benchmarks claim.
func TestRedisBenchScenarios(t *testing.T) { bench.CheckAll(t, redisContenders(t)) }

// newRedisClient returns a client of the test Redis, closed when the test
// ends, or skips (fails with SESSION_REQUIRE_SERVERS=1) when Redis is
// unreachable.
func newRedisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true, DialTimeout: 2 * time.Second})
	tb.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		storetest.Unavailable(tb, "Redis at "+redisAddr, err)
	}
	return c
}

// redisTestPrefix returns a key prefix of its own, and deletes every key
// under it when the test or benchmark ends.
func redisTestPrefix(tb testing.TB, c redis.UniversalClient) string {
	tb.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "sessiontest:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		flush := func() {
			if len(keys) > 0 {
				if err := c.Del(ctx, keys...).Err(); err != nil {
					tb.Errorf("cleanup of %s*: %v", prefix, err)
				}
				keys = keys[:0]
			}
		}
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 500 {
				flush()
			}
		}
		flush()
		if err := iter.Err(); err != nil {
			tb.Errorf("cleanup of %s*: %v", prefix, err)
		}
	})
	return prefix
}
