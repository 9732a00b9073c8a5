package natsstore_test

// The benchmarks run the core's bench scenarios (github.com/fibersession/session/internal/bench)
// with this middleware on a JetStream key-value bucket ("ours"). Fiber has
// no NATS storage in this build, so there is no peer.
//
//	go test -run '^$' -bench . -benchmem -count 3

import (
	"testing"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
	"github.com/fibersession/session/stores/natsstore"
)

func contenders(tb testing.TB) []bench.Contender {
	kv := bucket(tb, connect(tb, natsURL), sessionBucketTTL)
	st := newStore(tb, kv, natsstore.Config{})
	return []bench.Contender{bench.OursWith("ours", func() (session.Store, func()) { return st, nil })}
}

func BenchmarkScenarios(b *testing.B) { bench.RunAll(b, contenders(b)) }

// TestBenchScenarios checks that the contender does what the benchmarks
// claim.
func TestBenchScenarios(t *testing.T) { bench.CheckAll(t, contenders(t)) }
