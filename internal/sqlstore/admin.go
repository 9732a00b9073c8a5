package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"
)

// The administration capabilities (session.Scanner, session.Counter,
// session.Clearer) and the owner index (session.OwnerIndex) of the stores,
// on the statements and parameters of their dialects. The stores' exported
// methods, which document them, call these.

// Scan calls fn with the id and data of each live row, in id order, until fn
// returns an error, which Scan returns as it is. It reads a page of Batch
// rows at a time (SQL.ScanFirst, then SQL.ScanNext after the last id of the
// page before), and calls fn only after the page's query has ended and its
// rows are closed, so that fn may call the store and nothing is held across
// the scan.
func (db *DB) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	type row struct {
		id   string
		data []byte
	}
	var page []row
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return db.wrap(ctx, "scan", err)
		}
		q, args := db.SQL.ScanFirst, db.nowArgs()
		if !first {
			q, args = db.SQL.ScanNext, append([]any{page[len(page)-1].id}, args...)
		}
		rows, err := db.client.Query(ctx, q, args...)
		if err != nil {
			return db.wrap(ctx, "scan", err)
		}
		page = page[:0]
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.data); err != nil {
				_ = rows.Close()
				return db.wrap(ctx, "scan", err)
			}
			page = append(page, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return db.wrap(ctx, "scan", err)
		}
		for _, r := range page {
			if err := fn(r.id, r.data); err != nil {
				return err
			}
		}
		if len(page) < Batch {
			return nil
		}
	}
}

// Count returns the number of live rows (SQL.Count).
func (db *DB) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, db.wrap(ctx, "count", err)
	}
	var n int64
	if err := db.client.QueryRow(ctx, db.SQL.Count, db.nowArgs()...).Scan(&n); err != nil {
		return 0, db.wrap(ctx, "count", err)
	}
	return int(n), nil
}

// Clear deletes every row of the table, then every entry of the owner index
// table; a missing owner index table is not an error.
func (db *DB) Clear(ctx context.Context) error {
	exec := func(op, q string) error {
		if db.d.RetryClear {
			return db.execRetry(ctx, op, q)
		}
		_, err := db.Exec(ctx, op, q)
		return err
	}
	if err := exec("clear", db.SQL.Clear); err != nil {
		return err
	}
	if err := exec("clear owners", db.SQL.ClearOwners); err != nil && !db.noTable(err) {
		return err
	}
	return nil
}

// Own runs SQL.Own, adding id to owner's entries until the time until or
// moving its time, and then the pruning of the owner's entries past their
// time (SQL.Prune, after SQL.Expired where the dialect has it). Each
// statement that writes runs again on a deadlock.
func (db *DB) Own(ctx context.Context, owner, id string, until time.Time) error {
	o, u := db.owner(owner), db.time(until)
	if err := db.retry(ctx, func() error {
		args := []any{o, id, u}
		if db.d.OwnArgs != nil {
			args = db.d.OwnArgs(o, id, u, db.time(time.Now()))
		}
		_, err := db.Exec(ctx, "own", db.SQL.Own, args...)
		return err
	}); err != nil {
		return err
	}
	if db.SQL.Prune == "" {
		return nil
	}
	now := db.time(time.Now())
	if db.SQL.Expired == "" {
		return db.execRetry(ctx, "own", db.SQL.Prune, o, now)
	}
	expired, err := db.ids(ctx, "own", db.SQL.Expired, o, now)
	if err != nil || len(expired) == 0 {
		return err
	}
	return db.deleteIDs(ctx, "own", db.SQL.Prune, []any{o, now}, expired)
}

// Disown deletes ids from owner's entries (SQL.Disown); missing entries are
// not an error.
func (db *DB) Disown(ctx context.Context, owner string, ids ...string) error {
	switch {
	case len(ids) == 0:
		return nil
	case db.d.IDArray:
		return db.execRetry(ctx, "disown", db.SQL.Disown, db.owner(owner), ids)
	}
	return db.deleteIDs(ctx, "disown", db.SQL.Disown, []any{db.owner(owner)}, ids)
}

// Owned returns the ids of owner's entries whose time has not passed, in no
// particular order (SQL.Owned).
func (db *DB) Owned(ctx context.Context, owner string) ([]string, error) {
	return db.ids(ctx, "owned", db.SQL.Owned, db.owner(owner), db.time(time.Now()))
}

// deleteIDs runs q, a DELETE that ends in "id IN ", with args and then the
// ids, a few hundred at a time. Ids longer than the dialect's MaxID are left
// out.
func (db *DB) deleteIDs(ctx context.Context, op, q string, args []any, ids []string) error {
	const chunk = 500
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		all := append([]any(nil), args...)
		for _, id := range ids[:n] {
			if db.d.MaxID == 0 || len(id) <= db.d.MaxID {
				all = append(all, id)
			}
		}
		ids = ids[n:]
		if k := len(all) - len(args); k > 0 {
			if err := db.execRetry(ctx, op, q+"("+strings.Repeat("?, ", k-1)+"?)", all...); err != nil {
				return err
			}
		}
	}
	return nil
}

// ids returns the ids that the query q selects.
func (db *DB) ids(ctx context.Context, op, q string, args ...any) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, db.wrap(ctx, op, err)
	}
	rows, err := db.client.Query(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(ctx, op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, db.wrap(ctx, op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap(ctx, op, err)
	}
	return ids, nil
}

// deleteExpiredOwners deletes the owner index entries whose time has
// passed, in batches. A missing owner index table is skipped.
func (db *DB) deleteExpiredOwners(ctx context.Context) error {
	for {
		var n int64
		err := db.retry(ctx, func() (err error) {
			n, err = db.Exec(ctx, "delete expired owners", db.SQL.DeleteExpiredOwners, db.time(time.Now()))
			return err
		})
		if db.noTable(err) {
			return nil
		}
		if err != nil || n < Batch {
			return err
		}
	}
}

// execRetry runs the statement q with args as retry does.
func (db *DB) execRetry(ctx context.Context, op, q string, args ...any) error {
	return db.retry(ctx, func() error {
		_, err := db.Exec(ctx, op, q, args...)
		return err
	})
}

// retry runs f, again while the dialect's Deadlock says that a deadlock
// aborted it and ctx is not done, up to the dialect's Attempts in all.
func (db *DB) retry(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || db.d.Deadlock == nil || attempt >= db.d.Attempts || ctx.Err() != nil || !db.d.Deadlock(err) {
			return err
		}
	}
}

// noTable reports whether err is the dialect's error for a missing table.
func (db *DB) noTable(err error) bool { return err != nil && db.d.NoTable != nil && db.d.NoTable(err) }

// owner returns owner as the dialect passes it.
func (db *DB) owner(owner string) any {
	if db.d.Owner == nil {
		return owner
	}
	return db.d.Owner(owner)
}

// time returns t as the dialect passes the owner index's times.
func (db *DB) time(t time.Time) any {
	if db.d.Time == nil {
		return t
	}
	return db.d.Time(t)
}
