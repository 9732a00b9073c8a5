// Package sqlitestore keeps sessions in a SQLite database through
// database/sql and modernc.org/sqlite (pure Go, no cgo, driver name
// "sqlite"): the embedded, persistent store for an app that runs on one
// machine.
//
//	store, err := sqlitestore.Open(ctx, "sessions.db", sqlitestore.Config{})
//	...
//	defer store.Close()
//
// # Tables and TTL
//
// Records live in one table (Config.Table, default "sessions"), and the owner
// index in a second one named after it, both created on demand with an index
// on their expiry unless Config.SkipCreate is set:
//
//	CREATE TABLE IF NOT EXISTS "sessions" (
//		id         TEXT    PRIMARY KEY,
//		data       BLOB    NOT NULL,
//		expires_at INTEGER NOT NULL,          -- Unix milliseconds, from the app's clock
//		version    INTEGER NOT NULL DEFAULT 1 -- +1 on every write of data
//	);
//	CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
//	CREATE TABLE IF NOT EXISTS "sessions_owners" (
//		owner      TEXT    NOT NULL,
//		id         TEXT    NOT NULL,
//		expires_at INTEGER NOT NULL,          -- Unix milliseconds, Own's until
//		PRIMARY KEY (owner, id)
//	);
//	CREATE INDEX IF NOT EXISTS "sessions_owners_expires_at_idx" ON "sessions_owners" (expires_at);
//
// The table name is a plain identifier (letters, digits, underscores), always
// quoted; the owner index table's is the same with "_owners" appended (so do
// not give another table that name). It cannot be qualified with a schema: a
// table in an attached database would need the ATTACH on every connection of
// the pool.
//
// The owner index table is new in this release. A database made by an
// earlier one needs nothing but the two statements that create the owner
// index table and its index, which New and Open run; with SkipCreate, run
// them yourself. Until then the store works as before, but Own, Disown and
// Owned fail (Clear and the cleanup skip the missing table).
//
// A record's TTL becomes its absolute expiry in expires_at. Every read and
// conditional write compares it with the current time, so an expired row is
// never returned, touched or compared equal even before it is removed.
// Expired rows are deleted by DeleteExpired, in batches of 1000 so that other
// writers wait little, which a background cleanup calls every
// Config.CleanupInterval; Close stops it. DeleteExpired then deletes the
// owner index entries past their time the same way. Expiries are kept to the
// millisecond.
//
// # Administration and the owner index
//
// The store is a session.Scanner, session.Counter and session.Clearer, for
// the Manager's Sessions, Count and Clear. Scan reads the live rows in pages
// of 1000,
//
//	SELECT id, data FROM sessions WHERE id > ? AND expires_at > ? ORDER BY id LIMIT 1000
//
// each a query of its own whose rows are all read before the page is handed
// to the callback, so no read transaction or connection is held while the
// callback runs (it may call the store, even through a pool of one
// connection) and at most one page is in memory. Count counts the live rows.
// Clear runs DELETE on the table and then on its owner index table (two
// statements) and touches nothing else in the database.
//
// The store is also a session.OwnerIndex, for Manager.DestroyOwner and
// Manager.Devices: the owner index table holds an (owner, id) entry per
// owned session, with the time until which it stands. Owners and ids
// compare byte for byte (SQLite's BINARY collation): owners that differ in
// case or in trailing spaces are different owners. Own is an upsert of its
// entry and then a DELETE of the owner's entries past their time, two
// statements; Owned is a SELECT of the owner's entries not past their time,
// and Disown a DELETE of the owner's entries with the given ids.
//
// # Compare-and-set
//
// CompareAndSet is one statement, so SQLite's write lock makes it atomic.
// With a nil old it is an upsert that replaces only an expired row:
//
//	INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?)
//	ON CONFLICT (id) DO UPDATE SET data = excluded.data,
//	  expires_at = excluded.expires_at, version = version + 1
//	WHERE expires_at <= ?
//
// and with a non-nil old it updates the live row only if it holds exactly
// old (SQLite compares blobs byte for byte):
//
//	UPDATE sessions SET data = ?, expires_at = ?, version = version + 1
//	WHERE id = ? AND expires_at > ? AND data = ?
//
// Either way, one affected row means the write happened.
//
// # Concurrency and timeouts
//
// Open sets the journal to WAL, so reads go on while one connection writes,
// synchronous to NORMAL (durable across app crashes; a power loss may lose
// the last commits), and busy_timeout to 5 seconds, so a writer waits for
// another instead of failing with SQLITE_BUSY. The store runs no explicit
// transactions, only single statements, which take the write lock up front;
// a busy_timeout is therefore enough to serialise writers. When you pass your
// own *sql.DB to New, put the same pragmas in its DSN (each pooled connection
// runs them), busy_timeout first, since setting the journal mode on a new
// connection may itself meet a lock (older versions of modernc.org/sqlite run
// the pragmas in the DSN's order):
// "file:app.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)". Do not
// use ":memory:" with a pool: every connection gets its own empty database.
// If the database file is shared with code that holds long write
// transactions and SQLITE_BUSY still appears, db.SetMaxOpenConns(1)
// serialises everything in the pool at the cost of concurrent reads. A
// burst of writes from many more goroutines than a pool should have
// connections can meet it too: busy_timeout makes a writer poll for the
// lock, not queue for it, and with hundreds polling the unluckiest may wait
// past it; a bounded pool (db.SetMaxOpenConns(8), say) queues the rest in
// database/sql.
//
// The store adds no timeouts of its own. Every method passes its context to
// database/sql, which refuses a done context and interrupts a running
// statement when it is cancelled (the error then matches context.Canceled or
// context.DeadlineExceeded); a statement waiting for the write lock may wait
// up to busy_timeout.
//
// # Errors and ownership
//
// Every error of a database call starts with "sqlitestore: " and what
// failed; a missing or expired record is session.ErrNotFound. A *sql.DB
// passed to New stays the caller's: Close stops the cleanup and leaves it
// open. A store made by Open owns the database it opened, and Close closes
// it too.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ctxerr"
	"github.com/fibersession/session/internal/sqlstore"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Config tunes the store. The zero value is usable: every field has a
