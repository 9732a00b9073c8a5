package stores_test

// The cached Redis benchmarks run the bench scenarios with this middleware
// on stores/rueidisstore ("ours-cached": rueidis with server-assisted
// client-side caching), on stores/redisstore ("ours": go-redis, one round
// trip a read), on the memory store ("memory": the same process, no
// network), and with Fiber v2's middleware/session on the gofiber/storage
// Redis adapter ("fiber"), all in one run on the same Redis:
//
//	go test -run '^$' -bench CachedRedis -benchmem -count 3

import (
	"context"
	"testing"

	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/gofiber/fiber/v2/utils"
	fredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
	"github.com/fibersession/session/stores/memory"
	"github.com/fibersession/session/stores/redisstore"
	"github.com/fibersession/session/stores/rueidisstore"
)

func cachedContenders(tb testing.TB) []bench.Contender {
	cleanup, ours, peer := newRedisClient(tb), newRedisClient(tb), newRedisClient(tb)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(client.Close)
	cached, err := rueidisstore.New(context.Background(), client, rueidisstore.Config{Prefix: redisTestPrefix(tb, cleanup)})
	if err != nil {
		tb.Fatal(err)
	}
	plain, err := redisstore.New(context.Background(), ours, redisstore.Config{Prefix: redisTestPrefix(tb, ours)})
	if err != nil {
		tb.Fatal(err)
	}
	prefix := redisTestPrefix(tb, peer)
	return []bench.Contender{
		bench.OursWith("ours-cached", func() (session.Store, func()) { return cached, nil }),
		bench.OursWith("ours", func() (session.Store, func()) { return plain, nil }),
		bench.OursWith("memory", func() (session.Store, func()) {
			st := memory.New(memory.Config{})
			return st, func() { _ = st.Close() }
		}),
		bench.FiberWith("fiber", func() (fsession.Config, func()) {
			return fsession.Config{
				Storage:      fredis.NewFromConnection(peer),
				KeyGenerator: func() string { return prefix + utils.UUIDv4() },
			}, nil
		}),
	}
}

func BenchmarkCachedRedis(b *testing.B) { bench.RunAll(b, cachedContenders(b)) }

// TestCachedRedisBenchScenarios checks that every contender does what the
// benchmarks claim.
func TestCachedRedisBenchScenarios(t *testing.T) { bench.CheckAll(t, cachedContenders(t)) }
