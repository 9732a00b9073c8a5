package sqlitestore_test

// The benchmarks run the core's bench scenarios (github.com/fibersession/session/bench)
// with this middleware on a SQLite file ("ours"). Fiber has no SQLite
// storage in this build, so there is no peer.
//
//	go test -run '^$' -bench . -benchmem -count 3

import (
	"path/filepath"
	"testing"

	"github.com/fibersession/session/internal/bench"
	"github.com/fibersession/session/internal/sqlstore/sqltest"
	"github.com/fibersession/session/stores/sqlitestore"
)

func contenders(tb testing.TB) []bench.Contender {
	db := openDB(tb, filepath.Join(tb.TempDir(), "bench.db"))
	return sqltest.Contenders(sqltest.Open(tb, sqlitestore.New, db, sqlitestore.Config{}), nil)
}

func BenchmarkScenarios(b *testing.B) { bench.RunAll(b, contenders(b)) }

// TestBenchScenarios checks that the contender does what the benchmarks
// claim.
func TestBenchScenarios(t *testing.T) { bench.CheckAll(t, contenders(t)) }
