// Package pgstore keeps sessions in a PostgreSQL table through a pgx v5
// connection pool (*pgxpool.Pool). Several application instances may share one
// table.
//
//	store, err := pgstore.New(ctx, pool, pgstore.Config{})
//	...
//	defer store.Close()
//
// # Tables
//
// New creates the table, the table of its owner index and their indexes if
// they do not exist, using its context for that and for nothing else. To
// run the migration yourself instead, set Config.SkipCreate; the SQL is
// (with your table name for "sessions"):
//
//	CREATE TABLE IF NOT EXISTS "sessions" (
//		id         text        PRIMARY KEY,
//		data       bytea       NOT NULL,
//		expires_at timestamptz NOT NULL,
//		version    bigint      NOT NULL DEFAULT 1
//	);
//	CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
//	CREATE TABLE IF NOT EXISTS "sessions_owners" (
//		owner      bytea       NOT NULL,
//		id         text        NOT NULL,
//		expires_at timestamptz NOT NULL,
//		PRIMARY KEY (owner, id)
//	);
//	CREATE INDEX IF NOT EXISTS "sessions_owners_expires_at_idx" ON "sessions_owners" (expires_at);
//
// The table name is "name" or "schema.name", each part a plain identifier
// (letters, digits, underscores) of at most 63 bytes, and is always quoted,
// so its case is kept. The owner index table is in the same schema, named
// after the table with "_owners" appended (so do not give another table
// that name), and the index names are the tables' with "_expires_at_idx"
// appended; each name is shortened with a hash of the name it extends where
// it would pass PostgreSQL's 63 bytes.
//
// The owner index table is new in this release. A table made by an earlier
// one needs nothing but the two statements that create the owner index
// table and its index, which New runs; with SkipCreate, run them yourself.
// Until then the store works as before, but Own, Disown and Owned fail
// (Clear and the cleanup skip the missing table).
//
// # Time to live
//
// Every timestamp of a session row comes from the database clock: a write
// stores expires_at = now() + ttl (to the microsecond), and every read,
// touch, compare-and-set, scan and count only sees rows with
// expires_at > now(). An expired row is therefore never returned, even
// before it is removed. The store never reads the application server's
// clock for them, so instances with skewed clocks agree on when a row
// expires. (The owner index, below, keeps the application's times.)
//
// Expired rows are deleted by DeleteExpired, in batches of 1000 rows to keep
// locks short, which a background cleanup calls every
// Config.CleanupInterval; Close stops it. A row that a concurrent write
// makes live again is not deleted: each batch re-checks expires_at on the
// row it deletes. DeleteExpired then deletes the owner index entries past
// their time the same way.
//
// # Administration and the owner index
//
// The store is a session.Scanner, session.Counter and session.Clearer, for
// the Manager's Sessions, Count and Clear. Scan reads the live rows in pages
// of 1000,
//
//	SELECT id, data FROM sessions WHERE id > $last AND expires_at > now() ORDER BY id LIMIT 1000
//
// each a query of its own that has ended before the page's rows are handed
// to the callback, so no cursor, transaction or connection is held while
// the callback runs (it may call the store) and at most one page is in
// memory. Count counts the live rows. Clear runs DELETE on the table and
// then on its owner index table (two statements, not one transaction) and
// touches nothing else in the database.
//
// The store is also a session.OwnerIndex, for Manager.DestroyOwner and
// Manager.Devices: the owner index table holds an (owner, id) entry per
// owned session, with the time until which it stands. Owners are stored as
// bytes (bytea), so any string is kept and compared exactly: owners that
// differ in case, in trailing spaces or in Unicode normalisation are
// different owners. The entries' times are those the application passes
// to Own, compared with the application's clock, unlike the rows' expiry.
// Own is one statement, an upsert of its entry together with the deletion
// of the owner's other entries past their time; it runs again, up to five
// times in all, when PostgreSQL aborts it to break a deadlock. Owned is a
// SELECT of the owner's entries not past their time, and Disown a DELETE of
// the owner's entries with the given ids.
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
// The store adds no timeouts of its own, and pgx puts no time limit on a
// query by itself: a call ends when its context does (a call cut short by
// its context returns an error matching context.Canceled or
// context.DeadlineExceeded). Bound the session middleware's store calls with
// its StoreTimeout (for example 2s); that is what keeps a request from
// hanging while the database is unreachable. Also set connect_timeout in the
// connection string (for example connect_timeout=5), which bounds dialling
// the server.
//
// # Errors and ownership
//
// Every error of a database call starts with "pgstore: " and what failed; a
// missing or expired record is session.ErrNotFound. The pool belongs to the
// caller: Close stops the cleanup but does not close the pool.
package pgstore

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session/internal/sqlstore"
)

