package pgstore

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

// TestMiddleware runs the middleware-level checks on one table, with a look
// at the rows themselves.
func TestMiddleware(t *testing.T) {
	pool := connect(t, dsn())
	table := tableName(t, pool)
	newStore(t, pool, Config{Table: table}) // creates the table once
	storetest.RunMiddleware(t, func(t *testing.T) session.Store {
		return newStore(t, pool, Config{Table: table, SkipCreate: true})
	}, storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			var n int
			q := "SELECT count(*) FROM " + pgx.Identifier{table}.Sanitize() + " WHERE id = $1"
			if err := pool.QueryRow(context.Background(), q, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	})
}

// TestSeveralInstances: two apps, each with its own pool and store, on one
// table.
func TestSeveralInstances(t *testing.T) {
	table := tableName(t, connect(t, dsn()))
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		return newStore(t, connect(t, dsn()), Config{Table: table})
	})
}

// TestServerDown runs the fault checks with a pool that dials the proxy.
func TestServerDown(t *testing.T) {
	table := tableName(t, connect(t, dsn()))
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
		return newStore(t, pool, Config{Table: table})
	}, target, 2*time.Second)
}
