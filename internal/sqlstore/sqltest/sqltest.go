// Package sqltest holds the tests the SQL stores share (stores/pgstore,
// stores/mysqlstore, stores/sqlitestore). Each store's tests call Run with a
// Harness that says how to reach its database and make a store; Run adds the
// conformance suite and the middleware checks of stores/storetest on a table
// of the store's own, and checks what the three stores promise alike: table
// creation, table names, expiry cleanup and the version column. RunAdmin
// does the same for the administration capabilities and the owner index.
//
// The tests' own queries (counting rows, reading a version, dropping a
// table) are plain enough for every dialect: table names are unquoted lower
// case identifiers, and values are inlined where they are known to be safe
// (the owners of RunAdmin are parameters, Admin.Param).
package sqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sqlstore"
	"github.com/fibersession/session/stores/storetest"
)

// Store is what the shared tests use of a SQL store.
type Store interface {
	session.Store
	session.TTLGetter
	session.Toucher
	session.CompareAndSetter
	storetest.ExpiredDeleter
	io.Closer
}

// Config is the constraint of the stores' Config types, which all have the
// fields of sqlstore.Config.
type Config interface {
	~struct {
		Table           string
		SkipCreate      bool
		CleanupInterval time.Duration
		Logger          *slog.Logger
	}
}

// Harness is what Run needs of a store with client type C and store type S.
type Harness[C any, Cfg Config, S Store] struct {
	// Connect returns a new client of the test database, closed when tb
	// ends, or skips tb (storetest.Unavailable) when the server is absent.
	Connect func(tb testing.TB) C
	// Client adapts a client for the tests' own queries.
	Client func(C) sqlstore.Client
	// New is the store's New.
	New func(ctx context.Context, c C, cfg Cfg) (S, error)
	// Indexes is a query of how many indexes on expires_at the table
	// {table} has.
	Indexes string

	// Schema qualifies a table name in the Qualified test; leave it empty
	// for a store that takes no qualified name.
	Schema string
	// MaxName is the longest table name the store takes; 0 for no limit.
	MaxName int
	// ErrTable is the store's error for a bad table name.
	ErrTable error
	// Options tunes the conformance suite.
	Options storetest.Options
}

// Run runs the shared tests, each a subtest: the conformance suite, the
// middleware checks and two instances sharing a table (stores/storetest),
// table creation (on demand, qualified, SkipCreate, the longest name), bad
// table names and a nil client, DeleteExpired over several batches, the
// background cleanup (storetest.RunCleanup) and the version column.
func Run[C any, Cfg Config, S Store](t *testing.T, h Harness[C, Cfg, S]) {
	c := h.Connect(t)
	r := &run[C, Cfg, S]{Harness: h, c: c, db: h.Client(c)}
	subtests(t, []subtest{
		{"Conformance", r.conformance},
		{"Middleware", r.middleware},
		{"SeveralInstances", r.severalInstances},
		{"CreateTable", r.createTable},
		{"InvalidConfig", r.invalidConfig},
		{"DeleteExpired", r.deleteExpired},
		{"Cleanup", r.cleanup},
		{"Version", r.version},
	})
}

type subtest struct {
	name string
	run  func(*testing.T)
}

// subtests runs each of tests as a subtest of t.
func subtests(t *testing.T, tests []subtest) {
	for _, test := range tests {
		t.Run(test.name, test.run)
	}
}

