// Package sqlstore is the code the SQL session stores of this repository
// (stores/pgstore, stores/mysqlstore and stores/sqlitestore) share: their
// Config, the checking and quoting of their table name, the running of their
// statements (errors wrapped one way, no row as session.ErrNotFound), the
// batched deletion of expired rows and its background loop, and the
// administration capabilities and owner index (admin.go). The internal rule
// allows every package under github.com/fibersession/session, in any of its
// modules.
//
// A store describes its database with a Dialect (its statements, quoting and
// limits) and reaches it through a Client (the calls of its database client
// the stores make). What differs between the stores stays in their own
// methods: which statement each runs, the order of its arguments and the
// units of time; the administration and owner index code takes the
// differences from the Dialect instead (its parameters, retries and errors).
package sqlstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ctxerr"
	"github.com/fibersession/session/internal/sweep"
	"github.com/fibersession/session/internal/ttl"
)

// Config is the Config of every SQL store: each declares its own, with these
// fields and their documentation, and converts it to this type.
type Config struct {
	Table           string        // default DefaultTable
	SkipCreate      bool          // run no CREATE statement
	CleanupInterval time.Duration // default DefaultCleanupInterval; < 0: none
	Logger          *slog.Logger  // default slog.Default()
}

// Defaults of a zero Config.
const (
	DefaultTable           = "sessions"
	DefaultCleanupInterval = 5 * time.Minute
)

// Batch is how many expired rows one statement of DeleteExpired deletes at
// most, so that it holds its locks briefly.
const Batch = 1000

