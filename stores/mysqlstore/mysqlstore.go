// Package mysqlstore keeps sessions in a MariaDB or MySQL table through
// database/sql with github.com/go-sql-driver/mysql (a *sql.DB). Several
// application instances may share one table. It is tested against MariaDB
// 10.11.
//
// # Table
//
// New creates the table (with its index on expires_at) if it does not exist.
// To run the migration yourself instead, set Config.SkipCreate; the SQL is
// (with your table name for `sessions`):
//
//	CREATE TABLE IF NOT EXISTS `sessions` (
//		id         VARBINARY(64) NOT NULL PRIMARY KEY,
//		data       LONGBLOB      NOT NULL,
//		expires_at DATETIME(6)   NOT NULL,
//		version    BIGINT        NOT NULL DEFAULT 1,
//		INDEX expires_at_idx (expires_at)
//	) ENGINE=InnoDB
//
// The id column is VARBINARY so that ids compare byte for byte: a VARCHAR
// with the server's default collation would make ids that differ only in
// letter case (or in trailing spaces) the same row. The index is declared
// inside CREATE TABLE, which also works on MySQL (whose CREATE INDEX has no
// IF NOT EXISTS). The table name is `name` or `database.name`, each part a
// plain identifier (letters, digits, underscores), and is always quoted.
// Ids longer than 64 bytes are refused (ErrLongID), never truncated. Set's
// upsert uses VALUES(), which MySQL 8.0.20+ accepts with a deprecation warning.
//
// # Time to live
//
// Every timestamp comes from the database clock, in UTC so that the session
// time_zone and daylight-saving changes play no part: a write stores
// expires_at = UTC_TIMESTAMP(6) + INTERVAL ttl MICROSECOND, and every read,
// touch and compare-and-set only sees rows with expires_at > UTC_TIMESTAMP(6).
// An expired row is therefore never returned, even before it is removed.
// Expired rows are deleted by a background cleanup every
// Config.CleanupInterval (and by DeleteExpired), in batches of 1000 rows to
// keep locks short; Close stops it.
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
// The driver interrupts a query when its context ends, by closing the
// connection. Bound the session middleware's store calls with its
// StoreTimeout (for example 2s); that is what keeps a request from hanging
// while the database is unreachable. In the DSN, also set timeout (dialling,
// for example timeout=5s) and, as a backstop, readTimeout and writeTimeout.
//
// The *sql.DB belongs to the caller: Close stops the cleanup but does not
// close the DB.
package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sweep"
)

// Config tunes the store. The zero value is usable: every field has a default.
type Config struct {
	// Table is the table's name, "name" or "database.name". Default "sessions".
	Table string

	// SkipCreate, when true, makes New run no SQL: the table must already
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

// DefaultCleanupInterval is the cleanup interval of a zero Config.
const DefaultCleanupInterval = 5 * time.Minute

// MaxIDLen is the longest id the table holds, in bytes.
const MaxIDLen = 64

// sweepBatch is how many expired rows one DELETE of the cleanup removes.
const sweepBatch = 1000

// ErrTable is returned by New for a table name that is not a plain or
// database-qualified identifier.
var ErrTable = errors.New("mysqlstore: table must be name or database.name, each part [A-Za-z_][A-Za-z0-9_]* of at most 64 bytes")

// ErrLongID is returned by the writes for an id longer than MaxIDLen.
var ErrLongID = errors.New("mysqlstore: id longer than 64 bytes")

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})?$`)

// errDuplicate is MySQL's ER_DUP_ENTRY.
const errDuplicate = 1062

// Store is a session.Store backed by a MariaDB or MySQL table. It implements
// session.Toucher, session.TTLGetter, session.CompareAndSetter and
// session.Closer. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	log *slog.Logger

	get, getTTL, set, insert, replaceExpired, casOld, touch, del, sweep string

	sweeper *sweep.Loop // the background cleanup
}

var (
	_ session.Store            = (*Store)(nil)
	_ session.Toucher          = (*Store)(nil)
	_ session.TTLGetter        = (*Store)(nil)
	_ session.CompareAndSetter = (*Store)(nil)
	_ session.Closer           = (*Store)(nil)
)

// New returns a store on db. Unless cfg.SkipCreate is set it creates the
// table if needed, using ctx for that. It starts the background cleanup
// unless cfg.CleanupInterval is negative.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("mysqlstore: nil db")
	}
	if cfg.Table == "" {
		cfg.Table = "sessions"
	}
	if !identRE.MatchString(cfg.Table) {
		return nil, fmt.Errorf("%w: %q", ErrTable, cfg.Table)
	}
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = DefaultCleanupInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	table := "`" + strings.ReplaceAll(cfg.Table, ".", "`.`") + "`"

	if !cfg.SkipCreate {
		if _, err := db.ExecContext(ctx, createSQL(table)); err != nil {
			return nil, fmt.Errorf("mysqlstore: creating table %s: %w", table, err)
		}
	}

	const now = `UTC_TIMESTAMP(6)`
	const exp = now + ` + INTERVAL ? MICROSECOND`
	s := &Store{
		db:     db,
		log:    cfg.Logger,
		get:    `SELECT data FROM ` + table + ` WHERE id = ? AND expires_at > ` + now,
		getTTL: `SELECT data, TIMESTAMPDIFF(MICROSECOND, ` + now + `, expires_at) FROM ` + table + ` WHERE id = ? AND expires_at > ` + now,
		set: `INSERT INTO ` + table + ` (id, data, expires_at) VALUES (?, ?, ` + exp + `)
			ON DUPLICATE KEY UPDATE data = VALUES(data), expires_at = VALUES(expires_at), version = version + 1`,
		insert:         `INSERT INTO ` + table + ` (id, data, expires_at) VALUES (?, ?, ` + exp + `)`,
		replaceExpired: `UPDATE ` + table + ` SET data = ?, expires_at = ` + exp + `, version = version + 1 WHERE id = ? AND expires_at <= ` + now,
		casOld:         `UPDATE ` + table + ` SET data = ?, expires_at = ` + exp + `, version = version + 1 WHERE id = ? AND expires_at > ` + now + ` AND data = ?`,
		touch:          `UPDATE ` + table + ` SET expires_at = ` + exp + ` WHERE id = ? AND expires_at > ` + now,
		del:            `DELETE FROM ` + table + ` WHERE id = ?`,
		sweep:          fmt.Sprintf(`DELETE FROM %s WHERE expires_at <= %s LIMIT %d`, table, now, sweepBatch),
	}
	s.sweeper = sweep.Start(cfg.CleanupInterval, s.cleanup)
	return s, nil
}

// createSQL returns the migration for the quoted table name.
func createSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
	id         VARBINARY(64) NOT NULL PRIMARY KEY,
	data       LONGBLOB      NOT NULL,
	expires_at DATETIME(6)   NOT NULL,
	version    BIGINT        NOT NULL DEFAULT 1,
	INDEX expires_at_idx (expires_at)
) ENGINE=InnoDB`
}

