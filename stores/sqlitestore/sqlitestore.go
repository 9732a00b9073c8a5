// Package sqlitestore keeps sessions in a SQLite database through
// database/sql and modernc.org/sqlite (pure Go, no cgo, driver name
// "sqlite"): the embedded, persistent store for an app that runs on one
// machine.
//
//	store, err := sqlitestore.Open("sessions.db", sqlitestore.Config{})
//	...
//	defer store.Close()
//
// # Table and TTL
//
// Records live in one table (Config.Table, default "sessions"), created on
// demand with an index on its expiry:
//
//	id         TEXT PRIMARY KEY
//	data       BLOB NOT NULL
//	expires_at INTEGER NOT NULL  -- Unix milliseconds, from the app's clock
//	version    INTEGER NOT NULL  -- 1 on insert, +1 on every write of data
//
// A record's TTL becomes its absolute expiry in expires_at. Every read and
// conditional write compares it with the current time, so an expired row is
// never returned, touched or compared equal even before it is removed; a
// background cleanup deletes expired rows every Config.CleanupInterval (and
// Cleanup does it on demand). Expiries are kept to the millisecond.
//
// # Compare-and-set
//
// CompareAndSet is one statement, so SQLite's write lock makes it atomic.
// With a nil old it is an upsert that replaces only an expired row:
//
//	INSERT INTO sessions (id, data, expires_at, version) VALUES (?, ?, ?, 1)
//	ON CONFLICT(id) DO UPDATE SET data = excluded.data,
//	  expires_at = excluded.expires_at, version = sessions.version + 1
//	WHERE sessions.expires_at <= ?
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
// runs them): "file:app.db?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)".
// Do not use ":memory:" with a pool: every connection gets its own empty
// database. If the database file is shared with code that holds long write
// transactions and SQLITE_BUSY still appears, db.SetMaxOpenConns(1)
// serialises everything in the pool at the cost of concurrent reads.
//
// Every method passes its context to database/sql, which refuses a done
// context and interrupts a running statement when it is cancelled; a
// statement waiting for the write lock may wait up to busy_timeout.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sweep"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Config holds the store's options. The zero value is ready to use.
type Config struct {
	// Table is the table's name: letters, digits and underscores, not
	// starting with a digit. Default: "sessions".
	Table string

	// CleanupInterval is how often a background goroutine deletes expired
	// rows. A negative value runs no background cleanup (call Cleanup
	// yourself). Default: 5 minutes.
	CleanupInterval time.Duration
}

// Store is a session store on a SQLite table. It is safe for concurrent use.
type Store struct {
	db    *sql.DB
	ownDB bool // Open made db, so Close closes it

	get, set, touch, insert, update, del, cleanup string

	sweeper  *sweep.Loop // the background cleanup
	closeErr error
	once     sync.Once
}

// Interface checks.
var (
	_ session.Store            = (*Store)(nil)
	_ session.Toucher          = (*Store)(nil)
	_ session.TTLGetter        = (*Store)(nil)
	_ session.CompareAndSetter = (*Store)(nil)
	_ session.Closer           = (*Store)(nil)
)

// cleanupBatch is how many rows one cleanup statement deletes at most, so
// that it holds the write lock only briefly.
const cleanupBatch = 1000

// Open opens (creating if needed) the SQLite database file at path in WAL
// mode with busy_timeout(5000) and synchronous(NORMAL), and returns a store
// on it. Close closes the database too.
func Open(path string, cfg Config) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return nil, errors.New("sqlitestore: Open needs a database file; an in-memory database is private to each pooled connection")
	}
	// A URI filename: escape what would end the path.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+esc+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	s, err := New(db, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.ownDB = true
	return s, nil
}

// New returns a store on db, creating the table and its index if they do
// not exist, and starts the background cleanup. Close stops the cleanup but
// leaves db open.
func New(db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: nil *sql.DB")
	}
	if cfg.Table == "" {
		cfg.Table = "sessions"
	}
	if !validName(cfg.Table) {
		return nil, fmt.Errorf("sqlitestore: invalid table name %q", cfg.Table)
	}
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = 5 * time.Minute
	}
	t := `"` + cfg.Table + `"`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t+` (
	id TEXT PRIMARY KEY,
	data BLOB NOT NULL,
	expires_at INTEGER NOT NULL,
	version INTEGER NOT NULL DEFAULT 1
)`); err != nil {
		return nil, fmt.Errorf("sqlitestore: creating table %s: %w", t, err)
	}
	if _, err := db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS "`+cfg.Table+`_expires_at" ON `+t+` (expires_at)`); err != nil {
		return nil, fmt.Errorf("sqlitestore: creating index on %s: %w", t, err)
	}
	s := &Store{
		db:    db,
		get:   `SELECT data, expires_at FROM ` + t + ` WHERE id = ? AND expires_at > ?`,
		touch: `UPDATE ` + t + ` SET expires_at = ? WHERE id = ? AND expires_at > ?`,
		set: `INSERT INTO ` + t + ` (id, data, expires_at, version) VALUES (?, ?, ?, 1)