// Client is what the stores need of a database client. SQL adapts a
// *sql.DB; pgstore adapts a pgx pool.
type Client interface {
	// Exec runs a statement and returns how many rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Get runs a query that takes an id, its one parameter, and selects at
	// most one row of two columns, a record's data and a number, and
	// returns them; no row is the dialect's NoRows error. Its fixed shape
	// keeps the read path free of the allocations that passing a variadic
	// query through an interface would cost.
	Get(ctx context.Context, query, id string) ([]byte, int64, error)
	// QueryRow runs a query that returns at most one row: Count's, and
	// those of tests and benchmarks.
	QueryRow(ctx context.Context, query string, args ...any) Row
	// Query runs a query and returns its rows, which the caller closes:
	// the pages of Scan and the ids of the owner index.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Row is the result of Client.QueryRow.
type Row interface {
	// Scan copies the row's columns into dest; no row is the dialect's
	// NoRows error.
	Scan(dest ...any) error
}

// Rows is the result of Client.Query, as *sql.Rows has it.
type Rows interface {
	// Next prepares the next row for Scan, and reports whether there is
	// one.
	Next() bool
	// Scan copies the current row's columns into dest.
	Scan(dest ...any) error
	// Err is the error that ended the rows, if any.
	Err() error
	// Close releases the rows; it may be called more than once.
	Close() error
}

// SQL returns db as a Client, or nil for a nil db (which New refuses).
func SQL(db *sql.DB) Client {
	if db == nil {
		return nil
	}
	return sqlDB{db}
}

type sqlDB struct{ db *sql.DB }

func (c sqlDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c sqlDB) Get(ctx context.Context, query, id string) (data []byte, n int64, err error) {
	err = c.db.QueryRowContext(ctx, query, id).Scan(&data, &n)
	return data, n, err
}

func (c sqlDB) QueryRow(ctx context.Context, query string, args ...any) Row {
	return c.db.QueryRowContext(ctx, query, args...)
}

func (c sqlDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := c.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// Statements are a dialect's SQL. New replaces {table} in them with the
// quoted table name, {index} with the quoted name of its index on
// expires_at, {owners} with the quoted name of its owner index table
// (OwnersTable, in the table's schema), {owners_index} with the quoted name
// of that table's index on expires_at, and {batch} with Batch.
//
// The statements of the administration capabilities and the owner index
// take the Dialect's NowArgs where they read the application's clock
// (ScanFirst, ScanNext after the id, Count), and otherwise the arguments
// listed with each: an owner as Dialect.Owner makes it, a time as
// Dialect.Time does.
type Statements struct {
	// Create creates the table and its index unless they exist.
	Create []string
	// GetTTL selects the data of the live row under an id and a number from
	// which the store works out its remaining time to live.
	GetTTL string
	// Set inserts the row under an id or replaces it, counting the write in
	// its version.
	Set string
	// Insert is compare-and-set with a nil old value: it inserts the row
	// under an id, replacing an expired one where one statement can.
	Insert string
	// ReplaceExpired replaces the row under an id if it has expired, for a
	// dialect whose Insert fails on any existing row (MySQL).
	ReplaceExpired string
	// Update is compare-and-set with an old value: it replaces the live row
	// under an id if it holds the old value.
	Update string
	// Touch sets the expiry of the live row under an id.
	Touch string
	// Delete deletes the row under an id.
	Delete string
	// DeleteExpired deletes at most {batch} expired rows.
	DeleteExpired string

	// CreateOwners creates the owner index table and its index on
	// expires_at unless they exist; New runs them after Create.
	CreateOwners []string
	// ScanFirst selects the id and data of the first {batch} live rows in
	// id order; ScanNext those after an id, its first argument.
	ScanFirst, ScanNext string
	// Count counts the live rows.
	Count string
	// Clear deletes every row of the table; ClearOwners every entry of the
	// owner index table.
	Clear, ClearOwners string
	// Own inserts an owner index entry or moves its time, with the
	// arguments of Dialect.OwnArgs.
	Own string
	// Prune, after Own, deletes the owner's entries past their time (owner,
	// now); empty where Own does it. With Expired, which selects the ids of
	// those entries (owner, now), it ends in "id IN " and deletes, only when
	// Expired finds some, those ids (owner, now, then the ids) if they are
	// still past their time.
	Prune, Expired string
	// Disown deletes the owner's entries with the given ids: (owner, then
	// the ids) ending in "id IN ", or (owner, ids) with Dialect.IDArray.
	Disown string
	// Owned selects the ids of the owner's entries not past their time
	// (owner, now).
	Owned string
	// DeleteExpiredOwners deletes at most {batch} entries past their time
	// (now).
	DeleteExpiredOwners string
}

// Dialect is what a store tells the shared code about its database.
type Dialect struct {
	Name        string     // the store's package name, which starts its errors and log messages
	Quote       string     // the identifier quote
	MaxName     int        // the longest identifier in bytes; 0 for no limit
	Unqualified bool       // table names take no "schema." part
	ErrTable    error      // what New wraps for a bad table name
	NoRows      error      // the client's error for a query that found no row
	SQL         Statements // the statements, with placeholders for the table's names

	// NowArgs returns the arguments that stand for the current time in
	// SQL.DeleteExpired, ScanFirst, ScanNext and Count, for a dialect whose
	// rows hold the application's times; nil for none.
	NowArgs func() []any

	// Owner makes an owner an argument; nil passes the string.
	Owner func(owner string) any
	// Time makes a time of the owner index an argument; nil passes the
	// time.Time.
	Time func(time.Time) any
	// OwnArgs returns the arguments of SQL.Own from those that Owner and
	// Time made; nil for (owner, id, until).
	OwnArgs func(owner, id, until, now any) []any
	// IDArray: SQL.Disown takes the ids as one argument, a []string.
	IDArray bool
	// MaxID: ids longer than this many bytes, which no entry holds, are
	// left out of the lists of ids; 0 for no limit.
	MaxID int
	// NoTable reports whether an error is the database's for a missing
	// table: Clear and DeleteExpired skip a missing owner index table.
	NoTable func(error) bool
	// Deadlock reports whether an error is a deadlock that aborted the
	// statement alone, which then runs again, up to Attempts times in all:
	// Own, the pruning, Disown and DeleteExpired's statements of the owner
	// index, and Clear's with RetryClear. nil for none.
	Deadlock func(error) bool
	// Attempts is how many times in all a statement that Deadlock matches
	// runs.
	Attempts int
	// RetryClear makes Clear's statements run again on a deadlock too.
	RetryClear bool
}

// DB runs one store's statements on its table through its client, and the
// store's background cleanup. It is safe for concurrent use.
type DB struct {
	// SQL are the dialect's statements on this table.
	SQL Statements

	client Client
	d      *Dialect
	sweep  *sweep.Loop
}

// New makes the DB of a store with dialect d on client c, and returns it
// wrapped by store (the store's own type). It checks cfg and fills in its
// defaults, refusing a nil client and a bad table name (wrapping d.ErrTable)
// before any I/O; unless cfg.SkipCreate is set, it runs the dialect's Create
// statements with ctx, which bounds nothing else; and it starts the
// background cleanup unless cfg.CleanupInterval is negative.
func New[S any](ctx context.Context, c Client, cfg Config, d *Dialect, store func(*DB) *S) (*S, error) {
	if c == nil {
		return nil, errors.New(d.Name + ": nil client")
	}
	r, err := d.names(cmp.Or(cfg.Table, DefaultTable))
	if err != nil {
		return nil, err
	}
	db := &DB{SQL: d.SQL.replace(r), client: c, d: d}
	if !cfg.SkipCreate {
		for _, q := range slices.Concat(db.SQL.Create, db.SQL.CreateOwners) {
			if _, err := db.Exec(ctx, "create table", q); err != nil {
				return nil, err
			}
		}
	}
	db.sweep = sweep.Start(cmp.Or(cfg.CleanupInterval, DefaultCleanupInterval), db.DeleteExpired,
		cmp.Or(cfg.Logger, slog.Default()), d.Name)
	return store(db), nil
}

// names checks the table name and returns the replacer of the placeholders
// of the dialect's statements.
func (d *Dialect) names(table string) (*strings.Replacer, error) {
	parts := strings.Split(table, ".")
	ok := len(parts) == 1 || len(parts) == 2 && !d.Unqualified
	for _, p := range parts {
		ok = ok && ident(p, d.MaxName)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", d.ErrTable, table)
	}
	q := d.Quote
	quote := func(parts []string) string { return q + strings.Join(parts, q+"."+q) + q }
	name := parts[len(parts)-1]
	owners := OwnersTable(name, d.MaxName)
	main := quote(parts)
	parts[len(parts)-1] = owners
	return strings.NewReplacer(
		"{table}", main,
		"{index}", q+indexName(name, d.MaxName)+q,
		"{owners}", quote(parts),
		"{owners_index}", q+indexName(owners, d.MaxName)+q,
		"{batch}", strconv.Itoa(Batch),
	), nil
}

func (s Statements) replace(r *strings.Replacer) Statements {
	for _, qs := range []*[]string{&s.Create, &s.CreateOwners} {
		*qs = slices.Clone(*qs)
		for i := range *qs {
			(*qs)[i] = r.Replace((*qs)[i])
		}
	}
	for _, q := range []*string{
		&s.GetTTL, &s.Set, &s.Insert, &s.ReplaceExpired, &s.Update, &s.Touch, &s.Delete, &s.DeleteExpired,
		&s.ScanFirst, &s.ScanNext, &s.Count, &s.Clear, &s.ClearOwners,
		&s.Own, &s.Prune, &s.Expired, &s.Disown, &s.Owned, &s.DeleteExpiredOwners,
	} {
		*q = r.Replace(*q)
	}
	return s
}

// ident reports whether s is a plain identifier, [A-Za-z_][A-Za-z0-9_]*, of
// at most max bytes (0 for no limit).
func ident(s string, max int) bool {
	for i, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != "" && (max == 0 || len(s) <= max)
}

// indexName returns the name of the index on expires_at of table,
// "<table>_expires_at_idx", shortened as suffixed does.
func indexName(table string, max int) string { return suffixed(table, "_expires_at_idx", max) }

// OwnersTable returns the name of the owner index table of the table name
// (without its schema), "<name>_owners", shortened as suffixed does for a
// dialect whose names take at most max bytes (0 for no limit).
func OwnersTable(name string, max int) string { return suffixed(name, "_owners", max) }

// suffixed returns name with suffix appended, shortened with a hash of name
// when it would be longer than max bytes (0 for no limit; otherwise at least
// 25): a database that truncates longer identifiers could otherwise give two
// tables the same name.
func suffixed(name, suffix string, max int) string {
	if max == 0 || len(name)+len(suffix) <= max {
		return name + suffix
	}
	sum := sha256.Sum256([]byte(name))
	return name[:max-len(suffix)-9] + "_" + hex.EncodeToString(sum[:4]) + suffix
}

// Exec runs the statement q and returns how many rows it affected. A done
// ctx fails it before any I/O. Its error starts with the store's name and op
// ("pgstore: set") and matches ctx's error when ctx cut it short.
func (db *DB) Exec(ctx context.Context, op, q string, args ...any) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, db.wrap(ctx, op, err)
	}
	var n int64
	var err error
	if c, ok := db.client.(sqlDB); ok {
		// A direct call: database/sql copies args, so they stay on the
		// stack, as they would in a store calling it itself.
		n, err = c.Exec(ctx, q, args...)
	} else {
		// Through the interface args would escape anyway: a copy leaves
		// the caller's on the stack for the call above.
		n, err = db.client.Exec(ctx, q, slices.Clone(args)...)
	}
	if err != nil {
		return 0, db.wrap(ctx, op, err)
	}
	return n, nil
}

