package sqlstore

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// fake is a Client that records the statements it runs and answers with
// exec, scan and the ids of query.
type fake struct {
	mu    sync.Mutex
	calls []string
	args  [][]any
	exec  func(q string) (int64, error)
	scan  func(dest ...any) error
	query func(q string) []string
}

func (f *fake) Exec(_ context.Context, q string, args ...any) (int64, error) {
	f.mu.Lock()
	f.calls, f.args = append(f.calls, q), append(f.args, args)
	f.mu.Unlock()
	if f.exec == nil {
		return 0, nil
	}
	return f.exec(q)
}

func (f *fake) Get(ctx context.Context, q, id string) (data []byte, n int64, err error) {
	err = f.QueryRow(ctx, q, id).Scan(&data, &n)
	return data, n, err
}

func (f *fake) QueryRow(_ context.Context, q string, args ...any) Row {
	f.mu.Lock()
	f.calls, f.args = append(f.calls, q), append(f.args, args)
	f.mu.Unlock()
	return scanner(f.scan)
}

func (f *fake) Query(_ context.Context, q string, args ...any) (Rows, error) {
	f.mu.Lock()
	f.calls, f.args = append(f.calls, q), append(f.args, args)
	f.mu.Unlock()
	var ids []string
	if f.query != nil {
		ids = f.query(q)
	}
	return &idRows{ids: ids}, nil
}

// idRows are rows of one column, an id.
type idRows struct {
	ids []string
	cur string
}

func (r *idRows) Next() bool {
	if len(r.ids) == 0 {
		return false
	}
	r.cur, r.ids = r.ids[0], r.ids[1:]
	return true
}

func (r *idRows) Scan(dest ...any) error { *dest[0].(*string) = r.cur; return nil }
func (r *idRows) Err() error             { return nil }
func (r *idRows) Close() error           { return nil }

func (f *fake) ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

type scanner func(dest ...any) error

func (s scanner) Scan(dest ...any) error { return s(dest...) }

var (
	errTable = errors.New("teststore: bad table")
	errNoRow = errors.New("no row")
	errIO    = errors.New("i/o timeout")
)

func dialect() *Dialect {
	return &Dialect{
		Name: "teststore", Quote: `"`, MaxName: 30, ErrTable: errTable, NoRows: errNoRow,
		SQL: Statements{
			Create:        []string{"CREATE TABLE {table}", "CREATE INDEX {index} ON {table}"},
			GetTTL:        "GET {table}",
			Delete:        "DELETE {table}",
			DeleteExpired: "DELETE EXPIRED {table} LIMIT {batch}",
		},
	}
}

// self is the store func of a DB that is its own store.
func self(db *DB) *DB { return db }

// open returns a DB with cfg (by default without a background cleanup),
// closed when t ends.
func open(t *testing.T, c Client, cfg Config, d *Dialect) *DB {
	t.Helper()
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = -1
	}
	db, err := New(context.Background(), c, cfg, d, self)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestTableNames(t *testing.T) {
	for name, want := range map[string][]string{
		"":          {`CREATE TABLE "sessions"`, `CREATE INDEX "sessions_expires_at_idx" ON "sessions"`},
		"web":       {`CREATE TABLE "web"`, `CREATE INDEX "web_expires_at_idx" ON "web"`},
		"app.Web_2": {`CREATE TABLE "app"."Web_2"`, `CREATE INDEX "Web_2_expires_at_idx" ON "app"."Web_2"`},
	} {
		f := new(fake)
		open(t, f, Config{Table: name}, dialect())
		if got := f.ran(); !slices.Equal(got, want) {
			t.Errorf("Table %q ran %q, want %q", name, got, want)
		}
	}
	long := strings.Repeat("x", 100)
	if got := indexName(long, 0); got != long+"_expires_at_idx" {
		t.Errorf("indexName without a limit = %q", got)
	}
	if a, b := indexName(long+"a", 63), indexName(long+"b", 63); len(a) != 63 || len(b) != 63 || a == b || !strings.HasPrefix(a, long[:39]+"_") {
		t.Errorf("shortened index names %q and %q: want 63 bytes each, the table name's start, and different", a, b)
	}

	for _, name := range []string{"1a", "a-b", `a"b`, "a.b.c", ".a", "a.", "a b", "é", strings.Repeat("x", 31), "a." + strings.Repeat("x", 31)} {
		f := new(fake)
		if _, err := New(context.Background(), f, Config{Table: name}, dialect(), self); !errors.Is(err, errTable) || len(f.ran()) > 0 {
			t.Errorf("New(Table: %q): %v after %d statements, want ErrTable before any", name, err, len(f.ran()))
		}
	}
	d := dialect()
	d.Unqualified = true
	if _, err := New(context.Background(), new(fake), Config{Table: "a.b"}, d, self); !errors.Is(err, errTable) {
		t.Errorf("New(Table: a.b) with Unqualified: %v, want ErrTable", err)
	}
	if _, err := New(context.Background(), nil, Config{}, dialect(), self); err == nil {
		t.Error("New with a nil client succeeded")
	}
}

