// Package pgstore keeps sessions in a PostgreSQL table through a pgx v5
// connection pool (*pgxpool.Pool). Several application instances may share one
// table.
//
// # Table
//
// New creates the table and its index if they do not exist. To run the
// migration yourself instead, set Config.SkipCreate; the SQL is (with your
// table name for "sessions"):
//
//	CREATE TABLE IF NOT EXISTS "sessions" (
//		id         text        PRIMARY KEY,
//		data       bytea       NOT NULL,
//		expires_at timestamptz NOT NULL,
//		version    bigint      NOT NULL DEFAULT 1
//	);
//	CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
//
// The table name is "name" or "schema.name", each part a plain identifier
// (letters, digits, underscores), and is always quoted, so its case is kept.
//
// # Time to live
//
// Every timestamp comes from the database clock: a write stores
// expires_at = now() + ttl (to the microsecond), and every read, touch and
// compare-and-set only sees rows with expires_at > now(). An expired row is
// therefore never returned, even before it is removed. The store never reads
// the application server's clock, so instances with skewed clocks agree on
// when a row expires.
// Expired rows are deleted by a background cleanup every
// Config.CleanupInterval (and by DeleteExpired); Close stops it.
//
// # Compare-and-set
//
// CompareAndSet is one statement either way. With a nil old value it is
//
//	INSERT INTO sessions AS s ... ON CONFLICT (id) DO UPDATE SET ... WHERE s.expires_at <= now()
//
// which inserts, or replaces an expired row (an expired row counts as
// absent), but leaves a live row alone; with an old value it is
//
//	UPDATE ... SET data = $new, expires_at = ..., version = version + 1
//	WHERE id = $1 AND expires_at > now() AND data = $old
//
// comparing the stored bytes. PostgreSQL re-checks the WHERE clause against
// the latest row version when a concurrent write got there first, so of two
// racing compare-and-sets only one succeeds. The version column counts writes
// to a row; it is maintained but not relied on.
//
// # Timeouts
//
// pgx puts no time limit on a query by itself: a call ends when its context
// does. Bound the session middleware's store calls with its StoreTimeout
// (for example 2s); that is what keeps a request from hanging while the
// database is unreachable. Also set connect_timeout in the connection string
// (for example connect_timeout=5), which bounds dialling the server.
//
// The pool belongs to the caller: Close stops the cleanup but does not close
// the pool.
package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sweep"
)

// Config tunes the store. The zero value is usable: every field has a default.
type Config struct {
	// Table is the table's name, "name" or "schema.name". Default "sessions".
	Table string

	// SkipCreate, when true, makes New run no SQL: the table and index must
	// already exist (see the package doc for the migration).
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

// ErrTable is returned by New for a table name that is not a plain or
// schema-qualified identifier.
var ErrTable = errors.New("pgstore: table must be name or schema.name, each part [A-Za-z_][A-Za-z0-9_]* of at most 63 bytes")

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)

// Store is a session.Store backed by a PostgreSQL table. It implements
// session.Toucher, session.TTLGetter, session.CompareAndSetter and
// session.Closer. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	get, getTTL, set, touch, del, casNew, casOld, sweep string

	sweeper *sweep.Loop // the background cleanup
}

var (
	_ session.Store            = (*Store)(nil)
	_ session.Toucher          = (*Store)(nil)
	_ session.TTLGetter        = (*Store)(nil)
	_ session.CompareAndSetter = (*Store)(nil)
	_ session.Closer           = (*Store)(nil)
)

