package redisstore_test

// The benchmarks run the core's bench scenarios (github.com/fibersession/session/internal/bench)
// with this middleware on the Redis store ("ours") and Fiber v2's
// middleware/session on the gofiber/storage Redis adapter
// (github.com/gofiber/storage/redis/v3, whose Storage implements fiber v2's
// fiber.Storage) ("fiber"), on the same Redis, with a go-redis client each of
// the same options. Both contenders' keys get a test prefix (Fiber's through
// KeyGenerator), so that they are cleaned up.
//
//	go test -run '^$' -bench . -benchmem -count 3

import (
	"testing"

	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/gofiber/fiber/v2/utils"
	fredis "github.com/gofiber/storage/redis/v3"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
)

func contenders(tb testing.TB) []bench.Contender {
	ours, peer := newClient(tb), newClient(tb)
	st := newStore(tb, ours, testPrefix(tb, ours))
	prefix := testPrefix(tb, peer)
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

func BenchmarkScenarios(b *testing.B) { bench.RunAll(b, contenders(b)) }

// TestBenchScenarios checks that every contender does what the benchmarks
// claim.
func TestBenchScenarios(t *testing.T) { bench.CheckAll(t, contenders(t)) }
