// Package mysqlstore keeps sessions in a MariaDB or MySQL table through
// database/sql with github.com/go-sql-driver/mysql (a *sql.DB). Several
// application instances may share one table. It is tested against MariaDB
// 10.11.
//
//	store, err := mysqlstore.New(ctx, db, mysqlstore.Config{})
//	...
//	defer store.Close()
//
// # Tables
//
// New creates the table and the table of its owner index (each with its
// index on expires_at) if they do not exist, using its context for that and
// for nothing else. To run the migration yourself instead, set
// Config.SkipCreate; the SQL is (with your table name for `sessions`):
//
//	CREATE TABLE IF NOT EXISTS `sessions` (
//		id         VARBINARY(64) NOT NULL PRIMARY KEY,
//		data       LONGBLOB      NOT NULL,
//		expires_at DATETIME(6)   NOT NULL,
//		version    BIGINT        NOT NULL DEFAULT 1,
//		INDEX expires_at_idx (expires_at)
//	) ENGINE=InnoDB;
//	CREATE TABLE IF NOT EXISTS `sessions_owners` (
//		owner      VARBINARY(1024) NOT NULL,
//		id         VARBINARY(64)   NOT NULL,
//		expires_at DATETIME(6)     NOT NULL,
//		PRIMARY KEY (owner, id),
//		INDEX expires_at_idx (expires_at)
//	) ENGINE=InnoDB
//
// The id and owner columns are VARBINARY so that they compare byte for byte:
// a VARCHAR with the server's default collation would make ids or owners
// that differ only in letter case (or in trailing spaces) the same. The
// indexes are declared inside CREATE TABLE, which also works on MySQL (whose
// CREATE INDEX has no IF NOT EXISTS). The table name is `name` or
// `database.name`, each part a plain identifier (letters, digits,
// underscores) of at most 64 bytes, and is always quoted. The owner index
// table is in the same database, named after the table with "_owners"
// appended (so do not give another table that name), shortened with a hash
// of the table name where that would pass 64 bytes. Ids longer than 64 bytes
// and owners longer than 1024 bytes are refused (ErrLongID, ErrLongOwner),
// never truncated. Set's upsert uses VALUES(), which MySQL 8.0.20+ accepts
// with a deprecation warning.
//
// The owner index table is new in this release. A table made by an earlier
// one needs nothing but the statement that creates the owner index table,
// which New runs; with SkipCreate, run it yourself. Until then the store
// works as before, but Own, Disown and Owned fail (Clear and the cleanup
// skip the missing table).
//
// # Time to live
//
// Every timestamp of a session row comes from the database clock, in UTC so
// that the session time_zone and daylight-saving changes play no part: a
// write stores expires_at = UTC_TIMESTAMP(6) + INTERVAL ttl MICROSECOND, and
// every read, touch, compare-and-set, scan and count only sees rows with
// expires_at > UTC_TIMESTAMP(6). An expired row is therefore never returned,
// even before it is removed. Expired rows are deleted by DeleteExpired, in
// batches of 1000 rows to keep locks short, which a background cleanup calls
// every Config.CleanupInterval; Close stops it. DeleteExpired then deletes
// the owner index entries past their time the same way.
//
// # Administration and the owner index
//
// The store is a session.Scanner, session.Counter and session.Clearer, for
// the Manager's Sessions, Count and Clear. Scan reads the live rows in pages
// of 1000,
//
//	SELECT id, data FROM sessions WHERE id > ? AND expires_at > UTC_TIMESTAMP(6) ORDER BY id LIMIT 1000
//
// each a query of its own whose rows are all read before the page is handed
// to the callback, so no cursor, transaction or connection is held while
// the callback runs (it may call the store) and at most one page is in
// memory. Count counts the live rows. Clear runs DELETE on the table and
// then on its owner index table (two statements, not one transaction) and
// touches nothing else in the database.
//
// The store is also a session.OwnerIndex, for Manager.DestroyOwner and
// Manager.Devices: the owner index table holds an (owner, id) entry per
// owned session, with the time until which it stands. The entries' times
// are those the application passes to Own, compared with the application's
// clock (sent as Unix microseconds and turned into UTC DATETIMEs by the
// server, so neither time_zone nor the DSN's loc plays a part), unlike the
// rows' expiry. Own is an INSERT ... ON DUPLICATE KEY UPDATE of its entry,
// then a plain (non-locking) SELECT of the owner's entries past their time
// and, only when there are some, a DELETE of exactly those rows that
// re-checks their time: the usual Own locks its own entry and nothing else,
// where a DELETE of the owner's range of rows by time would lock the range
// and its gaps on every call. Concurrent statements on one owner's entries
// can still deadlock now and then, so every statement of the owner index
// runs on its own (autocommit) and runs again, up to ten times in all, when
// InnoDB aborts it to break a deadlock (error 1213). Owned is a SELECT of
// the owner's entries not past their time, and Disown a DELETE of the
// owner's entries with the given ids.
//
// # Compare-and-set
//
// With an old value, CompareAndSet is one statement,
//
//	UPDATE sessions SET data = ?, expires_at = ..., version = version + 1
//	WHERE id = ? AND expires_at > UTC_TIMESTAMP(6) AND data = ?
//
// comparing the stored bytes. InnoDB locks the row and evaluates the WHERE
// clause against its latest committed version, so of two racing
// compare-and-sets only one succeeds. With a nil old value (only if absent)
// it is a plain INSERT, and only when that fails on the duplicate key, an
// UPDATE of the same shape with WHERE expires_at <= UTC_TIMESTAMP(6): an
// expired row counts as absent and is replaced, a live one is left alone. If
// a concurrent Delete removes the row between those two statements the
// result is a spurious false (nothing written), never a wrong write.
//
// Every UPDATE increments version, so a row it matches is always a row it
// changes: the affected-row counts the store reads mean the same with and
// without the DSN parameter clientFoundRows, which may be set either way.
// The store does not use INSERT ... ON DUPLICATE KEY UPDATE for
// compare-and-set because its affected-row count is ambiguous under
// clientFoundRows=true. (Set is such an upsert; its count is not read.)
//
// # Timeouts
//
// The store adds no timeouts of its own. The driver interrupts a query when
// its context ends, by closing the connection, and a call cut short by its
// context returns an error matching context.Canceled or
// context.DeadlineExceeded. Bound the session middleware's store calls with
// its StoreTimeout (for example 2s); that is what keeps a request from
// hanging while the database is unreachable. In the DSN, also set timeout
// (dialling, for example timeout=5s) and, as a backstop, readTimeout and
// writeTimeout.
//
// # Errors and ownership
//
// Every error of a database call starts with "mysqlstore: " and what failed;
// a missing or expired record is session.ErrNotFound. The *sql.DB belongs to
// the caller: Close stops the cleanup but does not close the DB.
package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sqlstore"
)