// Get runs the query q, which selects the data of the row under id and a
// number, and returns them, or session.ErrNotFound when it finds no row. Its
// other errors are like those of Exec.
func (db *DB) Get(ctx context.Context, op, q, id string) ([]byte, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, db.wrap(ctx, op, err)
	}
	data, n, err := db.client.Get(ctx, q, id)
	switch {
	case errors.Is(err, db.d.NoRows):
		return nil, 0, session.ErrNotFound
	case err != nil:
		return nil, 0, db.wrap(ctx, op, err)
	}
	return data, n, nil
}

// DeleteExpired runs SQL.DeleteExpired until it deletes fewer than Batch
// rows, and returns how many rows it deleted in all; then, for a dialect
// with an owner index, it deletes the entries past their time in the same
// way (not counted).
func (db *DB) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := db.Exec(ctx, "delete expired", db.SQL.DeleteExpired, db.nowArgs()...)
		total += n
		if err != nil {
			return total, err
		}
		if n < Batch {
			break
		}
	}
	if db.SQL.DeleteExpiredOwners == "" {
		return total, nil
	}
	return total, db.deleteExpiredOwners(ctx)
}

// nowArgs returns the dialect's NowArgs.
func (db *DB) nowArgs() []any {
	if db.d.NowArgs == nil {
		return nil
	}
	return db.d.NowArgs()
}

// Close stops the background cleanup, interrupting a run in progress, and
// waits for it to exit. The client stays open. Close may be called more than
// once.
func (db *DB) Close() error {
	db.sweep.Stop()
	return nil
}

// Micros is d in whole microseconds, rounded up (ttl.Round): the unit the
// PostgreSQL and MySQL statements take TTLs in.
func Micros(d time.Duration) int64 { return int64(ttl.Round(d, time.Microsecond) / time.Microsecond) }

func (db *DB) wrap(ctx context.Context, op string, err error) error {
	return ctxerr.Wrap(ctx, db.d.Name+": "+op, err)
}
