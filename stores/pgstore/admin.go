package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
// one store's tables. Their times are the application's, passed as
// timestamptz parameters, except Scan's and Count's, which see the rows that
// the store's reads see (expires_at > now()).
type admin struct {
	create        []string // the owner index table and its index on expires_at
	scanFirst     string   // the first page of Scan
	scanNext      string   // a later page: $1 is the last id of the page before
	count         string
	clear         string
	clearOwners   string
	own           string // $1 owner, $2 id, $3 until, $4 now
	disown        string // $1 owner, $2 the ids (text[])
	owned         string // $1 owner, $2 now
	expiredOwners string // $1 now; at most sqlstore.Batch entries
}

// newAdmin returns the statements for table, a name New accepted.
func newAdmin(table string) admin {
	parts := strings.Split(table, ".")
	main := quote(parts)
	name := parts[len(parts)-1]
	owners := ownersTable(name)
	parts[len(parts)-1] = owners
	ot := quote(parts)
	page := ` ORDER BY id LIMIT ` + strconv.Itoa(sqlstore.Batch)
	return admin{
		create: []string{`CREATE TABLE IF NOT EXISTS ` + ot + ` (
	owner      bytea       NOT NULL,
	id         text        NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (owner, id)
)`,
			`CREATE INDEX IF NOT EXISTS "` + suffixed(owners, "_expires_at_idx") + `" ON ` + ot + ` (expires_at)`,
		},
		scanFirst:   `SELECT id, data FROM ` + main + ` WHERE expires_at > now()` + page,
		scanNext:    `SELECT id, data FROM ` + main + ` WHERE id > $1 AND expires_at > now()` + page,
		count:       `SELECT count(*) FROM ` + main + ` WHERE expires_at > now()`,
		clear:       `DELETE FROM ` + main,
		clearOwners: `DELETE FROM ` + ot,
		// One statement: the upsert, and the pruning of the owner's
		// other entries past their time. The DELETE must not touch the
		// row the INSERT writes (a statement that changes a row twice
		// has an unpredictable outcome), hence id <> $2.
		own: `WITH up AS (INSERT INTO ` + ot + ` (owner, id, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (owner, id) DO UPDATE SET expires_at = EXCLUDED.expires_at)
		DELETE FROM ` + ot + ` WHERE owner = $1 AND id <> $2 AND expires_at <= $4`,
		disown: `DELETE FROM ` + ot + ` WHERE owner = $1 AND id = ANY($2)`,
		owned:  `SELECT id FROM ` + ot + ` WHERE owner = $1 AND expires_at > $2`,
		// The outer check is re-evaluated on an entry that a concurrent
		// Own moved forward, which the subquery's snapshot is not.
		expiredOwners: `DELETE FROM ` + ot + ` WHERE expires_at <= $1 AND (owner, id) IN
			(SELECT owner, id FROM ` + ot + ` WHERE expires_at <= $1 LIMIT ` + strconv.Itoa(sqlstore.Batch) + `)`,
	}
}

func quote(parts []string) string { return `"` + strings.Join(parts, `"."`) + `"` }

// ownersTable is the name of the owner index table of the table name:
// name_owners, shortened with a hash of name where that would pass
// PostgreSQL's 63 bytes.
func ownersTable(name string) string { return suffixed(name, "_owners") }

// suffixed returns name with suffix appended, shortened with a hash of name
// where that would pass 63 bytes (as the index on the table's expires_at is
// named): PostgreSQL would otherwise truncate it, and could give two tables
// the same name.
func suffixed(name, suffix string) string {
	const max = 63
	if len(name)+len(suffix) <= max {
		return name + suffix
	}
	sum := sha256.Sum256([]byte(name))
	return name[:max-len(suffix)-9] + "_" + hex.EncodeToString(sum[:4]) + suffix
}

// Scan calls fn with the id and data of each live row, in id order, until fn
// returns an error, which Scan returns as it is. It reads a page of 1000 rows
// at a time (WHERE id > the page before's last ORDER BY id LIMIT 1000), and
// calls fn only after the page's query has ended, so fn may call the store
// (Delete, say) and no lock or cursor is held across the scan. A row written
// or deleted during the scan may or may not be reported.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	type row struct {
		id   string
		data []byte
	}
	var page []row
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return ctxerr.Wrap(ctx, "pgstore: scan", err)
		}
		q, args := s.admin.scanFirst, []any(nil)
		if !first {
			q, args = s.admin.scanNext, []any{page[len(page)-1].id}
		}
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return ctxerr.Wrap(ctx, "pgstore: scan", err)
		}
		page = page[:0]
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.data); err != nil {
				rows.Close()
				return ctxerr.Wrap(ctx, "pgstore: scan", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return ctxerr.Wrap(ctx, "pgstore: scan", err)
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
		return 0, ctxerr.Wrap(ctx, "pgstore: count", err)
	}
	var n int64
	if err := s.pool.QueryRow(ctx, s.admin.count).Scan(&n); err != nil {
		return 0, ctxerr.Wrap(ctx, "pgstore: count", err)
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
	if _, err := s.db.Exec(ctx, "clear owners", s.admin.clearOwners); err != nil && !undefinedTable(err) {
		return err
	}
	return nil
}

// Own adds id to owner's sessions until the time until, or moves an existing
// entry's time to until, and deletes the owner's other entries whose time
// has passed, in one statement. Times are the application's clock.
func (s *Store) Own(ctx context.Context, owner, id string, until time.Time) error {
	return retry(ctx, func() error {
		_, err := s.db.Exec(ctx, "own", s.admin.own, []byte(owner), id, until, time.Now())
		return err
	})
}

// Disown deletes ids from owner's sessions; missing entries are not an
// error.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return retry(ctx, func() error {
		_, err := s.db.Exec(ctx, "disown", s.admin.disown, []byte(owner), ids)
		return err
	})
}

// Owned returns the ids of owner's sessions whose time (by the
// application's clock) has not passed, in no particular order.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "pgstore: owned", err)
	}
	rows, err := s.pool.Query(ctx, s.admin.owned, []byte(owner), time.Now())
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "pgstore: owned", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, ctxerr.Wrap(ctx, "pgstore: owned", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "pgstore: owned", err)
	}
	return ids, nil
}

// deleteExpiredOwners deletes the owner index entries whose time has passed,
// in batches, and reports how many. A missing owner index table is skipped.
func (s *Store) deleteExpiredOwners(ctx context.Context) (int64, error) {
	var total int64
	for {
		var n int64
		err := retry(ctx, func() (err error) {
			n, err = s.db.Exec(ctx, "delete expired owners", s.admin.expiredOwners, time.Now())
			return err
		})
		total += n
		if undefinedTable(err) {
			return total, nil
		}
		if err != nil || n < sqlstore.Batch {
			return total, err
		}
	}
}

// retry runs op again, a few times, while it fails with a deadlock that
// PostgreSQL broke by aborting it: the statements of the owner index lock a
// few rows each, and concurrent ones may lock them in different orders.
func retry(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		var pe *pgconn.PgError
		if err == nil || attempt == 5 || ctx.Err() != nil || !errors.As(err, &pe) || pe.Code != "40P01" {
			return err
		}
	}
}

// undefinedTable reports whether err is PostgreSQL's undefined_table.
func undefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}