// Config tunes the store. The zero value is usable: every field has a
// default.
type Config struct {
	// Table is the table's name, "name" or "database.name", each part
	// [A-Za-z_][A-Za-z0-9_]* of at most 64 bytes; it is always quoted.
	// Default "sessions".
	Table string
	// SkipCreate, when true, makes New run no SQL: the tables must already
	// exist (see the package doc for the migration).
	SkipCreate bool
	// CleanupInterval is how often expired rows are deleted in the
	// background. Default (zero) 5 minutes; a negative value disables the
	// cleanup (expired rows are still never returned; call DeleteExpired).
	CleanupInterval time.Duration
	// Logger receives the errors of the background cleanup. Default
	// slog.Default().
	Logger *slog.Logger
}

// MaxIDLen is the longest id the table holds, in bytes.
const MaxIDLen = 64

// ErrTable is returned by New for a table name that is not a plain or
// database-qualified identifier.
var ErrTable = errors.New("mysqlstore: table must be name or database.name, each part [A-Za-z_][A-Za-z0-9_]* of at most 64 bytes")

// ErrLongID is returned by the writes for an id longer than MaxIDLen.
var ErrLongID = errors.New("mysqlstore: id longer than 64 bytes")

// duplicate reports whether err is MySQL's ER_DUP_ENTRY.
func duplicate(err error) bool { return isError(err, 1062) }

func isError(err error, number uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == number
}

