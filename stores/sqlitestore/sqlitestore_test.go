package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/sqlitestore"
	"github.com/fibersession/session/stores/storetest"
)

// dsn is what the package documentation tells users of New to pass.
func dsn(path string) string {
	return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"
}

// openDB opens a database file in a fresh temporary directory.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "test.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t testing.TB, db *sql.DB, cfg sqlitestore.Config) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConformance(t *testing.T) {
	// Expiries are kept in whole milliseconds, so a record may live up to
	// 1ms shorter than its TTL and GetTTL may read up to 1ms low.
	opts := storetest.Options{TTLGranularity: time.Millisecond}
	t.Run("New", func(t *testing.T) {
		// One database file for all subtests; each gets its own store,
		// whose Close leaves the database open.
		db := openDB(t)
		storetest.Run(t, func(t *testing.T) session.Store {
			return newStore(t, db, sqlitestore.Config{})
		}, opts)
	})
	t.Run("Open", func(t *testing.T) {
		// A file per subtest, opened by the store, with a cleanup running
		// while the expiry subtests wait.
		storetest.Run(t, func(t *testing.T) session.Store {
			st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "sessions.db"), sqlitestore.Config{CleanupInterval: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}, opts)
	})
}

func TestTableCreation(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	for range 2 { // creating twice is fine
		st := newStore(t, db, sqlitestore.Config{Table: "web_sessions"})
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	type column struct {
		name, typ      string
		notNull, pk    bool
		defaultVersion bool
	}
	var cols []column
	rows, err := db.Query(`SELECT name, type, "notnull", pk, dflt_value FROM pragma_table_info('web_sessions')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c column
		var dflt sql.NullString
		if err := rows.Scan(&c.name, &c.typ, &c.notNull, &c.pk, &dflt); err != nil {
			t.Fatal(err)
		}
		c.defaultVersion = dflt.String == "1"
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []column{
		{"id", "TEXT", false, true, false},
		{"data", "BLOB", true, false, false},
		{"expires_at", "INTEGER", true, false, false},
		{"version", "INTEGER", true, false, true},
	}
	if !slices.Equal(cols, want) {
		t.Errorf("columns:\n got %+v\nwant %+v", cols, want)
	}
	var index string
	if err := db.QueryRow(`SELECT name FROM pragma_index_list('web_sessions') WHERE origin = 'c'`).Scan(&index); err != nil {
		t.Fatalf("no index created on web_sessions: %v", err)
	}
	var indexed string
	if err := db.QueryRow(`SELECT name FROM pragma_index_info(?)`, index).Scan(&indexed); err != nil || indexed != "expires_at" {
		t.Errorf("index %s covers %q (%v), want expires_at", index, indexed, err)
	}
	// The two Sets wrote one row twice.
	var version int
	if err := db.QueryRow(`SELECT version FROM web_sessions WHERE id = 'id'`).Scan(&version); err != nil || version != 2 {
		t.Errorf("version after two writes = %d (%v), want 2", version, err)
	}

	for _, name := range []string{"1sessions", "web-sessions", `a"b`, "s; DROP TABLE web_sessions", "sessions.x", "séssions"} {
		if _, err := sqlitestore.New(db, sqlitestore.Config{Table: name}); err == nil {
			t.Errorf("New accepted the table name %q", name)
		}
	}
	if _, err := sqlitestore.New(nil, sqlitestore.Config{}); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	// A path with characters that a URI filename must escape.
	path := filepath.Join(dir, "odd ?#%name.db")
	st, err := sqlitestore.Open(path, sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := st.Get(ctx, "id"); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after Close closed the database: %v, want an error other than ErrNotFound", err)
	}

	// The file is where it was asked to be, in WAL mode, with the record.
	db, err := sql.Open("sqlite", "file:"+strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	if n := count(t, db, "sessions"); n != 1 {
		t.Errorf("%d rows in %s, want 1", n, path)
	}

	for _, p := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if _, err := sqlitestore.Open(p, sqlitestore.Config{}); err == nil {
			t.Errorf("Open(%q) succeeded; an in-memory database breaks with a pool", p)
		}
	}
}

func TestCleanup(t *testing.T) {
	db := openDB(t)
	st := newStore(t, db, sqlitestore.Config{CleanupInterval: -1})
	ctx := context.Background()
	if err := st.Set(ctx, "short", []byte("s"), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "long", []byte("l"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// More expired rows than one cleanup batch.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute).UnixMilli()
	for i := range 2500 {
		if _, err := tx.Exec(`INSERT INTO sessions (id, data, expires_at) VALUES (?, x'00', ?)`, fmt.Sprint("old", i), past); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let "short" expire
	if _, err := st.Get(ctx, "short"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get(short) after its ttl: %v", err)
	}
	if n := count(t, db, "sessions"); n != 2502 {
		t.Fatalf("%d rows before Cleanup, want 2502 (expired rows are kept until cleaned up)", n)
	}
	n, err := st.Cleanup(ctx)
	if err != nil || n != 2501 {
		t.Fatalf("Cleanup = %d, %v; want 2501, nil", n, err)
	}
	if n := count(t, db, "sessions"); n != 1 {
		t.Fatalf("%d rows after Cleanup, want 1", n)
	}
	if got, err := st.Get(ctx, "long"); err != nil || string(got) != "l" {
		t.Fatalf("Get(long) = %q, %v", got, err)
	}
	if n, err := st.Cleanup(ctx); err != nil || n != 0 {
		t.Fatalf("second Cleanup = %d, %v; want 0, nil", n, err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Cleanup(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Cleanup with a cancelled context: %v", err)
	}
}

func TestBackgroundCleanup(t *testing.T) {
	db := openDB(t)
	storetest.RunCleanup(t, func(t *testing.T, interval time.Duration) session.Store {
		return newStore(t, db, sqlitestore.Config{CleanupInterval: interval})
	}, func(t *testing.T) int { return count(t, db, "sessions") })
	if err := db.Ping(); err != nil {
		t.Errorf("Close of a store made by New closed the caller's database: %v", err)
	}
}

// ------------------------------------------------------------- middleware

// TestMiddleware runs the middleware-level checks on one database, with a
// look at the rows themselves.
func TestMiddleware(t *testing.T) {
	db := openDB(t)
	storetest.RunMiddleware(t, func(t *testing.T) session.Store {
		return newStore(t, db, sqlitestore.Config{})
	}, storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			var n int
			if err := db.QueryRow(`SELECT COUNT(*) FROM sessions WHERE id = ?`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	})
}

// TestSeveralInstances: two apps, each with its own *sql.DB and store, on
// one database file.
func TestSeveralInstances(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		db, err := sql.Open("sqlite", dsn(path))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return newStore(t, db, sqlitestore.Config{})
	})
}

// TestClosedDatabase: with the database closed under it, the middleware
// answers with the ErrorHandler's 500, and does not panic.
func TestClosedDatabase(t *testing.T) {
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "sessions.db"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: st}))
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	signedIn := b.Cookie()
	for _, r := range []struct{ method, path, cookie string }{
		{"GET", "/", signedIn},
		{"POST", "/logout", signedIn},
		{"POST", "/login", ""}, // no cookie: nothing to read, the save fails
	} {
		b.SetCookie(r.cookie)
		if status, body := b.Do(r.method, r.path); status != 500 || body != "Internal Server Error" {
			t.Errorf("%s %s = %d %q, want 500 %q", r.method, r.path, status, body, "Internal Server Error")
		}
	}
}