ON CONFLICT(id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at, version = ` + t + `.version + 1`,
		insert: `INSERT INTO ` + t + ` (id, data, expires_at, version) VALUES (?, ?, ?, 1)
ON CONFLICT(id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at, version = ` + t + `.version + 1
WHERE ` + t + `.expires_at <= ?`,
		update:  `UPDATE ` + t + ` SET data = ?, expires_at = ?, version = version + 1 WHERE id = ? AND expires_at > ? AND data = ?`,
		del:     `DELETE FROM ` + t + ` WHERE id = ?`,
		cleanup: `DELETE FROM ` + t + ` WHERE rowid IN (SELECT rowid FROM ` + t + ` WHERE expires_at <= ? LIMIT ` + fmt.Sprint(cleanupBatch) + `)`,
	}
	s.sweeper = sweep.Start(cfg.CleanupInterval, func(ctx context.Context) {
		_, _ = s.Cleanup(ctx) // a busy or closed database: the next run tries again
	})
	return s, nil
}

func validName(name string) bool {
	for i, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return name != ""
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// wrap annotates err and makes sure it reports ctx's error when ctx is done.
func wrap(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlitestore: %w: %w", cerr, err)
	}
	return fmt.Errorf("sqlitestore: %w", err)
}

// Get returns the record under id, or session.ErrNotFound when there is
// none or it has expired.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.GetTTL(ctx, id)
	return data, err
}

// GetTTL is Get that also returns the record's remaining time to live, in
// the same query.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	now := time.Now()
	var data []byte
	var exp int64
	err := s.db.QueryRowContext(ctx, s.get, id, ms(now)).Scan(&data, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, 0, session.ErrNotFound
	case err != nil:
		return nil, 0, wrap(ctx, err)
	}
	return data, time.UnixMilli(exp).Sub(now), nil
}

// Set stores data under id for ttl, replacing any row (upsert).
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if _, err := s.db.ExecContext(ctx, s.set, id, nonNil(data), ms(time.Now().Add(ttl))); err != nil {
		return wrap(ctx, err)
	}
	return nil
}

// CompareAndSet stores data under id for ttl only if the live row holds
// exactly old, or, with a nil old, only if there is no live row. It is a
// single statement (see the package documentation).
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	now := time.Now()
	var res sql.Result
	var err error
	if old == nil {
		res, err = s.db.ExecContext(ctx, s.insert, id, nonNil(data), ms(now.Add(ttl)), ms(now))
	} else {
		res, err = s.db.ExecContext(ctx, s.update, nonNil(data), ms(now.Add(ttl)), id, ms(now), old)
	}
	if err != nil {
		return false, wrap(ctx, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(ctx, err)
	}
	return n == 1, nil
}

// Touch sets the remaining time to live of the live row under id to ttl.
// A missing or expired row is left alone (nil error).
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	now := time.Now()
	if _, err := s.db.ExecContext(ctx, s.touch, ms(now.Add(ttl)), id, ms(now)); err != nil {
		return wrap(ctx, err)
	}
	return nil
}

// Delete removes the row under id. Deleting a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.del, id); err != nil {
		return wrap(ctx, err)
	}
	return nil
}

// Cleanup deletes every expired row now, in batches of 1000 so that other
// writers wait little, and returns how many it deleted. The background
// cleanup calls it every Config.CleanupInterval.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, s.cleanup, ms(time.Now()))
		if err != nil {
			return total, wrap(ctx, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, wrap(ctx, err)
		}
		total += n
		if n < cleanupBatch {
			return total, nil
		}
	}
}

// Close stops the background cleanup, interrupting a running one, and
// waits for it to exit; for a store made by Open it then closes the
// database. Later calls return the first call's result.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.sweeper.Stop()
		if s.ownDB {
			s.closeErr = s.db.Close()
		}
	})
	return s.closeErr
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
