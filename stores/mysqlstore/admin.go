package mysqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

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

// MaxOwnerLen is the longest owner the owner index holds, in bytes.
const MaxOwnerLen = 1024

// ErrLongOwner is returned by Own for an owner longer than MaxOwnerLen.
var ErrLongOwner = errors.New("mysqlstore: owner longer than 1024 bytes")

// at is the UTC DATETIME of a parameter in Unix microseconds: the owner
// index keeps the application's times, not the database's, and converts
// them without the session time_zone or the driver's loc.
const at = `TIMESTAMP'1970-01-01 00:00:00' + INTERVAL ? MICROSECOND`

// admin holds the statements of Scan, Count, Clear and the owner index, on
// one store's tables.
type admin struct {
	create        string // the owner index table
	scanFirst     string // the first page of Scan
	scanNext      string // a later page: after the last id of the page before
	count         string
	clear         string
	clearOwners   string
	own           string // owner, id, until, until
	expired       string // owner, now: the ids of owner's entries past their time
	prune         string // owner, now, then the ids: deletes those still past their time
	disown        string // owner, then the ids
	owned         string // owner, now
	expiredOwners string // now; at most sqlstore.Batch entries
}

// newAdmin returns the statements for table, a name New accepted.
func newAdmin(table string) admin {
	parts := strings.Split(table, ".")
	main := quote(parts)
	parts[len(parts)-1] = ownersTable(parts[len(parts)-1])
	ot := quote(parts)
	page := ` ORDER BY id LIMIT ` + strconv.Itoa(sqlstore.Batch)
	return admin{
		create: `CREATE TABLE IF NOT EXISTS ` + ot + ` (
	owner      VARBINARY(1024) NOT NULL,
	id         VARBINARY(64)   NOT NULL,
	expires_at DATETIME(6)     NOT NULL,
	PRIMARY KEY (owner, id),
	INDEX expires_at_idx (expires_at)
) ENGINE=InnoDB`,
		scanFirst:     `SELECT id, data FROM ` + main + ` WHERE expires_at > ` + now + page,
		scanNext:      `SELECT id, data FROM ` + main + ` WHERE id > ? AND expires_at > ` + now + page,
		count:         `SELECT COUNT(*) FROM ` + main + ` WHERE expires_at > ` + now,
		clear:         `DELETE FROM ` + main,
		clearOwners:   `DELETE FROM ` + ot,
		own:           `INSERT INTO ` + ot + ` (owner, id, expires_at) VALUES (?, ?, ` + at + `) ON DUPLICATE KEY UPDATE expires_at = ` + at,
		expired:       `SELECT id FROM ` + ot + ` WHERE owner = ? AND expires_at <= ` + at,
		prune:         `DELETE FROM ` + ot + ` WHERE owner = ? AND expires_at <= ` + at + ` AND id IN `,
		disown:        `DELETE FROM ` + ot + ` WHERE owner = ? AND id IN `,
		owned:         `SELECT id FROM ` + ot + ` WHERE owner = ? AND expires_at > ` + at,
		expiredOwners: `DELETE FROM ` + ot + ` WHERE expires_at <= ` + at + ` LIMIT ` + strconv.Itoa(sqlstore.Batch),
	}
}

func quote(parts []string) string { return "`" + strings.Join(parts, "`.`") + "`" }

// ownersTable is the name of the owner index table of the table name:
// name_owners, shortened with a hash of name where that would pass MySQL's
// 64 bytes.
func ownersTable(name string) string {
	const max, suffix = 64, "_owners"
	if len(name)+len(suffix) <= max {
		return name + suffix
	}
	sum := sha256.Sum256([]byte(name))
	return name[:max-len(suffix)-9] + "_" + hex.EncodeToString(sum[:4]) + suffix
}

// micros is t in Unix microseconds, the parameter of at.
func micros(t time.Time) int64 { return t.UnixMicro() }

// Scan calls fn with the id and data of each live row, in id order, until fn
// returns an error, which Scan returns as it is. It reads a page of 1000 rows
// at a time (WHERE id > the page before's last ORDER BY id LIMIT 1000), and
// calls fn only after the page's query has ended, so fn may call the store
// (Delete, say) and no lock or connection is held across the scan. A row
// written or deleted during the scan may or may not be reported.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	type row struct {
		id   string
		data []byte
	}
	var page []row
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return ctxerr.Wrap(ctx, "mysqlstore: scan", err)
		}
		q, args := s.admin.scanFirst, []any(nil)
		if !first {
			q, args = s.admin.scanNext, []any{page[len(page)-1].id}
		}
		rows, err := s.sql.QueryContext(ctx, q, args...)
		if err != nil {
			return ctxerr.Wrap(ctx, "mysqlstore: scan", err)
		}
		page = page[:0]
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.data); err != nil {
				rows.Close()
				return ctxerr.Wrap(ctx, "mysqlstore: scan", err)
			}
			page = append(page, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return ctxerr.Wrap(ctx, "mysqlstore: scan", err)
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
		return 0, ctxerr.Wrap(ctx, "mysqlstore: count", err)
	}
	var n int64
	if err := s.sql.QueryRowContext(ctx, s.admin.count).Scan(&n); err != nil {
		return 0, ctxerr.Wrap(ctx, "mysqlstore: count", err)
	}
	return int(n), nil
}

