package sqltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/sqlstore"
	"github.com/fibersession/session/stores/storetest"
)

// AdminStore is what the shared tests of RunAdmin use of a SQL store.
type AdminStore interface {
	Store
	session.Scanner
	session.Counter
	session.Clearer
	session.OwnerIndex
}

// Admin is what RunAdmin needs of a store besides its Harness, of which it
// uses Client, New, MaxName and Options.TTLGranularity.
type Admin[C any] struct {
	// Connect returns a client of a database for one test, closed when tb
	// ends (or skips tb, as Harness.Connect does), with room for the
	// connections of the concurrent tests, and single, which returns a new
	// client of the same database that holds at most one connection,
	// closed when its tb ends.
	Connect func(tb testing.TB) (c C, single func(testing.TB) C)
	// Dialect is the store's: the names of its owner index tables, its
	// owners as parameters (Dialect.Owner), and the statements that create
	// its table as a release without an owner index did (SQL.Create).
	Dialect *sqlstore.Dialect
	// Past is an SQL expression of an expiry an hour ago, in the tables'
	// own terms.
	Past string
	// Param is the first parameter of a query: "$1" or "?".
	Param string
}

// RunAdmin runs the shared tests of the administration capabilities and the
// owner index, each a subtest: storetest.RunAdmin with a table per
// namespace, Scan, Count and Clear over many rows and two tables, Scan
// stopping and Scan with a callback that deletes through a single
// connection, the owner index (its round trip, times past, cleanup,
// concurrent Owns, owners kept exactly), a table made by a release without
// an owner index, and the owner index table of the longest table name.
func RunAdmin[C any, Cfg Config, S AdminStore](t *testing.T, h Harness[C, Cfg, S], a Admin[C]) {
	r := &adminRun[C, Cfg, S]{h: h, a: a}
	subtests(t, []subtest{
		{"Capabilities", r.capabilities},
		{"ScanCountClear", r.scanCountClear},
		{"ScanStops", r.scanStops},
		{"ScanDelete", r.scanDelete},
		{"OwnerIndex", r.ownerIndex},
		{"OwnerIndexUpgrade", r.ownerIndexUpgrade},
		{"OwnerIndexLongName", r.ownerIndexLongName},
	})
}

type adminRun[C any, Cfg Config, S AdminStore] struct {
	h Harness[C, Cfg, S]
	a Admin[C]
}

// admins is a test's access to the database: its stores and its own
// queries.
type admins[C any, Cfg Config, S AdminStore] struct {
	*adminRun[C, Cfg, S]
	c      C // the client of the stores
	single func(testing.TB) C
	db     sqlstore.Client
}

func (r *adminRun[C, Cfg, S]) connect(t *testing.T) *admins[C, Cfg, S] {
	c, single := r.a.Connect(t)
	return &admins[C, Cfg, S]{adminRun: r, c: c, single: single, db: r.h.Client(c)}
}

// open returns a store on table without a background cleanup, closed when t
// ends. With oneConn, the store gets a client of its own that holds at most
// one connection.
func (a *admins[C, Cfg, S]) open(t *testing.T, table string, oneConn bool) S {
	t.Helper()
	c := a.c
	if oneConn {
		c = a.single(t)
	}
	return Open(t, a.h.New, c, Cfg{Table: table, CleanupInterval: -1})
}