// default.
type Config struct {
	// Table is the table's name, a plain identifier [A-Za-z_][A-Za-z0-9_]*
	// (no "schema." part). Default "sessions".
	Table string
	// SkipCreate, when true, makes New and Open run no CREATE statement: the
	// tables and indexes must already exist (see the package doc).
	SkipCreate bool
	// CleanupInterval is how often expired rows are deleted in the
	// background. Default (zero) 5 minutes; a negative value disables the
	// cleanup (expired rows are still never returned; call DeleteExpired).
	CleanupInterval time.Duration
	// Logger receives the errors of the background cleanup. Default
	// slog.Default().
	Logger *slog.Logger
}

// ErrTable is returned by New and Open for a table name that is not a plain
// identifier.
var ErrTable = errors.New("sqlitestore: table must be [A-Za-z_][A-Za-z0-9_]*")

var dialect = sqlstore.Dialect{
	Name: "sqlitestore", Quote: `"`, Unqualified: true, ErrTable: ErrTable, NoRows: sql.ErrNoRows,
	// Every time is the application's, in Unix milliseconds.
	NowArgs: func() []any { return []any{ms(time.Now())} },
	Time:    func(t time.Time) any { return ms(t) },
	// SQLite's "no such table" shares its code, SQLITE_ERROR, with every
	// other mistake.
	NoTable: func(err error) bool { return strings.Contains(err.Error(), "no such table") },
	SQL: sqlstore.Statements{
		Create: []string{`CREATE TABLE IF NOT EXISTS {table} (
	id         TEXT    PRIMARY KEY,
	data       BLOB    NOT NULL,
	expires_at INTEGER NOT NULL,
	version    INTEGER NOT NULL DEFAULT 1
)`,
			`CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at)`,
		},
		GetTTL: `SELECT data, expires_at FROM {table} WHERE id = ?`, // GetTTL checks expires_at
		Set:    upsert,
		Insert: upsert + ` WHERE expires_at <= ?`,
		Update: `UPDATE {table} SET data = ?, expires_at = ?, version = version + 1 WHERE id = ? AND expires_at > ? AND data = ?`,
		Touch:  `UPDATE {table} SET expires_at = ? WHERE id = ? AND expires_at > ?`,
		Delete: `DELETE FROM {table} WHERE id = ?`,
		DeleteExpired: `DELETE FROM {table} WHERE rowid IN
			(SELECT rowid FROM {table} WHERE expires_at <= ? LIMIT {batch})`,

		// Administration and the owner index.
		CreateOwners: []string{`CREATE TABLE IF NOT EXISTS {owners} (
	owner      TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (owner, id)
)`,
			`CREATE INDEX IF NOT EXISTS {owners_index} ON {owners} (expires_at)`,
		},
		ScanFirst:   `SELECT id, data FROM {table} WHERE expires_at > ? ORDER BY id LIMIT {batch}`,
		ScanNext:    `SELECT id, data FROM {table} WHERE id > ? AND expires_at > ? ORDER BY id LIMIT {batch}`,
		Count:       `SELECT count(*) FROM {table} WHERE expires_at > ?`,
		Clear:       `DELETE FROM {table}`,
		ClearOwners: `DELETE FROM {owners}`,
		Own: `INSERT INTO {owners} (owner, id, expires_at) VALUES (?, ?, ?)
ON CONFLICT (owner, id) DO UPDATE SET expires_at = excluded.expires_at`,
		Prune:  `DELETE FROM {owners} WHERE owner = ? AND expires_at <= ?`,
		Disown: `DELETE FROM {owners} WHERE owner = ? AND id IN `,
		Owned:  `SELECT id FROM {owners} WHERE owner = ? AND expires_at > ?`,
		DeleteExpiredOwners: `DELETE FROM {owners} WHERE rowid IN
			(SELECT rowid FROM {owners} WHERE expires_at <= ? LIMIT {batch})`,
	},
}