// now is the database clock in UTC; expiry is now plus a TTL in microseconds.
// at is the UTC DATETIME of a parameter in Unix microseconds: the owner
// index keeps the application's times, not the database's, and converts
// them without the session time_zone or the driver's loc.
const (
	now    = `UTC_TIMESTAMP(6)`
	expiry = now + ` + INTERVAL ? MICROSECOND`
	at     = `TIMESTAMP'1970-01-01 00:00:00' + INTERVAL ? MICROSECOND`
)

var dialect = sqlstore.Dialect{
	Name: "mysqlstore", Quote: "`", MaxName: 64, ErrTable: ErrTable, NoRows: sql.ErrNoRows,
	SQL: sqlstore.Statements{
		Create: []string{`CREATE TABLE IF NOT EXISTS {table} (
	id         VARBINARY(64) NOT NULL PRIMARY KEY,
	data       LONGBLOB      NOT NULL,
	expires_at DATETIME(6)   NOT NULL,
	version    BIGINT        NOT NULL DEFAULT 1,
	INDEX expires_at_idx (expires_at)
) ENGINE=InnoDB`},
		GetTTL: `SELECT data, TIMESTAMPDIFF(MICROSECOND, ` + now + `, expires_at) FROM {table} WHERE id = ? AND expires_at > ` + now,
		Set: `INSERT INTO {table} (id, data, expires_at) VALUES (?, ?, ` + expiry + `)
			ON DUPLICATE KEY UPDATE data = VALUES(data), expires_at = VALUES(expires_at), version = version + 1`,
		Insert:         `INSERT INTO {table} (id, data, expires_at) VALUES (?, ?, ` + expiry + `)`,
		ReplaceExpired: `UPDATE {table} SET data = ?, expires_at = ` + expiry + `, version = version + 1 WHERE id = ? AND expires_at <= ` + now,
		Update:         `UPDATE {table} SET data = ?, expires_at = ` + expiry + `, version = version + 1 WHERE id = ? AND expires_at > ` + now + ` AND data = ?`,
		Touch:          `UPDATE {table} SET expires_at = ` + expiry + ` WHERE id = ? AND expires_at > ` + now,
		Delete:         `DELETE FROM {table} WHERE id = ?`,
		DeleteExpired:  `DELETE FROM {table} WHERE expires_at <= ` + now + ` LIMIT {batch}`,

		// Administration and the owner index.
		CreateOwners: []string{`CREATE TABLE IF NOT EXISTS {owners} (
	owner      VARBINARY(1024) NOT NULL,
	id         VARBINARY(64)   NOT NULL,
	expires_at DATETIME(6)     NOT NULL,
	PRIMARY KEY (owner, id),
	INDEX expires_at_idx (expires_at)
) ENGINE=InnoDB`},
		ScanFirst:   `SELECT id, data FROM {table} WHERE expires_at > ` + now + ` ORDER BY id LIMIT {batch}`,
		ScanNext:    `SELECT id, data FROM {table} WHERE id > ? AND expires_at > ` + now + ` ORDER BY id LIMIT {batch}`,
		Count:       `SELECT COUNT(*) FROM {table} WHERE expires_at > ` + now,
		Clear:       `DELETE FROM {table}`,
		ClearOwners: `DELETE FROM {owners}`,
		Own:         `INSERT INTO {owners} (owner, id, expires_at) VALUES (?, ?, ` + at + `) ON DUPLICATE KEY UPDATE expires_at = ` + at,
		// The narrow pruning (see the package documentation): a plain
		// SELECT of the ids past their time, then, only when there are
		// some, a DELETE of exactly those that re-checks their time.
		Expired:             `SELECT id FROM {owners} WHERE owner = ? AND expires_at <= ` + at,
		Prune:               `DELETE FROM {owners} WHERE owner = ? AND expires_at <= ` + at + ` AND id IN `,
		Disown:              `DELETE FROM {owners} WHERE owner = ? AND id IN `,
		Owned:               `SELECT id FROM {owners} WHERE owner = ? AND expires_at > ` + at,
		DeleteExpiredOwners: `DELETE FROM {owners} WHERE expires_at <= ` + at + ` LIMIT {batch}`,
	},
	Time:    func(t time.Time) any { return t.UnixMicro() }, // the parameter of at
	OwnArgs: func(owner, id, until, _ any) []any { return []any{owner, id, until, until} },
	MaxID:   MaxIDLen,
	NoTable: func(err error) bool { return isError(err, 1146) }, // ER_NO_SUCH_TABLE
	// InnoDB aborts a statement to break a deadlock (ER_LOCK_DEADLOCK,
	// 1213), which rolls back only that statement: the store runs no
	// multi-statement transactions. Every statement of the owner index
	// that writes, and Clear's, runs again then.
	Deadlock:   func(err error) bool { return isError(err, 1213) },
	Attempts:   10,
	RetryClear: true,
}

