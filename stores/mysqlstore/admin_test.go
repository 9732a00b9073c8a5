package mysqlstore

import (
	"database/sql"
	"testing"

	"github.com/fibersession/session/internal/sqlstore"
	"github.com/fibersession/session/internal/sqlstore/sqltest"
)

// TestAdmin runs the shared tests of the administration capabilities and
// the owner index (sqltest.RunAdmin), all in the test database.
func TestAdmin(t *testing.T) {
	sqltest.RunAdmin(t, sqltest.Harness[*sql.DB, Config, *Store]{
		Client:  sqlstore.SQL,
		New:     New,
		MaxName: 64,
	}, sqltest.Admin[*sql.DB]{
		Connect: func(tb testing.TB) (*sql.DB, func(testing.TB) *sql.DB) {
			db := connect(tb, dsnConfig(tb))
			// The server takes 151 connections by default, which the
			// concurrent tests would pass, and other tests use it too.
			db.SetMaxOpenConns(32)
			return db, func(tb testing.TB) *sql.DB {
				db := connect(tb, dsnConfig(tb))
				db.SetMaxOpenConns(1)
				return db
			}
		},
		Dialect: &dialect,
		Past:    `UTC_TIMESTAMP(6) - INTERVAL 1 HOUR`,
		Param:   "?",
	})
}
