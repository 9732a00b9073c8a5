package pgstore

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sqlstore"
	"github.com/fibersession/session/internal/sqlstore/sqltest"
	"github.com/fibersession/session/stores/storetest"
)

// The store has every optional capability of a session.Store
// (session.TTLGetter, session.Toucher, session.CompareAndSetter),
// DeleteExpired and io.Closer; admin.go asserts the administration and
// owner index ones.
var _ sqltest.Store = (*Store)(nil)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"

func dsn() string { return storetest.Addr("SESSION_POSTGRES_DSN", defaultDSN) }

// connect returns a pool on the test database, closed when tb ends, or skips
// (fails with SESSION_REQUIRE_SERVERS=1) when the server cannot be reached.
func connect(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn())
	if err == nil {
		if err = pool.Ping(ctx); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		storetest.Unavailable(tb, "PostgreSQL", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

var harness = sqltest.Harness[*pgxpool.Pool, Config, *Store]{
	Connect:  connect,
	Client:   func(pool *pgxpool.Pool) sqlstore.Client { return client{pool} },
	New:      New,
	Indexes:  `SELECT count(*) FROM pg_indexes WHERE tablename = '{table}' AND indexdef LIKE '%(expires_at)'`,
	Schema:   "public",
	MaxName:  63,
	ErrTable: ErrTable,
}

func TestSQL(t *testing.T) { sqltest.Run(t, harness) }

// TestServerDown runs the fault checks with a pool that dials the proxy.
func TestServerDown(t *testing.T) {
	table := sqltest.Table(t, client{connect(t)})
	pcfg, err := pgxpool.ParseConfig(dsn())
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(pcfg.ConnConfig.Host, strconv.Itoa(int(pcfg.ConnConfig.Port)))
	storetest.RunFaults(t, func(t *testing.T, addr string) session.Store {
		host, port, _ := net.SplitHostPort(addr)
		p, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		pcfg.ConnConfig.Host, pcfg.ConnConfig.Port = host, uint16(p)
		pcfg.ConnConfig.ConnectTimeout = time.Second
		pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return sqltest.Open(t, New, pool, Config{Table: table})
	}, target, 2*time.Second)
}
