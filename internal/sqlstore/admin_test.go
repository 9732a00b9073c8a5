package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The stores' tests (sqltest.RunAdmin) run this code on the databases; these
// check what those cannot provoke at will: the retries on a deadlock, the
// lists of ids and the names of the owner index table.

var (
	errDeadlock = errors.New("deadlock")
	errNoTable  = errors.New("no such table")
)

// ownerDialect is dialect with an owner index, narrow pruning (Expired),
// ids of at most 3 bytes and three attempts on a deadlock.
func ownerDialect() *Dialect {
	d := dialect()
	d.SQL.CreateOwners = []string{"CREATE OWNERS {owners}", "CREATE INDEX {owners_index} ON {owners}"}
	d.SQL.Own = "OWN {owners}"
	d.SQL.Expired = "EXPIRED {owners}"
	d.SQL.Prune = "PRUNE {owners} WHERE id IN "
	d.SQL.Disown = "DISOWN {owners} WHERE id IN "
	d.SQL.DeleteExpiredOwners = "DELETE EXPIRED {owners}"
	d.Owner = func(o string) any { return "owner:" + o }
	d.Time = func(time.Time) any { return "time" }
	d.MaxID = 3
	d.NoTable = func(err error) bool { return errors.Is(err, errNoTable) }
	d.Deadlock = func(err error) bool { return errors.Is(err, errDeadlock) }
	d.Attempts = 3
	return d
}

func TestOwnerNames(t *testing.T) {
	f := new(fake)
	open(t, f, Config{Table: "app.Web"}, ownerDialect())
	want := []string{
		`CREATE TABLE "app"."Web"`, `CREATE INDEX "Web_expires_at_idx" ON "app"."Web"`,
		`CREATE OWNERS "app"."Web_owners"`, `CREATE INDEX "Web_owners_expires_at_idx" ON "app"."Web_owners"`,
	}
	if got := f.ran(); !slices.Equal(got, want) {
		t.Errorf("New ran %q, want %q", got, want)
	}
	long := strings.Repeat("x", 100)
	if got := OwnersTable(long, 0); got != long+"_owners" {
		t.Errorf("OwnersTable without a limit = %q", got)
	}
	if a, b := OwnersTable(long+"a", 64), OwnersTable(long+"b", 64); len(a) != 64 || len(b) != 64 || a == b || !strings.HasSuffix(a, "_owners") {
		t.Errorf("shortened owner index tables %q and %q: want 64 bytes each, different", a, b)
	}
	// The longest name the dialect takes: every name it makes fits.
	f = new(fake)
	db := open(t, f, Config{Table: strings.Repeat("y", 30), SkipCreate: true}, ownerDialect())
	for _, q := range slices.Concat(db.SQL.CreateOwners, []string{db.SQL.Own}) {
		for _, name := range strings.Split(q, `"`)[1:] {
			if len(name) > 30 && !strings.Contains(name, " ") {
				t.Errorf("%d-byte name %q in %q", len(name), name, q)
			}
		}
	}
}

func TestOwnRetries(t *testing.T) {
	ctx := context.Background()
	deadlocks := 0
	f := &fake{
		exec: func(q string) (int64, error) {
			if strings.HasPrefix(q, "OWN") && deadlocks > 0 {
				deadlocks--
				return 0, errDeadlock
			}
			return 1, nil
		},
		query: func(string) []string { return []string{"a", "long", "b"} },
	}
	db := open(t, f, Config{Table: "t", SkipCreate: true}, ownerDialect())

	deadlocks = 2
	if err := db.Own(ctx, "ada", "id", time.Now()); err != nil {
		t.Fatalf("Own after two deadlocks: %v", err)
	}
	want := []string{`OWN "t_owners"`, `OWN "t_owners"`, `OWN "t_owners"`, `EXPIRED "t_owners"`, `PRUNE "t_owners" WHERE id IN (?, ?)`}
	if got := f.ran(); !slices.Equal(got, want) {
		t.Errorf("Own ran %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(f.args[3:]), "[[owner:ada time] [owner:ada time a b]]"; got != want {
		t.Errorf("the pruning's arguments: %s, want %s (the long id left out)", got, want)
	}

	f.calls, f.args = nil, nil
	deadlocks = 3
	if err := db.Own(ctx, "ada", "id", time.Now()); !errors.Is(err, errDeadlock) || len(f.ran()) != 3 {
		t.Errorf("Own after three deadlocks: %v after %d statements, want the deadlock after 3", err, len(f.ran()))
	}

	// Nothing past its time: no DELETE.
	f.calls, f.query = nil, func(string) []string { return nil }
	if err := db.Own(ctx, "ada", "id", time.Now()); err != nil || len(f.ran()) != 2 {
		t.Errorf("Own with nothing to prune: %v after %q", err, f.ran())
	}
}

func TestDisown(t *testing.T) {
	ctx := context.Background()
	f := new(fake)
	db := open(t, f, Config{Table: "t", SkipCreate: true}, ownerDialect())
	ids := make([]string, 1001)
	for i := range ids {
		ids[i] = fmt.Sprint(i % 1000)
	}
	if err := db.Disown(ctx, "ada", ids...); err != nil {
		t.Fatal(err)
	}
	if err := db.Disown(ctx, "ada", "long", "longer"); err != nil {
		t.Fatal(err)
	}
	if err := db.Disown(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if len(f.args) != 3 || len(f.args[0]) != 501 || len(f.args[1]) != 501 || !slices.Equal(f.args[2], []any{"owner:ada", "0"}) {
		t.Errorf("Disown of 1001 ids, then of ids no entry holds, then of none: %d statements, want 3 of 500, 500 and 1 ids", len(f.args))
	}

	d := ownerDialect()
	d.IDArray = true
	d.SQL.Disown = "DISOWN ANY"
	f = new(fake)
	db = open(t, f, Config{Table: "t", SkipCreate: true}, d)
	if err := db.Disown(ctx, "ada", ids...); err != nil || len(f.args) != 1 || !slices.Equal(f.args[0][1].([]string), ids) {
		t.Errorf("Disown with IDArray: %v, %d statements, want one with the ids as one argument", err, len(f.args))
	}
}

func TestOwnersMissing(t *testing.T) {
	ctx := context.Background()
	f := &fake{exec: func(q string) (int64, error) {
		if strings.Contains(q, "owners") {
			return 0, errNoTable
		}
		return 0, nil
	}}
	d := ownerDialect()
	d.SQL.Clear, d.SQL.ClearOwners = "CLEAR {table}", "CLEAR {owners}"
	db := open(t, f, Config{Table: "t", SkipCreate: true}, d)
	if n, err := db.DeleteExpired(ctx); n != 0 || err != nil {
		t.Errorf("DeleteExpired without an owner index table = %d, %v", n, err)
	}
	if err := db.Clear(ctx); err != nil {
		t.Errorf("Clear without an owner index table: %v", err)
	}
	if err := db.Own(ctx, "ada", "id", time.Now()); !errors.Is(err, errNoTable) {
		t.Errorf("Own without an owner index table: %v", err)
	}
}
