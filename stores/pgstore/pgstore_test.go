package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"

func dsn() string { return storetest.Addr("SESSION_POSTGRES_DSN", defaultDSN) }

// connect returns a pool on dsn, closed when the test ends, or skips (fails
// with SESSION_REQUIRE_SERVERS=1) when the server cannot be reached.
func connect(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		if err = pool.Ping(ctx); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		storetest.Unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// tableName returns a table name no other test run uses, and drops that
// table when the test ends.
func tableName(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "sessions_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	return name
}

func newStore(t testing.TB, pool *pgxpool.Pool, cfg Config) *Store {
	t.Helper()
	st, err := New(context.Background(), pool, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	pool := connect(t, dsn())
	table := tableName(t, pool)
	newStore(t, pool, Config{Table: table}) // creates the table once
	storetest.Run(t, func(t *testing.T) session.Store {
		return newStore(t, pool, Config{Table: table, SkipCreate: true})
	})
}

// exists reports whether the table (in the search path) exists.
func exists(t *testing.T, pool *pgxpool.Pool, table string) bool {
	t.Helper()
	var reg *string
	if err := pool.QueryRow(context.Background(), "SELECT to_regclass($1)::text", table).Scan(&reg); err != nil {
		t.Fatal(err)
	}
	return reg != nil
}

func TestCreatesTable(t *testing.T) {
	pool := connect(t, dsn())
	ctx := context.Background()

	t.Run("OnDemand", func(t *testing.T) {
		table := tableName(t, pool)
		if exists(t, pool, table) {
			t.Fatalf("table %s exists before New", table)
		}
		st := newStore(t, pool, Config{Table: table})
		if !exists(t, pool, table) {
			t.Fatalf("New did not create %s", table)
		}
		if !exists(t, pool, indexName(table)) {
			t.Errorf("New did not create the index %s", indexName(table))
		}
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		// A second store on the same table neither fails nor loses rows.
		st2 := newStore(t, pool, Config{Table: table})
		if got, err := st2.Get(ctx, "id"); err != nil || string(got) != "v" {
			t.Errorf("Get through a second store = %q, %v", got, err)
		}
	})

	t.Run("Qualified", func(t *testing.T) {
		table := tableName(t, pool)
		st := newStore(t, pool, Config{Table: "public." + table})
		if !exists(t, pool, "public."+table) {
			t.Fatalf("New did not create public.%s", table)
		}
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SkipCreate", func(t *testing.T) {
		table := tableName(t, pool)
		st := newStore(t, pool, Config{Table: table, SkipCreate: true})
		if exists(t, pool, table) {
			t.Fatalf("New with SkipCreate created %s", table)
		}
		if _, err := st.Get(ctx, "id"); err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get on a missing table: %v, want a database error", err)
		}
	})

	t.Run("LongName", func(t *testing.T) {
		long := tableName(t, pool) + "_" + strings.Repeat("x", 63-len("sessions_test_")-12-1)
		t.Cleanup(func() { _, _ = pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{long}.Sanitize()) })
		if len(long) != 63 {
			t.Fatalf("test name has %d bytes, want 63", len(long))
		}
		newStore(t, pool, Config{Table: long})
		if idx := indexName(long); len(idx) > 63 || !exists(t, pool, idx) {
			t.Errorf("index %q (%d bytes) missing", idx, len(idx))
		}
	})
}

func TestInvalidTable(t *testing.T) {
	for _, name := range []string{
		"1sessions", "sessions;drop table x", `ses"sions`, "a.b.c", ".sessions", "sessions.",
		"ses sions", "sessions-1", "séssions", strings.Repeat("x", 64),
	} {
		t.Run(name, func(t *testing.T) {
			// The name is refused before the pool is used.
			_, err := New(context.Background(), new(pgxpool.Pool), Config{Table: name})
			if !errors.Is(err, ErrTable) {
				t.Errorf("New(Table: %q): %v, want ErrTable", name, err)
			}
		})
	}
}

// count returns the number of rows in table, expired ones included.
func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeleteExpired(t *testing.T) {
	pool := connect(t, dsn())
	ctx := context.Background()
	table := tableName(t, pool)
	st := newStore(t, pool, Config{Table: table, CleanupInterval: -1})
	for i, ttl := range []time.Duration{time.Millisecond, time.Millisecond, time.Hour} {
		if err := st.Set(ctx, string(rune('a'+i)), []byte("x"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let the two short TTLs pass
	n, err := st.DeleteExpired(ctx)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v; want 2, nil", n, err)
	}
	if got := count(t, pool, table); got != 1 {
		t.Errorf("%d rows left, want the live one", got)
	}
	if _, err := st.Get(ctx, "c"); err != nil {
		t.Errorf("live record: %v", err)
	}
}

func TestCleanupLoop(t *testing.T) {
	pool := connect(t, dsn())
	table := tableName(t, pool)
	storetest.RunCleanup(t, func(t *testing.T, interval time.Duration) session.Store {
		return newStore(t, pool, Config{Table: table, CleanupInterval: interval})
	}, func(t *testing.T) int { return count(t, pool, table) })
}

func TestVersionColumn(t *testing.T) {
	pool := connect(t, dsn())
	ctx := context.Background()
	table := tableName(t, pool)
	st := newStore(t, pool, Config{Table: table})
	version := func() int64 {
		var v int64
		if err := pool.QueryRow(ctx, "SELECT version FROM "+pgx.Identifier{table}.Sanitize()+" WHERE id = 'id'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct {
		name string
		do   func() error
		want int64
	}{
		{"Set", func() error { return st.Set(ctx, "id", []byte("a"), time.Hour) }, 1},
		{"SetAgain", func() error { return st.Set(ctx, "id", []byte("b"), time.Hour) }, 2},
		{"CompareAndSet", func() error { _, err := st.CompareAndSet(ctx, "id", []byte("b"), []byte("c"), time.Hour); return err }, 3},
		{"FailedCompareAndSet", func() error { _, err := st.CompareAndSet(ctx, "id", []byte("b"), []byte("d"), time.Hour); return err }, 3},
		{"Touch", func() error { return st.Touch(ctx, "id", 2*time.Hour) }, 3},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := version(); got != s.want {
			t.Errorf("after %s: version %d, want %d", s.name, got, s.want)
		}
	}
}