// ErrTable is returned by New for a table name that is not a plain or
// schema-qualified identifier.
var ErrTable = errors.New("pgstore: table must be name or schema.name, each part [A-Za-z_][A-Za-z0-9_]* of at most 63 bytes")

// Config tunes the store. The zero value is usable: every field has a
// default.
type Config struct {
	// Table is the table's name, "name" or "schema.name", each part
	// [A-Za-z_][A-Za-z0-9_]* of at most 63 bytes; it is always quoted, so
	// its case is kept. Default "sessions".
	Table string
	// SkipCreate, when true, makes New run no SQL: the tables and indexes
	// must already exist (see the package doc for the migration).
	SkipCreate bool
	// CleanupInterval is how often expired rows are deleted in the
	// background. Default (zero) 5 minutes; a negative value disables the
	// cleanup (expired rows are still never returned; call DeleteExpired).
	CleanupInterval time.Duration
	// Logger receives the errors of the background cleanup. Default
	// slog.Default().
	Logger *slog.Logger
}

// expiry is now() plus the TTL, the third argument, in microseconds; upsert
// is Set, an insert that replaces any row.
const (
	expiry = `now() + $3::bigint * interval '1 microsecond'`
	upsert = `INSERT INTO {table} AS s (id, data, expires_at) VALUES ($1, $2, ` + expiry + `)
			ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at, version = s.version + 1`
)

var dialect = sqlstore.Dialect{
	Name: "pgstore", Quote: `"`, MaxName: 63, ErrTable: ErrTable, NoRows: pgx.ErrNoRows,
	SQL: sqlstore.Statements{
		Create: []string{`CREATE TABLE IF NOT EXISTS {table} (
	id         text        PRIMARY KEY,
	data       bytea       NOT NULL,
	expires_at timestamptz NOT NULL,
	version    bigint      NOT NULL DEFAULT 1
)`,
			`CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at)`,
		},
		GetTTL: `SELECT data, (extract(epoch FROM expires_at - now()) * 1000000)::bigint FROM {table} WHERE id = $1 AND expires_at > now()`,
		Set:    upsert,
		Insert: upsert + ` WHERE s.expires_at <= now()`,
		Update: `UPDATE {table} SET data = $2, expires_at = ` + expiry + `, version = version + 1
			WHERE id = $1 AND expires_at > now() AND data = $4`,
		Touch:  `UPDATE {table} SET expires_at = now() + $2::bigint * interval '1 microsecond' WHERE id = $1 AND expires_at > now()`,
		Delete: `DELETE FROM {table} WHERE id = $1`,
		// The outer expires_at check is re-evaluated on a row that a
		// concurrent write changed, which the subquery's snapshot is not.
		DeleteExpired: `DELETE FROM {table} WHERE expires_at <= now()
			AND id IN (SELECT id FROM {table} WHERE expires_at <= now() LIMIT {batch})`,

		// Administration and the owner index. The owner index's times are
		// the application's, passed as timestamptz parameters; Scan and
		// Count see the rows that the store's reads see (expires_at > now()).
		CreateOwners: []string{`CREATE TABLE IF NOT EXISTS {owners} (
	owner      bytea       NOT NULL,
	id         text        NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (owner, id)
)`,
			`CREATE INDEX IF NOT EXISTS {owners_index} ON {owners} (expires_at)`,
		},
		ScanFirst:   `SELECT id, data FROM {table} WHERE expires_at > now() ORDER BY id LIMIT {batch}`,
		ScanNext:    `SELECT id, data FROM {table} WHERE id > $1 AND expires_at > now() ORDER BY id LIMIT {batch}`,
		Count:       `SELECT count(*) FROM {table} WHERE expires_at > now()`,
		Clear:       `DELETE FROM {table}`,
		ClearOwners: `DELETE FROM {owners}`,
		// One statement: the upsert, and the pruning of the owner's
		// other entries past their time. The DELETE must not touch the
		// row the INSERT writes (a statement that changes a row twice
		// has an unpredictable outcome), hence id <> $2.
		Own: `WITH up AS (INSERT INTO {owners} (owner, id, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (owner, id) DO UPDATE SET expires_at = EXCLUDED.expires_at)
		DELETE FROM {owners} WHERE owner = $1 AND id <> $2 AND expires_at <= $4`,
		Disown: `DELETE FROM {owners} WHERE owner = $1 AND id = ANY($2)`,
		Owned:  `SELECT id FROM {owners} WHERE owner = $1 AND expires_at > $2`,
		// The outer check is re-evaluated on an entry that a concurrent
		// Own moved forward, which the subquery's snapshot is not.
		DeleteExpiredOwners: `DELETE FROM {owners} WHERE expires_at <= $1 AND (owner, id) IN
			(SELECT owner, id FROM {owners} WHERE expires_at <= $1 LIMIT {batch})`,
	},
	Owner:   func(owner string) any { return []byte(owner) },
	OwnArgs: func(owner, id, until, now any) []any { return []any{owner, id, until, now} },
	IDArray: true,
	NoTable: func(err error) bool { return pgError(err, "42P01") }, // undefined_table
	// The statements of the owner index lock a few rows each, and
	// concurrent ones may lock them in different orders: PostgreSQL breaks
	// such a deadlock by aborting one (40P01), which runs again.
	Deadlock: func(err error) bool { return pgError(err, "40P01") },
	Attempts: 5,
}

