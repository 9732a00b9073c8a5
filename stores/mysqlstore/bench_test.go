package mysqlstore

// The benchmarks run the core's bench scenarios (github.com/fibersession/session/bench)
// with this middleware on this store ("ours") and Fiber v2's
// middleware/session over a fiber.Storage on MariaDB ("fiber").
//
// The gofiber/storage adapter is github.com/gofiber/storage/mysql/v2, but the
// module proxy this project builds with refuses it, so "fiber" uses
// sqltest.KV instead: a few lines that send the same statements that
// adapter sends (a k/v/e table; SELECT v, e ... WHERE k = ? with the expiry
// checked in Go; INSERT ... ON DUPLICATE KEY UPDATE; DELETE), through the
// same driver. Both contenders make the same number of round trips per
// scenario.
//
//	go test -run '^$' -bench . -benchmem -count 3

import (
	"database/sql"
	"testing"

	"github.com/fibersession/session/internal/bench"
	"github.com/fibersession/session/internal/sqlstore"
	"github.com/fibersession/session/internal/sqlstore/sqltest"
)

// kvSQL are the statements of gofiber/storage/mysql/v2.
var kvSQL = sqltest.KVStatements{
	Create: []string{`CREATE TABLE {table} (k VARCHAR(64) NOT NULL DEFAULT '', v BLOB NOT NULL, e BIGINT NOT NULL DEFAULT '0', PRIMARY KEY (k)) ENGINE=InnoDB DEFAULT CHARSET=utf8`},
	Get:    `SELECT v, e FROM {table} WHERE k=?;`,
	Set:    `INSERT INTO {table} (k, v, e) VALUES (?,?,?) ON DUPLICATE KEY UPDATE v = ?, e = ?`,
	Delete: `DELETE FROM {table} WHERE k=?`,
}

func contenders(tb testing.TB) []bench.Contender {
	db := connect(tb, dsnConfig(tb))
	st := sqltest.Open(tb, New, db, Config{Table: sqltest.Table(tb, sqlstore.SQL(db))})
	return sqltest.Contenders(st, sqltest.NewKV(tb, sqlstore.SQL(db), sql.ErrNoRows, kvSQL))
}

func BenchmarkScenarios(b *testing.B) { bench.RunAll(b, contenders(b)) }

// TestBenchScenarios checks that every contender does what the benchmarks
// claim.
func TestBenchScenarios(t *testing.T) { bench.CheckAll(t, contenders(t)) }
