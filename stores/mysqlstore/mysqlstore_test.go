package mysqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

const defaultDSN = "root@tcp(127.0.0.1:3306)/test"

// dsnConfig returns the test server's DSN, parsed, with short dial and I/O
// timeouts.
func dsnConfig(t testing.TB) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(storetest.Addr("SESSION_MYSQL_DSN", defaultDSN))
	if err != nil {
		t.Fatalf("SESSION_MYSQL_DSN: %v", err)
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, 10*time.Second, 10*time.Second
	return cfg
}

// connect returns a DB for cfg, closed when the test ends, or skips (fails
// with SESSION_REQUIRE_SERVERS=1) when the server cannot be reached.
func connect(t testing.TB, cfg *mysql.Config) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		storetest.Unavailable(t, "MariaDB", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// tableName returns a table name no other test run uses, and drops that
// table when the test ends.
func tableName(t testing.TB, db *sql.DB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "sessions_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if _, err := db.Exec("DROP TABLE IF EXISTS `" + name + "`"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	return name
}

func newStore(t testing.TB, db *sql.DB, cfg Config) *Store {
	t.Helper()
	st, err := New(context.Background(), db, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestConformance runs the suite with and without clientFoundRows: the
// store reads affected-row counts that must mean the same either way.
func TestConformance(t *testing.T) {
	for _, foundRows := range []bool{false, true} {
		name := map[bool]string{false: "Default", true: "ClientFoundRows"}[foundRows]
		t.Run(name, func(t *testing.T) {
			cfg := dsnConfig(t)
			cfg.ClientFoundRows = foundRows
			db := connect(t, cfg)
			table := tableName(t, db)
			newStore(t, db, Config{Table: table}) // creates the table once
			storetest.Run(t, func(t *testing.T) session.Store {
				return newStore(t, db, Config{Table: table, SkipCreate: true})
			})
		})
	}
}

// exists reports whether the table exists in the current database.
func exists(t *testing.T, db *sql.DB, table string) bool {
	t.Helper()
	var n int
	err := db.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestCreatesTable(t *testing.T) {
	db := connect(t, dsnConfig(t))
	ctx := context.Background()

	t.Run("OnDemand", func(t *testing.T) {
		table := tableName(t, db)
		if exists(t, db, table) {
			t.Fatalf("table %s exists before New", table)
		}
		st := newStore(t, db, Config{Table: table})
		if !exists(t, db, table) {
			t.Fatalf("New did not create %s", table)
		}
		var idx int
		if err := db.QueryRow("SELECT count(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'expires_at'", table).Scan(&idx); err != nil || idx != 1 {
			t.Errorf("index on expires_at: %d, %v", idx, err)
		}
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		// A second store on the same table neither fails nor loses rows.
		st2 := newStore(t, db, Config{Table: table})
		if got, err := st2.Get(ctx, "id"); err != nil || string(got) != "v" {
			t.Errorf("Get through a second store = %q, %v", got, err)
		}
	})

	t.Run("Qualified", func(t *testing.T) {
		table := tableName(t, db)
		var dbName string
		if err := db.QueryRow("SELECT DATABASE()").Scan(&dbName); err != nil {
			t.Fatal(err)
		}
		st := newStore(t, db, Config{Table: dbName + "." + table})
		if !exists(t, db, table) {
			t.Fatalf("New did not create %s.%s", dbName, table)
		}
		if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SkipCreate", func(t *testing.T) {
		table := tableName(t, db)
		st := newStore(t, db, Config{Table: table, SkipCreate: true})
		if exists(t, db, table) {
			t.Fatalf("New with SkipCreate created %s", table)
		}
		if _, err := st.Get(ctx, "id"); err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get on a missing table: %v, want a database error", err)
		}
	})
}

func TestInvalidTable(t *testing.T) {
	for _, name := range []string{
		"1sessions", "sessions;drop table x", "ses`sions", "a.b.c", ".sessions", "sessions.",
		"ses sions", "sessions-1", "séssions", strings.Repeat("x", 65),
	} {
		t.Run(name, func(t *testing.T) {
			// The name is refused before the DB is used.
			_, err := New(context.Background(), new(sql.DB), Config{Table: name})
			if !errors.Is(err, ErrTable) {
				t.Errorf("New(Table: %q): %v, want ErrTable", name, err)
			}
		})
	}
}

// Ids longer than the column are refused, not truncated into another id.
func TestLongID(t *testing.T) {
	db := connect(t, dsnConfig(t))
	ctx := context.Background()
	st := newStore(t, db, Config{Table: tableName(t, db)})
	id := strings.Repeat("a", MaxIDLen)
	if err := st.Set(ctx, id, []byte("max"), time.Minute); err != nil {
		t.Fatalf("Set of a %d-byte id: %v", MaxIDLen, err)
	}
	long := id + "b"
	if err := st.Set(ctx, long, []byte("long"), time.Minute); !errors.Is(err, ErrLongID) {
		t.Errorf("Set of a %d-byte id: %v, want ErrLongID", len(long), err)
	}
	if ok, err := st.CompareAndSet(ctx, long, nil, []byte("long"), time.Minute); ok || !errors.Is(err, ErrLongID) {
		t.Errorf("CompareAndSet of a %d-byte id: %v, %v; want false, ErrLongID", len(long), ok, err)
	}
	if _, err := st.Get(ctx, long); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of a %d-byte id: %v, want ErrNotFound", len(long), err)
	}
	if got, err := st.Get(ctx, id); err != nil || string(got) != "max" {
		t.Errorf("Get(%d-byte id) = %q, %v; want the record untouched", MaxIDLen, got, err)
	}
}

// count returns the number of rows in table, expired ones included.
func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM `" + table + "`").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeleteExpired(t *testing.T) {
	db := connect(t, dsnConfig(t))
	ctx := context.Background()
	table := tableName(t, db)
	st := newStore(t, db, Config{Table: table, CleanupInterval: -1})
	// More expired rows than one batch, and a live one.
	const expired = sweepBatch + 5
	rows := make([]string, expired)
	args := make([]any, expired)
	for i := range rows {
		rows[i], args[i] = "(?, 'x', UTC_TIMESTAMP(6) - INTERVAL 1 SECOND)", "expired-"+strconv.Itoa(i)
	}
	if _, err := db.Exec("INSERT INTO `"+table+"` (id, data, expires_at) VALUES "+strings.Join(rows, ", "), args...); err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "live", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	n, err := st.DeleteExpired(ctx)
	if err != nil || n != expired {
		t.Fatalf("DeleteExpired = %d, %v; want %d, nil", n, err, expired)
	}
	if got := count(t, db, table); got != 1 {
		t.Errorf("%d rows left, want the live one", got)
	}
	if _, err := st.Get(ctx, "live"); err != nil {
		t.Errorf("live record: %v", err)
	}
}

func TestCleanupLoop(t *testing.T) {
	db := connect(t, dsnConfig(t))
	table := tableName(t, db)
	storetest.RunCleanup(t, func(t *testing.T, interval time.Duration) session.Store {
		return newStore(t, db, Config{Table: table, CleanupInterval: interval})
	}, func(t *testing.T) int { return count(t, db, table) })
}

func TestVersionColumn(t *testing.T) {
	db := connect(t, dsnConfig(t))
	ctx := context.Background()
	table := tableName(t, db)
	st := newStore(t, db, Config{Table: table})
	version := func() int64 {
		var v int64
		if err := db.QueryRow("SELECT version FROM `" + table + "` WHERE id = 'id'").Scan(&v); err != nil {
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
		{"SetSameData", func() error { return st.Set(ctx, "id", []byte("b"), time.Hour) }, 3},
		{"CompareAndSet", func() error { _, err := st.CompareAndSet(ctx, "id", []byte("b"), []byte("c"), time.Hour); return err }, 4},
		{"CompareAndSetSameData", func() error { _, err := st.CompareAndSet(ctx, "id", []byte("c"), []byte("c"), time.Hour); return err }, 5},
		{"FailedCompareAndSet", func() error { _, err := st.CompareAndSet(ctx, "id", []byte("b"), []byte("d"), time.Hour); return err }, 5},
		{"Touch", func() error { return st.Touch(ctx, "id", 2*time.Hour) }, 5},
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

// A compare-and-set that writes the bytes already stored still reports a
// write: its UPDATE changes version, so the affected-row count is 1 with or
// without clientFoundRows.
func TestCompareAndSetSameData(t *testing.T) {
	for _, foundRows := range []bool{false, true} {
		cfg := dsnConfig(t)
		cfg.ClientFoundRows = foundRows
		db := connect(t, cfg)
		st := newStore(t, db, Config{Table: tableName(t, db)})
		ctx := context.Background()
		if err := st.Set(ctx, "id", []byte("same"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if ok, err := st.CompareAndSet(ctx, "id", []byte("same"), []byte("same"), time.Hour); !ok || err != nil {
			t.Errorf("clientFoundRows=%v: CompareAndSet(old = data = current) = %v, %v; want true, nil", foundRows, ok, err)
		}
	}
}