// Open returns the store that newStore (a store's New) makes on c with cfg,
// closed when tb ends, or fails tb.
func Open[C any, Cfg Config, S io.Closer](tb testing.TB, newStore func(context.Context, C, Cfg) (S, error), c C, cfg Cfg) S {
	tb.Helper()
	st, err := newStore(context.Background(), c, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// Table returns a table name no other test uses, and drops that table and
// its owner index table when tb ends.
func Table(tb testing.TB, db sqlstore.Client) string {
	tb.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "sessions_test_" + hex.EncodeToString(b)
	tb.Cleanup(func() { Drop(tb, db, name, 0) })
	return name
}

// Drop drops the table name and its owner index table (named as
// sqlstore.OwnersTable does with maxName), if they exist, failing tb on an
// error.
func Drop(tb testing.TB, db sqlstore.Client, name string, maxName int) {
	tb.Helper()
	for _, table := range []string{sqlstore.OwnersTable(name, maxName), name} {
		if _, err := db.Exec(context.Background(), "DROP TABLE IF EXISTS "+table); err != nil {
			tb.Errorf("dropping %s: %v", table, err)
		}
	}
}

// Int returns the integer that query selects, failing t on an error.
func Int(t testing.TB, db sqlstore.Client, query string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

type run[C any, Cfg Config, S Store] struct {
	Harness[C, Cfg, S]
	c  C               // the client of the tests' stores
	db sqlstore.Client // the same, for the tests' own queries
}

// open returns a store made by New with cfg, closed when t ends.
func (r *run[C, Cfg, S]) open(t *testing.T, cfg Cfg) S {
	t.Helper()
	return Open(t, r.New, r.c, cfg)
}

// rows counts the rows of table, expired ones included.
func (r *run[C, Cfg, S]) rows(t testing.TB, table string) int64 {
	return Int(t, r.db, "SELECT count(*) FROM "+table)
}

// indexed reports whether table has an index on expires_at.
func (r *run[C, Cfg, S]) indexed(t testing.TB, table string) bool {
	return Int(t, r.db, strings.ReplaceAll(r.Indexes, "{table}", table)) == 1
}

// conformance runs the suite with a store per subtest on one table.
func (r *run[C, Cfg, S]) conformance(t *testing.T) {
	table := Table(t, r.db)
	r.open(t, Cfg{Table: table}) // creates the table once
	storetest.Run(t, func(t *testing.T) session.Store {
		return r.open(t, Cfg{Table: table, SkipCreate: true})
	}, r.Options)
}

// middleware runs the middleware checks on one table, with a look at the
// rows themselves.
func (r *run[C, Cfg, S]) middleware(t *testing.T) {
	table := Table(t, r.db)
	r.open(t, Cfg{Table: table})
	storetest.RunMiddleware(t, func(t *testing.T) session.Store {
		return r.open(t, Cfg{Table: table, SkipCreate: true})
	}, storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			// Session ids are base64url: safe to inline.
			return Int(t, r.db, "SELECT count(*) FROM "+table+" WHERE id = '"+id+"'") == 1
		},
	})
}

// severalInstances: two apps, each with its own client and store, on one
// table.
func (r *run[C, Cfg, S]) severalInstances(t *testing.T) {
	table := Table(t, r.db)
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		return Open(t, r.New, r.Connect(t), Cfg{Table: table})
	})
}

