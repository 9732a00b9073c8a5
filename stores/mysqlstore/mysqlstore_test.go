package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

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

const defaultDSN = "root@tcp(127.0.0.1:3306)/test"

// dsnConfig returns the test server's DSN, parsed, with short dial and I/O
// timeouts.
func dsnConfig(tb testing.TB) *mysql.Config {
	tb.Helper()
	cfg, err := mysql.ParseDSN(storetest.Addr("SESSION_MYSQL_DSN", defaultDSN))
	if err != nil {
		tb.Fatalf("SESSION_MYSQL_DSN: %v", err)
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, 10*time.Second, 10*time.Second
	return cfg
}

// connect returns a DB for cfg, closed when tb ends, or skips (fails with
// SESSION_REQUIRE_SERVERS=1) when the server cannot be reached.
func connect(tb testing.TB, cfg *mysql.Config) *sql.DB {
	tb.Helper()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxIdleConns(8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		storetest.Unavailable(tb, "MariaDB", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestSQL runs the shared tests with and without clientFoundRows: the store
// reads affected-row counts that must mean the same either way.
func TestSQL(t *testing.T) {
	for _, foundRows := range []bool{false, true} {
		t.Run(map[bool]string{false: "Default", true: "ClientFoundRows"}[foundRows], func(t *testing.T) {
			cfg := dsnConfig(t)
			cfg.ClientFoundRows = foundRows
			sqltest.Run(t, sqltest.Harness[*sql.DB, Config, *Store]{
				Connect: func(tb testing.TB) *sql.DB { return connect(tb, cfg) },
				Client:  sqlstore.SQL,
				New:     New,
				Indexes: `SELECT count(*) FROM information_schema.statistics
					WHERE table_schema = DATABASE() AND table_name = '{table}' AND column_name = 'expires_at'`,
				Schema:   cfg.DBName,
				MaxName:  64,
				ErrTable: ErrTable,
			})
		})
	}
}

// Ids longer than the column are refused, not truncated into another id.
func TestLongID(t *testing.T) {
	db := connect(t, dsnConfig(t))
	ctx := context.Background()
	st := sqltest.Open(t, New, db, Config{Table: sqltest.Table(t, sqlstore.SQL(db))})
	id := strings.Repeat("a", MaxIDLen)
	if err := st.Set(ctx, id, []byte("max"), time.Minute); err != nil {
		t.Fatalf("Set of a %d-byte id: %v", MaxIDLen, err)
	}
	long := id + "b"
	if err := st.Set(ctx, long, []byte("long"), time.Minute); !errors.Is(err, ErrLongID) {
		t.Errorf("Set of a %d-byte id: %v, want ErrLongID", len(long), err)
	}
	if ok, err := st.CompareAndSet(ctx, long, nil, []byte("long"), time.Minute); ok || !errors.Is(err, ErrLongID) {
		t.Errorf("CompareAndSet of a %d-byte id: %v, %v; want false, ErrLongID", len(long), ok, err)
	}
	if _, err := st.Get(ctx, long); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of a %d-byte id: %v, want ErrNotFound", len(long), err)
	}
	if got, err := st.Get(ctx, id); err != nil || string(got) != "max" {
		t.Errorf("Get(%d-byte id) = %q, %v; want the record untouched", MaxIDLen, got, err)
	}
}

// TestServerDown runs the fault checks with a DB that dials the proxy.
func TestServerDown(t *testing.T) {
	cfg := dsnConfig(t)
	table := sqltest.Table(t, sqlstore.SQL(connect(t, cfg)))
	storetest.RunFaults(t, func(t *testing.T, addr string) session.Store {
		cfg := dsnConfig(t) // a copy of its own
		cfg.Addr = addr
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
		return sqltest.Open(t, New, connect(t, cfg), Config{Table: table})
	}, cfg.Addr, 2*time.Second)
}

// TestContextInterruptsQuery pins what the package documentation promises
// under Timeouts: a query whose context ends is cut short, with an error
// matching the context's. The driver has done so since v1.4.0 (v1.3.0 runs a
// query to its end whatever its context); the module requires v1.5.0, the
// first with a go.mod (v1.4's appengine.go would add google.golang.org/appengine
// to this module's requirements).
func TestContextInterruptsQuery(t *testing.T) {
	db := connect(t, dsnConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var slept int
	err := db.QueryRowContext(ctx, "SELECT SLEEP(5)").Scan(&slept)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a 5s query under a 200ms context took %v, want it cut short", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a 5s query under a 200ms context: %v, want an error matching context.DeadlineExceeded", err)
	}
}