// pgError reports whether err is PostgreSQL's error with code.
func pgError(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// Store is a session.Store backed by a PostgreSQL table. It implements
// session.Toucher, session.TTLGetter, session.CompareAndSetter,
// session.Scanner, session.Counter, session.Clearer, session.OwnerIndex and
// io.Closer. It is safe for concurrent use.
type Store struct {
	db *sqlstore.DB
}

// New returns a store on pool. Unless cfg.SkipCreate is set it creates the
// table, the owner index table and their indexes if needed, using ctx for
// that and for nothing else. It starts the background cleanup unless
// cfg.CleanupInterval is negative. A nil pool or a bad table name (ErrTable)
// is an error.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	var c sqlstore.Client // stays nil for a nil pool, which sqlstore refuses
	if pool != nil {
		c = client{pool}
	}
	return sqlstore.New(ctx, c, sqlstore.Config(cfg), &dialect, func(db *sqlstore.DB) *Store { return &Store{db: db} })
}

// client is a pgx pool as a sqlstore.Client.
type client struct{ pool *pgxpool.Pool }

func (c client) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (c client) Get(ctx context.Context, query, id string) (data []byte, n int64, err error) {
	err = c.pool.QueryRow(ctx, query, id).Scan(&data, &n)
	return data, n, err
}

func (c client) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return c.pool.QueryRow(ctx, query, args...)
}

func (c client) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := c.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

// pgRows are pgx rows as sqlstore.Rows.
type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return nil
}

// Get returns the live record under id, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.db.Get(ctx, "get", s.db.SQL.GetTTL, id)
	return data, err
}

// GetTTL returns the live record under id and its remaining time to live,
// read by one query, or session.ErrNotFound.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	data, left, err := s.db.Get(ctx, "get ttl", s.db.SQL.GetTTL, id)
	return data, time.Duration(left) * time.Microsecond, err
}

// Set stores data under id for ttl, replacing any record (an upsert).
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	_, err := s.db.Exec(ctx, "set", s.db.SQL.Set, id, data, sqlstore.Micros(ttl))
	return err
}

// CompareAndSet stores data under id for ttl only if the live record is
// byte-for-byte old, or, with a nil old, only if there is no live record
// (an expired row counts as absent). It reports whether it wrote, in one
// atomic statement.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	q, args := s.db.SQL.Update, []any{id, data, sqlstore.Micros(ttl), old}
	if old == nil {
		q, args = s.db.SQL.Insert, args[:3]
	}
	n, err := s.db.Exec(ctx, "compare-and-set", q, args...)
	return n == 1, err
}

// Touch sets the remaining time to live of the live record under id to ttl,
// leaving its data alone. A missing or expired record is not an error and is
// not brought back.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	_, err := s.db.Exec(ctx, "touch", s.db.SQL.Touch, id, sqlstore.Micros(ttl))
	return err
}

// Delete removes the record under id; a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, "delete", s.db.SQL.Delete, id)
	return err
}

// DeleteExpired deletes every expired row now, in batches of 1000, and
// reports how many, then the owner index entries whose time has passed (not
// counted). The background cleanup calls it every Config.CleanupInterval.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	return s.db.DeleteExpired(ctx)
}

// Close stops the background cleanup, interrupting a run in progress, and
// waits for it to exit. It does not close the pool, which stays the caller's.
// The store remains usable, and Close may be called more than once.
func (s *Store) Close() error {
	return s.db.Close()
}