// New returns a store on pool. Unless cfg.SkipCreate is set it creates the
// table and its index if needed, using ctx for that. It starts the background
// cleanup unless cfg.CleanupInterval is negative.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: nil pool")
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
	parts := strings.Split(cfg.Table, ".")
	table := pgx.Identifier(parts).Sanitize()
	index := pgx.Identifier{indexName(parts[len(parts)-1])}.Sanitize()

	if !cfg.SkipCreate {
		for _, q := range createSQL(table, index) {
			if _, err := pool.Exec(ctx, q); err != nil {
				return nil, fmt.Errorf("pgstore: creating table %s: %w", table, err)
			}
		}
	}

	const exp = `now() + $3::bigint * interval '1 microsecond'`
	s := &Store{
		pool:   pool,
		log:    cfg.Logger,
		get:    `SELECT data FROM ` + table + ` WHERE id = $1 AND expires_at > now()`,
		getTTL: `SELECT data, (extract(epoch FROM expires_at - now()) * 1000000)::bigint FROM ` + table + ` WHERE id = $1 AND expires_at > now()`,
		set: `INSERT INTO ` + table + ` AS s (id, data, expires_at, version) VALUES ($1, $2, ` + exp + `, 1)
			ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at, version = s.version + 1`,
		casNew: `INSERT INTO ` + table + ` AS s (id, data, expires_at, version) VALUES ($1, $2, ` + exp + `, 1)
			ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at, version = s.version + 1
			WHERE s.expires_at <= now()`,
		casOld: `UPDATE ` + table + ` SET data = $2, expires_at = ` + exp + `, version = version + 1
			WHERE id = $1 AND expires_at > now() AND data = $4`,
		touch: `UPDATE ` + table + ` SET expires_at = now() + $2::bigint * interval '1 microsecond' WHERE id = $1 AND expires_at > now()`,
		del:   `DELETE FROM ` + table + ` WHERE id = $1`,
		sweep: `DELETE FROM ` + table + ` WHERE expires_at <= now()`,
	}
	s.sweeper = sweep.Start(cfg.CleanupInterval, s.cleanup)
	return s, nil
}

// createSQL returns the migration for the quoted table and index names.
func createSQL(table, index string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + table + ` (
	id         text        PRIMARY KEY,
	data       bytea       NOT NULL,
	expires_at timestamptz NOT NULL,
	version    bigint      NOT NULL DEFAULT 1
)`,
		`CREATE INDEX IF NOT EXISTS ` + index + ` ON ` + table + ` (expires_at)`,
	}
}

// indexName is "<table>_expires_at_idx", shortened with a hash of the table
// name when that would exceed PostgreSQL's 63-byte identifiers (which would
// otherwise be truncated into names that may collide).
func indexName(table string) string {
	const suffix = "_expires_at_idx"
	if len(table)+len(suffix) <= 63 {
		return table + suffix
	}
	sum := sha256.Sum256([]byte(table))
	return table[:63-len(suffix)-9] + "_" + hex.EncodeToString(sum[:4]) + suffix
}

func micros(d time.Duration) int64 { return int64(d / time.Microsecond) }

// Get returns the live record under id, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var data []byte
	if err := s.pool.QueryRow(ctx, s.get, id).Scan(&data); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
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
	var data []byte
	var left int64
	if err := s.pool.QueryRow(ctx, s.getTTL, id).Scan(&data, &left); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
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
	_, err := s.pool.Exec(ctx, s.set, id, data, micros(ttl))
	return err
}

// CompareAndSet stores data under id for ttl only if the live record is
// byte-for-byte old, or, with a nil old, only if there is no live record
// (an expired row counts as absent). It reports whether it wrote, in one
// atomic statement.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var args []any
	q := s.casNew
	if old == nil {
		args = []any{id, data, micros(ttl)}
	} else {
		q, args = s.casOld, []any{id, data, micros(ttl), old}
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Touch sets the remaining time to live of the live record under id to ttl,
// leaving its data alone. A missing or expired record is not an error and is
// not brought back.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, s.touch, id, micros(ttl))
	return err
}

// Delete removes the record under id; a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, s.del, id)
	return err
}

// DeleteExpired deletes every expired row now and reports how many. The
// background cleanup calls it every Config.CleanupInterval.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, s.sweep)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// cleanup is one run of the background cleanup; Close cancels ctx.
func (s *Store) cleanup(ctx context.Context) {
	if _, err := s.DeleteExpired(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("pgstore: deleting expired sessions failed", "err", err)
	}
}

// Close stops the background cleanup, interrupting a run in progress, and
// waits for it to exit. It does not close the pool, which stays the caller's.
// The store remains usable, and Close may be called more than once.
func (s *Store) Close() error {
	s.sweeper.Stop()
	return nil
}
