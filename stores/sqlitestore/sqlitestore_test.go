package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sqlstore"
	"github.com/fibersession/session/internal/sqlstore/sqltest"
	"github.com/fibersession/session/stores/sqlitestore"
	"github.com/fibersession/session/stores/storetest"
)

// The store has every optional capability (session.TTLGetter,
// session.Toucher, session.CompareAndSetter), DeleteExpired and io.Closer.
var _ sqltest.Store = (*sqlitestore.Store)(nil)

// Expiries are kept in whole milliseconds, so a record may live up to 1ms
// shorter than its TTL and GetTTL may read up to 1ms low.
var opts = storetest.Options{TTLGranularity: time.Millisecond}

// openDB opens the database file at path the way the package documentation
// tells users of New to, closed when tb ends.
func openDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	sqltest.Run(t, sqltest.Harness[*sql.DB, sqlitestore.Config, *sqlitestore.Store]{
		Connect:  func(tb testing.TB) *sql.DB { return openDB(tb, path) },
		Client:   sqlstore.SQL,
		New:      sqlitestore.New,
		Indexes:  `SELECT count(*) FROM pragma_index_list('{table}') AS l, pragma_index_info(l.name) AS i WHERE i.name = 'expires_at'`,
		ErrTable: sqlitestore.ErrTable,
		Options:  opts,
	})
}

// TestConformanceOpen runs the suite on a file per subtest, opened by the
// store, with a cleanup running while the expiry subtests wait.
func TestConformanceOpen(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store {
		st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "sessions.db"), sqlitestore.Config{CleanupInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}, opts)
}

func TestColumns(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "test.db"))
	sqltest.Open(t, sqlitestore.New, db, sqlitestore.Config{Table: "web_sessions"})
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
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	// A path with characters that a URI filename must escape.
	path := filepath.Join(t.TempDir(), "odd ?#%name.db")
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
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
	db := openDB(t, strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path))
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	if n := sqltest.Int(t, sqlstore.SQL(db), "SELECT count(*) FROM sessions"); n != 1 {
		t.Errorf("%d rows in %s, want 1", n, path)
	}

	for _, p := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if _, err := sqlitestore.Open(ctx, p, sqlitestore.Config{}); err == nil {
			t.Errorf("Open(%q) succeeded; an in-memory database breaks with a pool", p)
		}
	}
	dir := t.TempDir()
	if _, err := sqlitestore.Open(ctx, filepath.Join(dir, "bad.db"), sqlitestore.Config{Table: "a.b"}); !errors.Is(err, sqlitestore.ErrTable) {
		t.Errorf("Open with a bad table name: %v, want ErrTable", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sqlitestore.Open(canceled, filepath.Join(dir, "canceled.db"), sqlitestore.Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestClosedDatabase: with the database closed under it, the middleware
// answers with the ErrorHandler's 500, and does not panic.
func TestClosedDatabase(t *testing.T) {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "sessions.db"), sqlitestore.Config{})
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