func TestNew(t *testing.T) {
	f := new(fake)
	db := open(t, f, Config{Table: "t", SkipCreate: true}, dialect())
	if got := f.ran(); len(got) > 0 {
		t.Errorf("SkipCreate ran %q", got)
	}
	if db.SQL.GetTTL != `GET "t"` || db.SQL.DeleteExpired != `DELETE EXPIRED "t" LIMIT 1000` {
		t.Errorf("statements not filled in: %+v", db.SQL)
	}

	f = &fake{exec: func(string) (int64, error) { return 0, errIO }}
	_, err := New(context.Background(), f, Config{}, dialect(), self)
	if !errors.Is(err, errIO) || !strings.HasPrefix(err.Error(), "teststore: ") {
		t.Errorf("New with a failing CREATE: %v", err)
	}
}

func TestGetExec(t *testing.T) {
	ctx := context.Background()
	f := new(fake)
	db := open(t, f, Config{SkipCreate: true}, dialect())

	f.scan = func(dest ...any) error {
		*dest[0].(*[]byte), *dest[1].(*int64) = []byte("data"), 42
		return nil
	}
	if data, n, err := db.Get(ctx, "get", db.SQL.GetTTL, "id"); string(data) != "data" || n != 42 || err != nil {
		t.Errorf("Get = %q, %d, %v", data, n, err)
	}
	f.scan = func(...any) error { return errNoRow }
	if _, _, err := db.Get(ctx, "get", db.SQL.GetTTL, "id"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get without a row: %v, want ErrNotFound", err)
	}
	f.scan = func(...any) error { return errIO }
	if _, _, err := db.Get(ctx, "get", db.SQL.GetTTL, "id"); !errors.Is(err, errIO) || err.Error() != "teststore: get: i/o timeout" {
		t.Errorf("Get with a failing query: %v", err)
	}
	f.exec = func(string) (int64, error) { return 0, errIO }
	if _, err := db.Exec(ctx, "delete", db.SQL.Delete, "id"); !errors.Is(err, errIO) || err.Error() != "teststore: delete: i/o timeout" {
		t.Errorf("Exec with a failing statement: %v", err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	before := len(f.ran())
	if _, _, err := db.Get(canceled, "get", db.SQL.GetTTL, "id"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a done context: %v", err)
	}
	if _, err := db.Exec(canceled, "delete", db.SQL.Delete, "id"); !errors.Is(err, context.Canceled) {
		t.Errorf("Exec with a done context: %v", err)
	}
	if n := len(f.ran()) - before; n > 0 {
		t.Errorf("%d statements ran with a done context", n)
	}
}

func TestDeleteExpired(t *testing.T) {
	left := int64(2*Batch + 3)
	f := &fake{exec: func(string) (int64, error) {
		n := min(left, Batch)
		left -= n
		return n, nil
	}}
	d := dialect()
	d.NowArgs = func() []any { return []any{"now"} }
	db := open(t, f, Config{SkipCreate: true}, d)
	if n, err := db.DeleteExpired(context.Background()); n != 2*Batch+3 || err != nil {
		t.Errorf("DeleteExpired = %d, %v; want %d, nil", n, err, 2*Batch+3)
	}
	if len(f.calls) != 3 || !slices.Equal(f.args[0], []any{"now"}) {
		t.Errorf("DeleteExpired ran %d statements with %v, want 3 with [now]", len(f.calls), f.args)
	}
}

func TestCleanupLoop(t *testing.T) {
	f := new(fake)
	db := open(t, f, Config{SkipCreate: true, CleanupInterval: time.Millisecond}, dialect())
	waitFor(t, "two cleanups", func() bool { return len(f.ran()) >= 2 })
	for range 2 {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	n := len(f.ran())
	time.Sleep(20 * time.Millisecond) // a loop still running would run again
	if got := len(f.ran()); got != n {
		t.Errorf("%d cleanups ran after Close", got-n)
	}
}

// logged is a slog.Handler that sends the attribute values of the records it
// handles to a channel, dropping what the channel has no room for.
type logged chan string

func (l logged) Enabled(context.Context, slog.Level) bool { return true }
func (l logged) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logged) WithGroup(string) slog.Handler            { return l }

func (l logged) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		select {
		case l <- a.Value.String():
		default:
		}
		return true
	})
	return nil
}

func TestCleanupLogs(t *testing.T) {
	f := &fake{exec: func(string) (int64, error) { return 0, errIO }}
	errs := make(logged, 1)
	open(t, f, Config{SkipCreate: true, CleanupInterval: time.Millisecond, Logger: slog.New(errs)}, dialect())
	select {
	case got := <-errs:
		if want := "teststore: delete expired: i/o timeout"; got != want {
			t.Errorf("logged %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cleanup's error was not logged within 5s")
	}
}

// waitFor polls cond until it holds, for at most 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5s", what)
		}
	}
}