// Clear deletes every row of the store's table, then every entry of its
// owner index table, and nothing else. A missing owner index table (a
// SkipCreate deployment that has not created it) holds no entries and is not
// an error.
func (s *Store) Clear(ctx context.Context) error {
	if err := retry(ctx, func() error {
		_, err := s.db.Exec(ctx, "clear", s.admin.clear)
		return err
	}); err != nil {
		return err
	}
	err := retry(ctx, func() error {
		_, err := s.db.Exec(ctx, "clear owners", s.admin.clearOwners)
		return err
	})
	if err != nil && !noTable(err) {
		return err
	}
	return nil
}

// Own adds id to owner's sessions until the time until, or moves an existing
// entry's time to until, then deletes the owner's entries whose time has
// passed. Times are the application's clock. An owner longer than
// MaxOwnerLen is refused (ErrLongOwner), and so is an id longer than
// MaxIDLen (ErrLongID), never truncated.
//
// Each statement runs on its own, and one that InnoDB aborts to break a
// deadlock (error 1213) is run again. The pruning first reads the ids past
// their time, without locking, and then deletes exactly those rows, and only
// when there are some, rather than lock the owner's range of rows and its
// gaps on every call (see the package documentation).
func (s *Store) Own(ctx context.Context, owner, id string, until time.Time) error {
	switch {
	case len(owner) > MaxOwnerLen:
		return ErrLongOwner
	case len(id) > MaxIDLen:
		return ErrLongID
	}
	u := micros(until)
	err := retry(ctx, func() error {
		_, err := s.db.Exec(ctx, "own", s.admin.own, owner, id, u, u)
		return err
	})
	if err != nil {
		return err
	}
	// The application's now (the package's now is the database's).
	appNow := micros(time.Now())
	expired, err := s.ids(ctx, "own", s.admin.expired, owner, appNow)
	if err != nil || len(expired) == 0 {
		return err
	}
	return s.deleteIDs(ctx, "own", s.admin.prune, []any{owner, appNow}, expired)
}

// Disown deletes ids from owner's sessions; missing entries are not an
// error.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	if len(owner) > MaxOwnerLen {
		return nil // never owned anything
	}
	return s.deleteIDs(ctx, "disown", s.admin.disown, []any{owner}, ids)
}

// deleteIDs runs q, a DELETE that ends in "id IN ", with args and then the
// ids, a few hundred at a time. Ids longer than MaxIDLen, which no row holds,
// are left out.
func (s *Store) deleteIDs(ctx context.Context, op, q string, args []any, ids []string) error {
	const chunk = 500
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		all := append([]any(nil), args...)
		for _, id := range ids[:n] {
			if len(id) <= MaxIDLen {
				all = append(all, id)
			}
		}
		ids = ids[n:]
		if k := len(all) - len(args); k > 0 {
			stmt := q + "(" + strings.Repeat("?, ", k-1) + "?)"
			if err := retry(ctx, func() error {
				_, err := s.db.Exec(ctx, op, stmt, all...)
				return err
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Owned returns the ids of owner's sessions whose time (by the
// application's clock) has not passed, in no particular order.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if len(owner) > MaxOwnerLen {
		return nil, nil
	}
	return s.ids(ctx, "owned", s.admin.owned, owner, micros(time.Now()))
}

// ids returns the ids that q selects.
func (s *Store) ids(ctx context.Context, op, q string, args ...any) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "mysqlstore: "+op, err)
	}
	rows, err := s.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "mysqlstore: "+op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, ctxerr.Wrap(ctx, "mysqlstore: "+op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "mysqlstore: "+op, err)
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
			n, err = s.db.Exec(ctx, "delete expired owners", s.admin.expiredOwners, micros(time.Now()))
			return err
		})
		total += n
		if noTable(err) {
			return total, nil
		}
		if err != nil || n < sqlstore.Batch {
			return total, err
		}
	}
}

// retry runs op again, a few times, while InnoDB aborts it to break a
// deadlock (ER_LOCK_DEADLOCK, 1213), which rolls back only op's own
// statement: the store runs no multi-statement transactions.
func retry(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || attempt == 10 || ctx.Err() != nil || !isError(err, 1213) {
			return err
		}
	}
}

// noTable reports whether err is ER_NO_SUCH_TABLE.
func noTable(err error) bool { return isError(err, 1146) }

func isError(err error, number uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == number
}
