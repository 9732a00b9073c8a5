package sqlitestore

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/fibersession/session/internal/sqlstore"
	"github.com/fibersession/session/internal/sqlstore/sqltest"
	"github.com/fibersession/session/stores/storetest"
)

// TestAdmin runs the shared tests of the administration capabilities and
// the owner index (sqltest.RunAdmin), each in a database file of its own,
// opened as the package documentation tells users of New to.
func TestAdmin(t *testing.T) {
	sqltest.RunAdmin(t, sqltest.Harness[*sql.DB, Config, *Store]{
		Client:  sqlstore.SQL,
		New:     New,
		Options: storetest.Options{TTLGranularity: time.Millisecond},
	}, sqltest.Admin[*sql.DB]{
		Connect: func(tb testing.TB) (*sql.DB, func(testing.TB) *sql.DB) {
			path := filepath.Join(tb.TempDir(), "admin.db")
			db := openDB(tb, path)
			// Writers take turns through busy_timeout's polling, which
			// does not queue them: with a connection per goroutine of the
			// concurrent tests, hundreds, the unluckiest would wait past it
			// (SQLITE_BUSY). A bounded pool queues the rest in
			// database/sql, as an app's pool should.
			db.SetMaxOpenConns(8)
			return db, func(tb testing.TB) *sql.DB {
				db := openDB(tb, path)
				db.SetMaxOpenConns(1)
				return db
			}
		},
		Dialect: &dialect,
		Past:    `(strftime('%s', 'now') - 3600) * 1000`,
		Param:   "?",
	})
}

func openDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
