package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Scanner is implemented by stores that can list their records, for
// administration (Manager.Sessions). A store lists only what lies within its
// own key prefix, table or bucket, never another application's data, and
// streams it: a batch at a time, never every record in memory at once.
type Scanner interface {
	// Scan calls fn with the id and record of each session stored, until
	// fn returns an error, which Scan then returns. data is valid only
	// during the call. A record stored for the whole scan is reported at
	// least once; one written or deleted during the scan may or may not be.
	Scan(ctx context.Context, fn func(id string, data []byte) error) error
}

// Counter is implemented by stores that can count their records within
// their own key prefix, table or bucket. The count may include records that
// expired but are not deleted yet, and owner index entries are not counted.
type Counter interface {
	// Count returns the number of records stored.
	Count(ctx context.Context) (int, error)
}

// Clearer is implemented by stores that can delete every record, and every
// owner index entry, within their own key prefix, table or bucket, leaving
// everything else where they are kept untouched.
type Clearer interface {
	// Clear deletes every record and owner index entry stored.
	Clear(ctx context.Context) error
}

// Info describes one stored session, for administration. It holds no values
// and no flash messages.
type Info struct {
	// ID is the raw session id: a bearer credential. Do not show it to
	// anyone; pass it only to trusted code (Manager.LoadID, DestroyID).
	ID string
	// Created is when the session began (or last rotated its id).
	Created time.Time
	// LastSeen is when the session was last written or extended: the time of
	// its latest request to within Config.TouchInterval.
	LastSeen time.Time
	// Expires is when the session ends unless a request extends it: the
	// earlier of LastSeen plus its idle timeout and its absolute deadline.
	Expires time.Time
	// Owner is the session's owner (Session.SetOwner), or "".
	Owner string
	// Size is the stored record's size in bytes.
	Size int
}

// ErrUnsupported is returned by the administration and owner methods of a
// Manager whose store lacks the capability they need (Scanner, Counter,
// Clearer or OwnerIndex). It is errors.ErrUnsupported.
var ErrUnsupported = errors.ErrUnsupported

// Store returns the store the manager keeps sessions in (Config.Store), for
// calls the Manager does not make itself.
func (m *Manager[V, F]) Store() Store { return m.cfg.Store }

// Sessions calls fn with the description of each live session in the store,
// streaming them a batch at a time, until fn returns an error, which Sessions
// then returns. Records past their deadline, grace copies of rotated ids and
// records this release cannot read are skipped. It fails with ErrUnsupported
// when the store is not a Scanner.
func (m *Manager[V, F]) Sessions(ctx context.Context, fn func(Info) error) error {
	sc, ok := m.cfg.Store.(Scanner)
	if !ok {
		return fmt.Errorf("%w: the store (%T) cannot list its sessions (no Scan method)", ErrUnsupported, m.cfg.Store)
	}
	now := m.now()
	var rec record[struct{}, struct{}]
	return sc.Scan(ctx, func(id string, data []byte) error {
		if decodeRecord(data, &rec) != nil || rec.moved() || rec.deadline <= ms(now) {
			return nil
		}
		info := m.info(&rec, id, len(data))
		if !info.Expires.After(now) {
			return nil
		}
		return fn(info)
	})
}

// info describes rec, stored under id in size bytes. Its strings are copies:
// the record's alias bytes that are valid only during a scan.
func (m *Manager[V, F]) info(rec *record[struct{}, struct{}], id string, size int) Info {
	seen := time.UnixMilli(rec.written)
	exp := min(rec.deadline, ms(seen.Add(rec.idleTimeout(m.cfg.IdleTimeout))))
	return Info{
		ID:       string([]byte(id)),
		Created:  time.UnixMilli(rec.created),
		LastSeen: seen,
		Expires:  time.UnixMilli(exp),
		Owner:    string([]byte(rec.owner)),
		Size:     size,
	}
}

// Count returns the number of records in the store (Counter), which may
// include expired records not deleted yet and the grace copies of rotated
// ids. It fails with ErrUnsupported when the store cannot count.
func (m *Manager[V, F]) Count(ctx context.Context) (int, error) {
	c, ok := m.cfg.Store.(Counter)
	if !ok {
		return 0, fmt.Errorf("%w: the store (%T) cannot count its sessions (no Count method)", ErrUnsupported, m.cfg.Store)
	}
	return c.Count(ctx)
}

// Clear deletes every session in the store, and its owner index, within the
// store's own prefix, table or bucket (Clearer): everyone is signed out. It
// fails with ErrUnsupported when the store cannot.
func (m *Manager[V, F]) Clear(ctx context.Context) error {
	c, ok := m.cfg.Store.(Clearer)
	if !ok {
		return fmt.Errorf("%w: the store (%T) cannot delete all its sessions (no Clear method)", ErrUnsupported, m.cfg.Store)
	}
	return c.Clear(ctx)
}
