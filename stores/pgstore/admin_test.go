package pgstore

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session/internal/sqlstore/sqltest"
)

// TestAdmin runs the shared tests of the administration capabilities and
// the owner index (sqltest.RunAdmin), all in the test database.
func TestAdmin(t *testing.T) {
	sqltest.RunAdmin(t, harness, sqltest.Admin[*pgxpool.Pool]{
		Connect: func(tb testing.TB) (*pgxpool.Pool, func(testing.TB) *pgxpool.Pool) {
			return connect(tb), single
		},
		Dialect: &dialect,
		Past:    `now() - interval '1 hour'`,
		Param:   "$1",
	})
}

// single returns a pool on the test database that holds at most one
// connection, closed when tb ends.
func single(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(dsn())
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}