// upsert is Set, an insert that replaces any row. In DO UPDATE, a plain
// column is the stored row's and excluded.column the new one's.
const upsert = `INSERT INTO {table} (id, data, expires_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at, version = version + 1`

// Store is a session store on a SQLite table. It implements
// session.Toucher, session.TTLGetter, session.CompareAndSetter,
// session.Scanner, session.Counter, session.Clearer, session.OwnerIndex and
// io.Closer. It is safe for concurrent use.
type Store struct {
	db        *sqlstore.DB
	closeFile func() error // set by Open: closes the database it opened, once
}

// Open opens (creating if needed) the SQLite database file at path in WAL
// mode with busy_timeout(5000) and synchronous(NORMAL), and returns a store
// on it, as New does. The store owns that database: Close closes it. ctx
// bounds the setup New does and nothing else.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return nil, errors.New("sqlitestore: Open needs a database file; an in-memory database is private to each pooled connection")
	}
	// A URI filename: escape what would end the path.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+esc+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "sqlitestore: open", err)
	}
	s, err := New(ctx, db, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.closeFile = sync.OnceValue(db.Close)
	return s, nil
}

// New returns a store on db. Unless cfg.SkipCreate is set it creates the
// table, the owner index table and their indexes if needed, using ctx for
// that and for nothing else. It starts the background cleanup unless
// cfg.CleanupInterval is negative. A nil db or a bad table name (ErrTable)
// is an error. Close leaves db open.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	return sqlstore.New(ctx, sqlstore.SQL(db), sqlstore.Config(cfg), &dialect, func(db *sqlstore.DB) *Store { return &Store{db: db} })
}

// DeleteExpired deletes every expired row now, in batches of 1000 so that
// other writers wait little, and returns how many it deleted; then it
// deletes the owner index entries whose time has passed (not counted). The
// background cleanup calls it every Config.CleanupInterval.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	return s.db.DeleteExpired(ctx)
}

// Close stops the background cleanup, interrupting a running one, and
// waits for it to exit; for a store made by Open it then closes the
// database. Later calls return the first call's result.
func (s *Store) Close() error {
	_ = s.db.Close() // stops the cleanup; it has no error
	if s.closeFile == nil {
		return nil
	}
	if err := s.closeFile(); err != nil {
		return ctxerr.Wrap(context.Background(), "sqlitestore: close", err)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// Get returns the record under id, or session.ErrNotFound when there is
// none or it has expired.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.GetTTL(ctx, id)
	return data, err
}

// GetTTL is Get that also returns the record's remaining time to live, in
// the same query. A row past its expiry is not returned.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	data, exp, err := s.db.Get(ctx, "get ttl", s.db.SQL.GetTTL, id)
	if err != nil {
		return nil, 0, err
	}
	left := time.Until(time.UnixMilli(exp))
	if left <= 0 {
		return nil, 0, session.ErrNotFound
	}
	return data, left, nil
}

// Set stores data under id for ttl, replacing any row (upsert).
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	_, err := s.db.Exec(ctx, "set", s.db.SQL.Set, id, nonNil(data), ms(time.Now().Add(ttl)))
	return err
}

// CompareAndSet stores data under id for ttl only if the live row holds
// exactly old, or, with a nil old, only if there is no live row. It is a
// single statement (see the package documentation).
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	now := time.Now()
	var n int64
	var err error
	if old == nil {
		n, err = s.db.Exec(ctx, "compare-and-set", s.db.SQL.Insert, id, nonNil(data), ms(now.Add(ttl)), ms(now))
	} else {
		n, err = s.db.Exec(ctx, "compare-and-set", s.db.SQL.Update, nonNil(data), ms(now.Add(ttl)), id, ms(now), old)
	}
	return n == 1, err
}

// Touch sets the remaining time to live of the live row under id to ttl.
// A missing or expired row is left alone (nil error).
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	now := time.Now()
	_, err := s.db.Exec(ctx, "touch", s.db.SQL.Touch, ms(now.Add(ttl)), id, ms(now))
	return err
}

// Delete removes the row under id. Deleting a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, "delete", s.db.SQL.Delete, id)
	return err
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