func micros(d time.Duration) int64 { return int64(d / time.Microsecond) }

// Get returns the live record under id, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(id) > MaxIDLen {
		return nil, session.ErrNotFound
	}
	var data []byte
	if err := s.db.QueryRowContext(ctx, s.get, id).Scan(&data); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, session.ErrNotFound
		}
		return nil, err
	}
	return data, nil
}

// GetTTL returns the live record under id and its remaining time to live,
// read by one query, or session.ErrNotFound.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if len(id) > MaxIDLen {
		return nil, 0, session.ErrNotFound
	}
	var data []byte
	var left int64
	if err := s.db.QueryRowContext(ctx, s.getTTL, id).Scan(&data, &left); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, session.ErrNotFound
		}
		return nil, 0, err
	}
	return data, time.Duration(left) * time.Microsecond, nil
}

// Set stores data under id for ttl, replacing any record (an upsert).
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(id) > MaxIDLen {
		return ErrLongID
	}
	_, err := s.db.ExecContext(ctx, s.set, id, data, micros(ttl))
	return err
}

// CompareAndSet stores data under id for ttl only if the live record is
// byte-for-byte old, or, with a nil old, only if there is no live record
// (an expired row counts as absent). It reports whether it wrote. See the
// package doc for the statements and their atomicity.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if len(id) > MaxIDLen {
		return false, ErrLongID
	}
	if old != nil {
		return s.exec1(ctx, s.casOld, data, micros(ttl), id, old)
	}
	_, err := s.db.ExecContext(ctx, s.insert, id, data, micros(ttl))
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != errDuplicate {
		return err == nil, err
	}
	return s.exec1(ctx, s.replaceExpired, data, micros(ttl), id)
}

// exec1 runs an UPDATE of at most one row and reports whether it changed one.
func (s *Store) exec1(ctx context.Context, q string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Touch sets the remaining time to live of the live record under id to ttl,
// leaving its data alone. A missing or expired record is not an error and is
// not brought back.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(id) > MaxIDLen {
		return nil
	}
	_, err := s.db.ExecContext(ctx, s.touch, micros(ttl), id)
	return err
}

// Delete removes the record under id; a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(id) > MaxIDLen {
		return nil
	}
	_, err := s.db.ExecContext(ctx, s.del, id)
	return err
}

// DeleteExpired deletes every expired row now, in batches, and reports how
// many. The background cleanup calls it every Config.CleanupInterval.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, s.sweep)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

// cleanup is one run of the background cleanup; Close cancels ctx.
func (s *Store) cleanup(ctx context.Context) {
	if _, err := s.DeleteExpired(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("mysqlstore: deleting expired sessions failed", "err", err)
	}
}

// Close stops the background cleanup, interrupting a run in progress, and
// waits for it to exit. It does not close the *sql.DB, which stays the
// caller's. The store remains usable, and Close may be called more than once.
func (s *Store) Close() error {
	s.sweeper.Stop()
	return nil
}