// Store is a session.Store backed by a MariaDB or MySQL table. It implements
// session.Toucher, session.TTLGetter, session.CompareAndSetter,
// session.Scanner, session.Counter, session.Clearer, session.OwnerIndex and
// io.Closer. It is safe for concurrent use.
type Store struct {
	db *sqlstore.DB
}

// New returns a store on db. Unless cfg.SkipCreate is set it creates the
// table and the owner index table if needed, using ctx for that and for
// nothing else. It starts the background cleanup unless cfg.CleanupInterval
// is negative. A nil db or a bad table name (ErrTable) is an error.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	return sqlstore.New(ctx, sqlstore.SQL(db), sqlstore.Config(cfg), &dialect, func(db *sqlstore.DB) *Store { return &Store{db} })
}

// Close stops the background cleanup, interrupting a run in progress, and
// waits for it to exit. It does not close the *sql.DB, which stays the
// caller's. The store remains usable, and Close may be called more than once.
func (s *Store) Close() error {
	return s.db.Close()
}

// DeleteExpired deletes every expired row now, in batches of 1000, and
// reports how many, then the owner index entries whose time has passed (not
// counted). The background cleanup calls it every Config.CleanupInterval.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	return s.db.DeleteExpired(ctx)
}

// Get returns the live record under id, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	if len(id) > MaxIDLen {
		return nil, session.ErrNotFound
	}
	data, _, err := s.db.Get(ctx, "get", s.db.SQL.GetTTL, id)
	return data, err
}

// GetTTL returns the live record under id and its remaining time to live,
// read by one query, or session.ErrNotFound.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	if len(id) > MaxIDLen {
		return nil, 0, session.ErrNotFound
	}
	data, left, err := s.db.Get(ctx, "get ttl", s.db.SQL.GetTTL, id)
	return data, time.Duration(left) * time.Microsecond, err
}

// Set stores data under id for ttl, replacing any record (an upsert).
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if len(id) > MaxIDLen {
		return ErrLongID
	}
	_, err := s.db.Exec(ctx, "set", s.db.SQL.Set, id, data, sqlstore.Micros(ttl))
	return err
}

// CompareAndSet stores data under id for ttl only if the live record is
// byte-for-byte old, or, with a nil old, only if there is no live record
// (an expired row counts as absent). It reports whether it wrote. See the
// package doc for the statements and their atomicity.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if len(id) > MaxIDLen {
		return false, ErrLongID
	}
	if old != nil {
		n, err := s.db.Exec(ctx, "compare-and-set", s.db.SQL.Update, data, sqlstore.Micros(ttl), id, old)
		return n == 1, err
	}
	_, err := s.db.Exec(ctx, "compare-and-set", s.db.SQL.Insert, id, data, sqlstore.Micros(ttl))
	if err == nil || !duplicate(err) {
		return err == nil, err
	}
	n, err := s.db.Exec(ctx, "compare-and-set", s.db.SQL.ReplaceExpired, data, sqlstore.Micros(ttl), id)
	return n == 1, err
}

// Touch sets the remaining time to live of the live record under id to ttl,
// leaving its data alone. A missing or expired record is not an error and is
// not brought back.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if len(id) > MaxIDLen {
		return nil
	}
	_, err := s.db.Exec(ctx, "touch", s.db.SQL.Touch, sqlstore.Micros(ttl), id)
	return err
}

// Delete removes the record under id; a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if len(id) > MaxIDLen {
		return nil
	}
	_, err := s.db.Exec(ctx, "delete", s.db.SQL.Delete, id)
	return err
}