func (r *run[C, Cfg, S]) createTable(t *testing.T) {
	ctx := context.Background()
	// exists reports whether table exists: whether a query of it succeeds.
	exists := func(table string) bool {
		var n int64
		return r.db.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n) == nil
	}
	t.Run("OnDemand", func(t *testing.T) {
		table := Table(t, r.db)
		if exists(table) {
			t.Fatalf("table %s exists before New", table)
		}
		st := r.open(t, Cfg{Table: table})
		if !exists(table) || !r.indexed(t, table) {
			t.Fatalf("New did not create %s and its index", table)
		}
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		// A second store on the same table neither fails nor loses rows.
		st2 := r.open(t, Cfg{Table: table})
		if got, err := st2.Get(ctx, "id"); err != nil || string(got) != "v" {
			t.Errorf("Get through a second store = %q, %v", got, err)
		}
	})
	t.Run("Qualified", func(t *testing.T) {
		if r.Schema == "" {
			t.Skip("the store takes no qualified table name")
		}
		table := Table(t, r.db)
		st := r.open(t, Cfg{Table: r.Schema + "." + table})
		if !exists(r.Schema + "." + table) {
			t.Fatalf("New did not create %s.%s", r.Schema, table)
		}
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("SkipCreate", func(t *testing.T) {
		table := Table(t, r.db)
		st := r.open(t, Cfg{Table: table, SkipCreate: true})
		if exists(table) {
			t.Fatalf("New with SkipCreate created %s", table)
		}
		if _, err := st.Get(ctx, "id"); err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get on a missing table: %v, want a database error", err)
		}
	})
	t.Run("LongName", func(t *testing.T) {
		n := r.MaxName
		if n == 0 {
			n = 100
		}
		long := Table(t, r.db)
		long += "_" + strings.Repeat("x", n-len(long)-1)
		t.Cleanup(func() { Drop(t, r.db, long, r.MaxName) })
		st := r.open(t, Cfg{Table: long})
		if !r.indexed(t, long) {
			t.Errorf("no index on the %d-byte table name %s", len(long), long)
		}
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}

// invalidConfig: a bad table name or a nil client is an error, before any
// I/O.
func (r *run[C, Cfg, S]) invalidConfig(t *testing.T) {
	names := []string{
		"1sessions", "sessions;drop table x", `ses"sions`, "ses`sions", "a.b.c", ".sessions", "sessions.",
		"ses sions", "sessions-1", "séssions",
	}
	if r.MaxName > 0 {
		names = append(names, strings.Repeat("x", r.MaxName+1))
	}
	if r.Schema == "" {
		names = append(names, "main.sessions")
	}
	done, cancel := context.WithCancel(context.Background())
	cancel() // a name that passed would fail on the done context instead
	for _, name := range names {
		if _, err := r.New(done, r.c, Cfg{Table: name}); !errors.Is(err, r.ErrTable) {
			t.Errorf("New(Table: %q): %v, want ErrTable", name, err)
		}
	}
	var nilClient C // a client New used would panic
	if _, err := r.New(context.Background(), nilClient, Cfg{}); err == nil {
		t.Error("New with a nil client succeeded")
	}
}

// deleteExpired checks what storetest.RunCleanup does not: more expired
// rows than one batch, and a cancelled context.
func (r *run[C, Cfg, S]) deleteExpired(t *testing.T) {
	ctx := context.Background()
	table := Table(t, r.db)
	st := r.open(t, Cfg{Table: table, CleanupInterval: -1})
	const expired = sqlstore.Batch + 5
	var wg sync.WaitGroup
	for w := range 8 { // eight writers, to be quick
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < expired; i += 8 {
				if err := st.Set(ctx, fmt.Sprint("expired-", i), []byte("x"), time.Millisecond); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := st.Set(ctx, "live", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Every short record expires a millisecond after it was written; wait
	// until the store says the last one has.
	if err := st.Set(ctx, "last", []byte("x"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, err := st.Get(ctx, "last"); !errors.Is(err, session.ErrNotFound); _, err = st.Get(ctx, "last") {
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if n, err := st.DeleteExpired(ctx); err != nil || n != expired+1 {
		t.Fatalf("DeleteExpired = %d, %v; want %d, nil", n, err, expired+1)
	}
	if n := r.rows(t, table); n != 1 {
		t.Errorf("%d rows left, want the live one", n)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.DeleteExpired(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteExpired with a cancelled context: %v", err)
	}
}

// cleanup runs storetest.RunCleanup with a table of its own for each store.
// Counting the rows after Close also shows that Close leaves the client
// open.
func (r *run[C, Cfg, S]) cleanup(t *testing.T) {
	storetest.RunCleanup(t, func(t *testing.T, interval time.Duration) (session.Store, func() int) {
		table := Table(t, r.db)
		st := r.open(t, Cfg{Table: table, CleanupInterval: interval})
		return st, func() int { return int(r.rows(t, table)) }
	})
}

// version checks that every write of data adds one to the version column,
// even one that writes the bytes already stored, and nothing else does.
func (r *run[C, Cfg, S]) version(t *testing.T) {
	ctx := context.Background()
	table := Table(t, r.db)
	st := r.open(t, Cfg{Table: table})
	cas := func(old, data string, want bool) func() error {
		return func() error {
			ok, err := st.CompareAndSet(ctx, "id", []byte(old), []byte(data), time.Hour)
			if err == nil && ok != want {
				t.Errorf("CompareAndSet(%q, %q) = %v, want %v", old, data, ok, want)
			}
			return err
		}
	}
	for _, step := range []struct {
		name string
		do   func() error
		want int64
	}{
		{"Set", func() error { return st.Set(ctx, "id", []byte("a"), time.Hour) }, 1},
		{"SetAgain", func() error { return st.Set(ctx, "id", []byte("b"), time.Hour) }, 2},
		{"SetSameData", func() error { return st.Set(ctx, "id", []byte("b"), time.Hour) }, 3},
		{"CompareAndSet", cas("b", "c", true), 4},
		{"CompareAndSetSameData", cas("c", "c", true), 5},
		{"FailedCompareAndSet", cas("b", "d", false), 5},
		{"Touch", func() error { return st.Touch(ctx, "id", 2*time.Hour) }, 5},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := Int(t, r.db, "SELECT version FROM "+table+" WHERE id = 'id'"); got != step.want {
			t.Errorf("after %s: version %d, want %d", step.name, got, step.want)
		}
	}
}
