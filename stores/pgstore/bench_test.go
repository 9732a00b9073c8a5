package pgstore

// The benchmarks run the core's bench scenarios (github.com/fibersession/session/bench)
// with this middleware on this store ("ours") and Fiber v2's
// middleware/session over a fiber.Storage on PostgreSQL ("fiber").
//
// The gofiber/storage adapter for pgx v5 is github.com/gofiber/storage/postgres/v3,
// but the module proxy this project builds with refuses it, so "fiber" uses
// fiberStorage below instead: a few lines that send the same statements that
// adapter sends (a k/v/e table; SELECT v, e ... WHERE k = $1 with the expiry
// checked in Go; INSERT ... ON CONFLICT (k) DO UPDATE; DELETE), over the same
// pgxpool. Both contenders make the same number of round trips per scenario.
//
//	go test -run '^$' -bench . -benchmem -count 3

import (
	"context"
	"errors"
	"testing"
	"time"

	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
)

func contenders(tb testing.TB) []bench.Contender {
	pool := connect(tb, dsn())
	st := newStore(tb, pool, Config{Table: tableName(tb, pool)})
	peer := newFiberStorage(tb, pool)
	return []bench.Contender{
		bench.OursWith("ours", func() (session.Store, func()) { return st, nil }),
		bench.FiberWith("fiber", func() (fsession.Config, func()) { return fsession.Config{Storage: peer}, nil }),
	}
}

func BenchmarkScenarios(b *testing.B) { bench.RunAll(b, contenders(b)) }

// TestBenchScenarios checks that every contender does what the benchmarks
// claim.
func TestBenchScenarios(t *testing.T) { bench.CheckAll(t, contenders(t)) }

// fiberStorage is a fiber.Storage that sends the statements of
// gofiber/storage/postgres/v3 (see the comment at the top of the file).
type fiberStorage struct {
	pool                 *pgxpool.Pool
	sel, ins, del, reset string
}

func newFiberStorage(tb testing.TB, pool *pgxpool.Pool) *fiberStorage {
	table := pgx.Identifier{tableName(tb, pool)}.Sanitize()
	for _, q := range []string{
		`CREATE TABLE ` + table + ` (k TEXT PRIMARY KEY NOT NULL DEFAULT '', v BYTEA NOT NULL, e BIGINT NOT NULL DEFAULT '0')`,
		`CREATE INDEX ON ` + table + ` (e)`,
	} {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			tb.Fatal(err)
		}
	}
	return &fiberStorage{
		pool:  pool,
		sel:   `SELECT v, e FROM ` + table + ` WHERE k=$1;`,
		ins:   `INSERT INTO ` + table + ` (k, v, e) VALUES ($1, $2, $3) ON CONFLICT (k) DO UPDATE SET v = $4, e = $5`,
		del:   `DELETE FROM ` + table + ` WHERE k=$1`,
		reset: `TRUNCATE TABLE ` + table,
	}
}

func (s *fiberStorage) Get(key string) ([]byte, error) {
	var v []byte
	var e int64
	if err := s.pool.QueryRow(context.Background(), s.sel, key).Scan(&v, &e); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		return nil, err
	}
	if e != 0 && e <= time.Now().Unix() {
		return nil, nil
	}
	return v, nil
}

func (s *fiberStorage) Set(key string, val []byte, exp time.Duration) error {
	var e int64
	if exp > 0 {
		e = time.Now().Add(exp).Unix() + 1
	}
	_, err := s.pool.Exec(context.Background(), s.ins, key, val, e, val, e)
	return err
}

func (s *fiberStorage) Delete(key string) error {
	_, err := s.pool.Exec(context.Background(), s.del, key)
	return err
}

func (s *fiberStorage) Reset() error {
	_, err := s.pool.Exec(context.Background(), s.reset)
	return err
}

func (s *fiberStorage) Close() error { return nil }
