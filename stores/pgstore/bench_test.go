package pgstore

// The benchmarks run the core's bench scenarios (github.com/fibersession/session/bench)
// with this middleware on this store ("ours") and Fiber v2's
// middleware/session over a fiber.Storage on PostgreSQL ("fiber").
//
// The gofiber/storage adapter for pgx v5 is github.com/gofiber/storage/postgres/v3,
// but the module proxy this project builds with refuses it, so "fiber" uses
// sqltest.KV instead: a few lines that send the same statements that
// adapter sends (a k/v/e table; SELECT v, e ... WHERE k = $1 with the expiry
// checked in Go; INSERT ... ON CONFLICT (k) DO UPDATE; DELETE), over the same
// pgxpool. Both contenders make the same number of round trips per scenario.
//
//	go test -run '^$' -bench . -benchmem -count 3

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fibersession/session/internal/bench"
	"github.com/fibersession/session/internal/sqlstore/sqltest"
)

// kvSQL are the statements of gofiber/storage/postgres/v3.
var kvSQL = sqltest.KVStatements{
	Create: []string{
		`CREATE TABLE {table} (k TEXT PRIMARY KEY NOT NULL DEFAULT '', v BYTEA NOT NULL, e BIGINT NOT NULL DEFAULT '0')`,
		`CREATE INDEX ON {table} (e)`,
	},
	Get:    `SELECT v, e FROM {table} WHERE k=$1;`,
	Set:    `INSERT INTO {table} (k, v, e) VALUES ($1, $2, $3) ON CONFLICT (k) DO UPDATE SET v = $4, e = $5`,
	Delete: `DELETE FROM {table} WHERE k=$1`,
}

func contenders(tb testing.TB) []bench.Contender {
	pool := connect(tb)
	st := sqltest.Open(tb, New, pool, Config{Table: sqltest.Table(tb, client{pool})})
	return sqltest.Contenders(st, sqltest.NewKV(tb, client{pool}, pgx.ErrNoRows, kvSQL))
}

func BenchmarkScenarios(b *testing.B) { bench.RunAll(b, contenders(b)) }

// TestBenchScenarios checks that every contender does what the benchmarks
// claim.
func TestBenchScenarios(t *testing.T) { bench.CheckAll(t, contenders(t)) }