// exec runs q, whose first parameter is Admin.Param.
func (a *admins[C, Cfg, S]) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := a.db.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (a *admins[C, Cfg, S]) int(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := a.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// owners is the name of the owner index table of table.
func (r *adminRun[C, Cfg, S]) owners(table string) string {
	return sqlstore.OwnersTable(table, r.a.Dialect.MaxName)
}

// ownerArg is an owner as the owner index table's owner column takes it.
func (r *adminRun[C, Cfg, S]) ownerArg(owner string) any {
	if r.a.Dialect.Owner == nil {
		return owner
	}
	return r.a.Dialect.Owner(owner)
}

// capabilities runs storetest.RunAdmin with a table per namespace in one
// database.
func (r *adminRun[C, Cfg, S]) capabilities(t *testing.T) {
	a := r.connect(t)
	storetest.RunAdmin(t, func(t *testing.T, namespace string) session.Store {
		table := "sessions_admin_" + namespace
		t.Cleanup(func() { Drop(t, a.db, table, r.h.MaxName) })
		return a.open(t, table, false)
	}, storetest.AdminOptions{TTLGranularity: r.h.Options.TTLGranularity})
}

// scanCountClear writes 10,000 sessions and an expired one to a table and
// some to another; Scan reports each live one once with its data, Count
// counts them, and Clear empties the table and its owner index and leaves
// the other table and its index alone.
func (r *adminRun[C, Cfg, S]) scanCountClear(t *testing.T) {
	ctx := context.Background()
	a := r.connect(t)
	table, other := Table(t, a.db), Table(t, a.db)
	st, ot := a.open(t, table, false), a.open(t, other, false)

	const n = 10000
	data := func(i int) []byte { return fmt.Appendf(nil, "\x00\xff record %d \x80", i) }
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if err := st.Set(ctx, fmt.Sprintf("id-%05d", i), data(i), time.Hour); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	a.exec(t, `INSERT INTO `+table+` (id, data, expires_at) VALUES ('expired', 'x', `+r.a.Past+`)`)
	for i := range 3 {
		if err := ot.Set(ctx, fmt.Sprint("other-", i), []byte("o"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	until := time.Now().Add(time.Hour)
	for _, o := range []struct {
		st S
		id string
	}{{st, "id-00001"}, {st, "id-00002"}, {ot, "other-0"}} {
		if err := o.st.Own(ctx, "ada", o.id, until); err != nil {
			t.Fatal(err)
		}
	}

	seen := make(map[string]int, n)
	if err := st.Scan(ctx, func(id string, got []byte) error {
		seen[id]++
		var i int
		if _, err := fmt.Sscanf(id, "id-%05d", &i); err != nil {
			t.Errorf("Scan reported %q, which was never written live", id)
		} else if !bytes.Equal(got, data(i)) {
			t.Errorf("Scan reported %q with %q, want %q", id, got, data(i))
		}
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(seen) != n {
		t.Errorf("Scan reported %d ids, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("Scan reported %s %d times", id, k)
		}
	}
	if c, err := st.Count(ctx); err != nil || c != n {
		t.Errorf("Count = %d, %v; want %d (the expired row not counted)", c, err, n)
	}

	if err := st.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	if c, err := st.Count(ctx); err != nil || c != 0 {
		t.Errorf("Count after Clear = %d, %v; want 0", c, err)
	}
	if rows := a.int(t, `SELECT count(*) FROM `+table); rows != 0 {
		t.Errorf("%d rows left in %s after Clear, expired ones included; want 0", rows, table)
	}
	if rows := a.int(t, `SELECT count(*) FROM `+r.owners(table)); rows != 0 {
		t.Errorf("%d owner index entries left after Clear, want 0", rows)
	}
	if err := st.Scan(ctx, func(id string, _ []byte) error {
		t.Errorf("Scan after Clear reported %s", id)
		return nil
	}); err != nil {
		t.Error(err)
	}
	if c, err := ot.Count(ctx); err != nil || c != 3 {
		t.Errorf("Count of the other table after Clear = %d, %v; want 3", c, err)
	}
	if ids, err := ot.Owned(ctx, "ada"); err != nil || !slices.Equal(ids, []string{"other-0"}) {
		t.Errorf("Owned in the other table after Clear = %q, %v; want [other-0]", ids, err)
	}
}

// setMany writes n records, id-0000 to id-<n-1>, with data their id.
func setMany(t *testing.T, st session.Store, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("id-%04d", i)
		if err := st.Set(context.Background(), id, []byte(id), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
}

// scanStops: the first error of fn ends Scan, which returns it.
func (r *adminRun[C, Cfg, S]) scanStops(t *testing.T) {
	a := r.connect(t)
	st := a.open(t, Table(t, a.db), false)
	setMany(t, st, sqlstore.Batch+10)
	errStop := errors.New("stop")
	calls := 0
	err := st.Scan(context.Background(), func(string, []byte) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if err != errStop || calls != 3 {
		t.Errorf("Scan whose fn failed on the third call = %v after %d calls, want errStop after 3", err, calls)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Scan(canceled, func(string, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled context: %v", err)
	}
	if _, err := st.Count(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Count with a cancelled context: %v", err)
	}
}

// scanDelete: fn deletes each record it is given, through a store whose
// client has a single connection: Scan holds no connection while fn runs.
func (r *adminRun[C, Cfg, S]) scanDelete(t *testing.T) {
	a := r.connect(t)
	st := a.open(t, Table(t, a.db), true)
	const n = 2*sqlstore.Batch + 10
	setMany(t, st, n)
	tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := make(map[string]bool, n)
	if err := st.Scan(tctx, func(id string, data []byte) error {
		if seen[id] || id != string(data) {
			t.Errorf("Scan reported %s again or with %q", id, data)
		}
		seen[id] = true
		return st.Delete(tctx, id)
	}); err != nil {
		t.Fatalf("Scan deleting as it goes: %v", err)
	}
	if len(seen) != n {
		t.Errorf("Scan reported %d records, want %d", len(seen), n)
	}
	if c, err := st.Count(context.Background()); err != nil || c != 0 {
		t.Errorf("Count after deleting every record = %d, %v", c, err)
	}
}

// owned returns the sorted ids of owner, failing t on an error.
func owned(t *testing.T, st session.OwnerIndex, owner string) []string {
	t.Helper()
	ids, err := st.Owned(context.Background(), owner)
	if err != nil {
		t.Fatalf("Owned(%q): %v", owner, err)
	}
	slices.Sort(ids)
	return ids
}

func own(t *testing.T, st session.OwnerIndex, owner, id string, until time.Time) {
	t.Helper()
	if err := st.Own(context.Background(), owner, id, until); err != nil {
		t.Fatalf("Own(%q, %q): %v", owner, id, err)
	}
}

func (r *adminRun[C, Cfg, S]) ownerIndex(t *testing.T) {
	ctx := context.Background()
	a := r.connect(t)
	table := Table(t, a.db)
	st := a.open(t, table, false)
	later, earlier := time.Now().Add(time.Hour), time.Now().Add(-time.Second)
	// entries counts owner's entries in the table, past their time or not.
	entries := func(owner string) int64 {
		return a.int(t, `SELECT count(*) FROM `+r.owners(table)+` WHERE owner = `+r.a.Param, r.ownerArg(owner))
	}
	// insertPast inserts an entry of owner past its time, whoever wrote it.
	insertPast := func(owner, id string) {
		a.exec(t, `INSERT INTO `+r.owners(table)+` (owner, id, expires_at) VALUES (`+r.a.Param+`, '`+id+`', `+r.a.Past+`)`, r.ownerArg(owner))
	}

	t.Run("RoundTrip", func(t *testing.T) {
		own(t, st, "rt", "a", later)
		own(t, st, "rt", "b", later)
		own(t, st, "rt", "b", later.Add(time.Minute)) // moves b's time
		if got := owned(t, st, "rt"); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("Owned = %q, want [a b]", got)
		}
		if err := st.Disown(ctx, "rt", "a", "missing"); err != nil {
			t.Fatal(err)
		}
		if err := st.Disown(ctx, "rt"); err != nil {
			t.Fatal(err)
		}
		if err := st.Disown(ctx, "nobody", "b"); err != nil {
			t.Fatal(err)
		}
		if got := owned(t, st, "rt"); !slices.Equal(got, []string{"b"}) {
			t.Errorf("Owned after Disown(a) = %q, want [b]", got)
		}
		if got := owned(t, st, "nobody"); len(got) != 0 {
			t.Errorf("Owned of an owner without sessions = %q", got)
		}
		if c, err := st.Count(ctx); err != nil || c != 0 {
			t.Errorf("Count = %d, %v; owner index entries are not records", c, err)
		}
	})

	t.Run("PastUntil", func(t *testing.T) {
		own(t, st, "past", "live", later)
		own(t, st, "past", "old", earlier)
		insertPast("past", "older")
		if got := owned(t, st, "past"); !slices.Equal(got, []string{"live"}) {
			t.Errorf("Owned = %q, want only [live]", got)
		}
		own(t, st, "past", "new", later)
		if n := entries("past"); n != 2 {
			t.Errorf("%d entries after the next Own, want 2: the ones past their time removed", n)
		}
		own(t, st, "past", "live", earlier) // moves an entry's time back
		own(t, st, "past", "live", later)   // and forward again
		if got := owned(t, st, "past"); !slices.Equal(got, []string{"live", "new"}) {
			t.Errorf("Owned = %q, want [live new]", got)
		}
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		insertPast("cleaned", "old")
		own(t, st, "cleaned", "live", later)
		insertPast("cleaned2", "old")
		if _, err := st.DeleteExpired(ctx); err != nil {
			t.Fatal(err)
		}
		if n, m := entries("cleaned"), entries("cleaned2"); n != 1 || m != 0 {
			t.Errorf("after DeleteExpired: %d and %d entries, want 1 (the live one) and 0", n, m)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Each round: entries past their time for the Owns to remove,
		// then 100 concurrent Owns of new ids and 100 of ids owned
		// before, for one owner.
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		const n = 100
		for round := range 3 {
			for i := range 20 {
				insertPast("many", fmt.Sprint("expired-", round, "-", i))
			}
			var wg sync.WaitGroup
			errs := make(chan error, 2*n)
			for i := range n {
				for _, id := range []string{fmt.Sprintf("r%d-%03d", round, i), fmt.Sprintf("again-%03d", i)} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := st.Own(tctx, "many", id, later); err != nil {
							errs <- fmt.Errorf("Own(%s): %w", id, err)
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			got := owned(t, st, "many")
			if want := (round + 2) * n; len(got) != want {
				t.Fatalf("round %d: Owned has %d ids, want %d", round, len(got), want)
			}
			for i := range n {
				for _, id := range []string{fmt.Sprintf("r%d-%03d", round, i), fmt.Sprintf("again-%03d", i)} {
					if _, ok := slices.BinarySearch(got, id); !ok {
						t.Errorf("round %d: %s missing", round, id)
					}
				}
			}
			if left := entries("many"); left != int64((round+2)*n) {
				t.Errorf("round %d: %d entries, want %d: every entry past its time removed", round, left, (round+2)*n)
			}
		}
	})

	t.Run("ExactOwners", func(t *testing.T) {
		long := strings.Repeat("é", 128) // 256 bytes
		owners := []string{
			"user", "User", "USER", "user ", "user  ", " user", "user\t", "üser", "u\u0308ser", "user\x00",
			long, long[:254] + "ee", strings.Repeat("x", 256), strings.Repeat("x", 255) + "X",
		}
		for i, o := range owners {
			own(t, st, o, fmt.Sprint("exact-", i), later)
		}
		for i, o := range owners {
			if got, want := owned(t, st, o), []string{fmt.Sprint("exact-", i)}; !slices.Equal(got, want) {
				t.Errorf("Owned(%q) = %q, want %q", o, got, want)
			}
		}
		if err := st.Disown(ctx, "user ", "exact-0", "exact-3"); err != nil {
			t.Fatal(err)
		}
		if got := owned(t, st, "user"); !slices.Equal(got, []string{"exact-0"}) {
			t.Errorf("Disown(%q) touched %q: Owned = %q", "user ", "user", got)
		}
	})
}

// ownerIndexUpgrade: New on a table made by an earlier release, without an
// owner index table, creates it; a SkipCreate store without one cleans up
// and clears without an error.
func (r *adminRun[C, Cfg, S]) ownerIndexUpgrade(t *testing.T) {
	ctx := context.Background()
	a := r.connect(t)
	table := Table(t, a.db)
	for _, q := range r.a.Dialect.SQL.Create {
		a.exec(t, strings.NewReplacer("{table}", table, "{index}", table+"_expires_at_idx").Replace(q))
	}
	skip := Open(t, r.h.New, a.c, Cfg{Table: table, SkipCreate: true, CleanupInterval: -1})
	if err := skip.Set(ctx, "id", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := skip.DeleteExpired(ctx); err != nil {
		t.Errorf("DeleteExpired without an owner index table: %v", err)
	}
	if err := skip.Own(ctx, "ada", "id", time.Now().Add(time.Hour)); err == nil {
		t.Error("Own without an owner index table succeeded")
	}
	st := a.open(t, table, false)
	own(t, st, "ada", "id", time.Now().Add(time.Hour))
	if got := owned(t, st, "ada"); !slices.Equal(got, []string{"id"}) {
		t.Errorf("Owned = %q, want [id]", got)
	}
	if got, err := st.Get(ctx, "id"); err != nil || string(got) != "v" {
		t.Errorf("Get of the earlier row = %q, %v", got, err)
	}
	a.exec(t, `DROP TABLE `+r.owners(table))
	if err := skip.Clear(ctx); err != nil {
		t.Errorf("Clear without an owner index table: %v", err)
	}
	if c, err := skip.Count(ctx); err != nil || c != 0 {
		t.Errorf("Count after Clear = %d, %v", c, err)
	}
}

// ownerIndexLongName: the owner index table of a table with the longest
// name the store takes (or a long one where it takes any).
func (r *adminRun[C, Cfg, S]) ownerIndexLongName(t *testing.T) {
	a := r.connect(t)
	maxName := r.h.MaxName
	if maxName == 0 {
		maxName = 100
	}
	table := Table(t, a.db)
	table += "_" + strings.Repeat("x", maxName-len(table)-1)
	t.Cleanup(func() { Drop(t, a.db, table, r.h.MaxName) })
	st := a.open(t, table, false)
	if owners := r.owners(table); r.h.MaxName > 0 && len(owners) > r.h.MaxName {
		t.Errorf("owner index table %s is %d bytes long", owners, len(owners))
	}
	own(t, st, "ada", "id", time.Now().Add(time.Hour))
	if got := owned(t, st, "ada"); !slices.Equal(got, []string{"id"}) {
		t.Errorf("Owned = %q, want [id]", got)
	}
	// The entry is in the table of that name, which Drop drops.
	if n := a.int(t, `SELECT count(*) FROM `+r.owners(table)); n != 1 {
		t.Errorf("%d entries in %s, want 1", n, r.owners(table))
	}
	if err := st.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := owned(t, st, "ada"); len(got) != 0 {
		t.Errorf("Owned after Clear = %q", got)
	}
}
