package mysqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/fibersession/session"
)

// The store's administration and owner index capabilities. Their statements
// are the dialect's (mysqlstore.go), run by internal/sqlstore.
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

// Scan calls fn with the id and data of each live row, in id order, until fn
// returns an error, which Scan returns as it is. It reads a page of 1000 rows
// at a time (WHERE id > the page before's last ORDER BY id LIMIT 1000), and
// calls fn only after the page's query has ended, so fn may call the store
// (Delete, say) and no lock or connection is held across the scan. A row
// written or deleted during the scan may or may not be reported.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	return s.db.Scan(ctx, fn)
}

// Count returns the number of live rows. Owner index entries are not
// counted.
func (s *Store) Count(ctx context.Context) (int, error) {
	return s.db.Count(ctx)
}

// Clear deletes every row of the store's table, then every entry of its
// owner index table, and nothing else. A missing owner index table (a
// SkipCreate deployment that has not created it) holds no entries and is not
// an error.
func (s *Store) Clear(ctx context.Context) error {
	return s.db.Clear(ctx)
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
	return s.db.Own(ctx, owner, id, until)
}

// Disown deletes ids from owner's sessions; missing entries are not an
// error.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	if len(owner) > MaxOwnerLen {
		return nil // never owned anything
	}
	return s.db.Disown(ctx, owner, ids...)
}

// Owned returns the ids of owner's sessions whose time (by the
// application's clock) has not passed, in no particular order.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if len(owner) > MaxOwnerLen {
		return nil, nil
	}
	return s.db.Owned(ctx, owner)
}
