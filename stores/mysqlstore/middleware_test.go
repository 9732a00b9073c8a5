package mysqlstore

import (
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

// TestMiddleware runs the middleware-level checks on one table, with a look
// at the rows themselves.
func TestMiddleware(t *testing.T) {
	db := connect(t, dsnConfig(t))
	table := tableName(t, db)
	newStore(t, db, Config{Table: table}) // creates the table once
	storetest.RunMiddleware(t, func(t *testing.T) session.Store {
		return newStore(t, db, Config{Table: table, SkipCreate: true})
	}, storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			var n int
			if err := db.QueryRow("SELECT count(*) FROM `"+table+"` WHERE id = ?", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	})
}

// TestSeveralInstances: two apps, each with its own DB and store, on one
// table.
func TestSeveralInstances(t *testing.T) {
	table := tableName(t, connect(t, dsnConfig(t)))
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		return newStore(t, connect(t, dsnConfig(t)), Config{Table: table})
	})
}

// TestServerDown runs the fault checks with a DB that dials the proxy.
func TestServerDown(t *testing.T) {
	cfg := dsnConfig(t)
	table := tableName(t, connect(t, cfg))
	storetest.RunFaults(t, func(t *testing.T, addr string) session.Store {
		cfg := cfg.Clone()
		cfg.Addr = addr
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
		return newStore(t, connect(t, cfg), Config{Table: table})
	}, cfg.Addr, 2*time.Second)
}
