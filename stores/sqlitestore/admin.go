package sqlitestore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ctxerr"
	"github.com/fibersession/session/internal/sqlstore"
)

// The store's administration and owner index capabilities.
var (
	_ session.Scanner    = (*Store)(nil)
	_ session.Counter    = (*Store)(nil)
	_ session.Clearer    = (*Store)(nil)
	_ session.OwnerIndex = (*Store)(nil)
)

// admin holds the statements of Scan, Count, Clear and the owner index, on
// one store's tables. Every time is the application's, in Unix milliseconds.
type admin struct {
	create        []string // the owner index table and its index on expires_at
	scanFirst     string   // now: the first page of Scan
	scanNext      string   // the last id of the page before, now: a later page
	count         string   // now
	clear         string
	clearOwners   string
	own           string // owner, id, until
	prune         string // owner, now
	disown        string // owner, then the ids
	owned         string // owner, now
	expiredOwners string // now; at most sqlstore.Batch entries
}

// newAdmin returns the statements for table, a name New accepted.
func newAdmin(table string) admin {
	owners := ownersTable(table)
	main, ot := `"`+table+`"`, `"`+owners+`"`
	page := ` ORDER BY id LIMIT ` + strconv.Itoa(sqlstore.Batch)
	return admin{
		create: []string{`CREATE TABLE IF NOT EXISTS ` + ot + ` (
	owner      TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (owner, id)
)`,
			`CREATE INDEX IF NOT EXISTS "` + owners + `_expires_at_idx" ON ` + ot + ` (expires_at)`,
		},
		scanFirst:   `SELECT id, data FROM ` + main + ` WHERE expires_at > ?` + page,
		scanNext:    `SELECT id, data FROM ` + main + ` WHERE id > ? AND expires_at > ?` + page,
		count:       `SELECT count(*) FROM ` + main + ` WHERE expires_at > ?`,
		clear:       `DELETE FROM ` + main,
		clearOwners: `DELETE FROM ` + ot,
		own: `INSERT INTO ` + ot + ` (owner, id, expires_at) VALUES (?, ?, ?)
ON CONFLICT (owner, id) DO UPDATE SET expires_at = excluded.expires_at`,
		prune:  `DELETE FROM ` + ot + ` WHERE owner = ? AND expires_at <= ?`,
		disown: `DELETE FROM ` + ot + ` WHERE owner = ? AND id IN `,
		owned:  `SELECT id FROM ` + ot + ` WHERE owner = ? AND expires_at > ?`,
		expiredOwners: `DELETE FROM ` + ot + ` WHERE rowid IN
			(SELECT rowid FROM ` + ot + ` WHERE expires_at <= ? LIMIT ` + strconv.Itoa(sqlstore.Batch) + `)`,
	}
}

// ownersTable is the name of the owner index table of the table name.
func ownersTable(name string) string { return name + "_owners" }

// Scan calls fn with the id and data of each live row, in id order, until fn
// returns an error, which Scan returns as it is. It reads a page of 1000 rows
// at a time (WHERE id > the page before's last ORDER BY id LIMIT 1000), and
// calls fn only after the page's query has ended, so fn may call the store
// (Delete, say), even on a database limited to one connection, and no read
// transaction is held across the scan. A row written or deleted during the
// scan may or may not be reported.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	type row struct {
		id   string
		data []byte
	}
	var page []row
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return ctxerr.Wrap(ctx, "sqlitestore: scan", err)
		}
		q, args := s.admin.scanFirst, []any{ms(time.Now())}
		if !first {
			q, args = s.admin.scanNext, []any{page[len(page)-1].id, args[0]}
		}
		rows, err := s.sql.QueryContext(ctx, q, args...)
		if err != nil {
			return ctxerr.Wrap(ctx, "sqlitestore: scan", err)
		}
		page = page[:0]
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.data); err != nil {
				rows.Close()
				return ctxerr.Wrap(ctx, "sqlitestore: scan", err)
			}
			page = append(page, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return ctxerr.Wrap(ctx, "sqlitestore: scan", err)
		}
		for _, r := range page {
			if err := fn(r.id, r.data); err != nil {
				return err
			}
		}
		if len(page) < sqlstore.Batch {
			return nil
		}
	}
}

// Count returns the number of live rows. Owner index entries are not
// counted.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, ctxerr.Wrap(ctx, "sqlitestore: count", err)
	}
	var n int64
	if err := s.sql.QueryRowContext(ctx, s.admin.count, ms(time.Now())).Scan(&n); err != nil {
		return 0, ctxerr.Wrap(ctx, "sqlitestore: count", err)
	}
	return int(n), nil
}

// Clear deletes every row of the store's table, then every entry of its
// owner index table, and nothing else. A missing owner index table (a
// SkipCreate deployment that has not created it) holds no entries and is not
// an error.
func (s *Store) Clear(ctx context.Context) error {
	if _, err := s.db.Exec(ctx, "clear", s.admin.clear); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, "clear owners", s.admin.clearOwners); err != nil && !noTable(err) {
		return err
	}
	return nil
}

// Own adds id to owner's sessions until the time until, or moves an existing
// entry's time to until, then deletes the owner's entries whose time has
// passed: two statements, each atomic under SQLite's write lock.
func (s *Store) Own(ctx context.Context, owner, id string, until time.Time) error {
	if _, err := s.db.Exec(ctx, "own", s.admin.own, owner, id, ms(until)); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, "own", s.admin.prune, owner, ms(time.Now()))
	return err
}

// Disown deletes ids from owner's sessions; missing entries are not an
// error.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	const chunk = 500
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, 0, n+1)
		args = append(args, owner)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		q := s.admin.disown + "(" + strings.Repeat("?, ", n-1) + "?)"
		if _, err := s.db.Exec(ctx, "disown", q, args...); err != nil {
			return err
		}
	}
	return nil
}

// Owned returns the ids of owner's sessions whose time has not passed, in no
// particular order.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "sqlitestore: owned", err)
	}
	rows, err := s.sql.QueryContext(ctx, s.admin.owned, owner, ms(time.Now()))
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "sqlitestore: owned", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, ctxerr.Wrap(ctx, "sqlitestore: owned", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "sqlitestore: owned", err)
	}
	return ids, nil
}

// deleteExpiredOwners deletes the owner index entries whose time has passed,
// in batches, and reports how many. A missing owner index table is skipped.
func (s *Store) deleteExpiredOwners(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := s.db.Exec(ctx, "delete expired owners", s.admin.expiredOwners, ms(time.Now()))
		total += n
		if noTable(err) {
			return total, nil
		}
		if err != nil || n < sqlstore.Batch {
			return total, err
		}
	}
}

// noTable reports whether err is SQLite's "no such table" (whose code,
// SQLITE_ERROR, it shares with every other mistake).
func noTable(err error) bool { return err != nil && strings.Contains(err.Error(), "no such table") }
