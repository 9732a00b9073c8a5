package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// OwnerIndex is implemented by stores that keep an index from an owner (a
// user id, see Session.SetOwner) to the ids of the owner's sessions, so that
// Manager.DestroyOwner and Manager.Devices find them without a full scan.
//
// The index may hold ids whose records are gone (expired idle, deleted by a
// request that raced a rotation): the Manager checks every record it finds
// there and disowns the dead. An entry's until bounds how long it can stay:
// a store never returns an entry past it and removes such entries of an
// owner at the latest on that owner's next Own, so an owner's entries never
// outnumber the sessions the owner began within the absolute timeout. An
// index lies within the store's own key prefix, table or bucket, apart from
// its records (Scanner and Counter do not report it), and Clearer deletes
// it with them.
type OwnerIndex interface {
	// Own adds id to owner's sessions until the time until (or moves an
	// existing entry's time to until), and removes the owner's entries
	// whose time has passed.
	Own(ctx context.Context, owner, id string, until time.Time) error
	// Disown removes ids from owner's sessions. Missing entries are not an
	// error.
	Disown(ctx context.Context, owner string, ids ...string) error
	// Owned returns the ids of owner's sessions whose time has not passed,
	// in no particular order.
	Owned(ctx context.Context, owner string) ([]string, error)
}

// maxOwner is the longest owner SetOwner accepts, in bytes.
const maxOwner = 256

// Device is one of an owner's sessions, as a "your devices" page lists it.
// It holds no id: the page can show it to the owner without handing out a
// credential.
type Device struct {
	// Created is when the session began, or last rotated its id (a sign-in
	// rotates it).
	Created time.Time
	// LastSeen is the session's latest request, to within
	// Config.TouchInterval.
	LastSeen time.Time
	// Expires is when the session ends unless a request extends it.
	Expires time.Time
	// UserAgent and IP are those of the session's latest write by a request
	// (its sign-in, at least), kept only with Config.Devices; "" otherwise.
	UserAgent, IP string
	// Current is true for the session that Session.Devices was called on.
	Current bool
}

// SetOwner ties the session to owner (a user id, say), or unties it when
// owner is "". The owner is kept in the record, across RegenerateID, and on
// a store that is an OwnerIndex the session is indexed under it at save, so
// that Manager.DestroyOwner can end every session of the owner and
// Manager.Devices list them. Call it at sign-in, next to RegenerateID. An
// owner longer than 256 bytes is refused: it is logged as an error and
// nothing changes.
func (s *Session[V, F]) SetOwner(owner string) {
	if len(owner) > maxOwner {
		s.m.log.Error("session: SetOwner with an owner longer than 256 bytes refused; the owner is unchanged", "length", len(owner))
		return
	}
	if owner == s.rec.owner {
		return
	}
	s.rec.owner, s.rec.device = owner, ""
	s.ownerSet = true
	s.dirty = true
}

// Owner returns the session's owner (SetOwner), or "".
func (s *Session[V, F]) Owner() string { return s.rec.owner }

// index returns the store's owner index, or an error wrapping ErrUnsupported.
func (m *Manager[V, F]) index() (OwnerIndex, error) {
	if idx, ok := m.cfg.Store.(OwnerIndex); ok {
		return idx, nil
	}
	return nil, fmt.Errorf("%w: the store (%T) keeps no index of owners (no Own, Disown and Owned methods)", ErrUnsupported, m.cfg.Store)
}

// DestroyOwner ends every session of owner, grace copies of rotated ids
// included, and returns how many live sessions it ended: a sign-out
// everywhere, after a password change or a lost device. A request that read
// one of them before and saves after does not bring it back (on a store
// with compare-and-set, which every store with an owner index has), and a
// session that one of them was rotated into meanwhile is ended too. A
// session that begins for owner after DestroyOwner returns, or while it
// runs, is a later sign-in and may live. It fails with ErrUnsupported when
// the store is not an OwnerIndex.
func (m *Manager[V, F]) DestroyOwner(ctx context.Context, owner string) (int, error) {
	n, err := m.destroyOwner(ctx, owner)
	if err == nil {
		m.emit(Event{Kind: EventOwnerSignedOut, Owner: owner, Count: n})
	}
	return n, err
}

// DestroyOthers ends every session of the session's owner but this one, as
// DestroyOwner does: "sign out of all other devices". It returns how many it
// ended; a session without an owner has no others. This session is kept
// under its id and, when this request rotated it and has not saved yet,
// under the id it moves from.
func (s *Session[V, F]) DestroyOthers(ctx context.Context) (int, error) {
	if s.rec.owner == "" {
		return 0, nil
	}
	n, err := s.m.destroyOwner(ctx, s.rec.owner, s.id, s.rot.oldID)
	if err == nil {
		s.m.emit(Event{Kind: EventOwnerSignedOut, Owner: s.rec.owner, Count: n})
	}
	return n, err
}

// destroyOwner deletes the records of owner's sessions but those under the
// ids keep, in rounds:
// a rotation indexes its new id before it writes it and before it replaces
// the old record, so once a round has seen a record, anything it was rotated
// into is indexed by the next round. It stops after a round that deleted
// nothing.
func (m *Manager[V, F]) destroyOwner(ctx context.Context, owner string, keep ...string) (int, error) {
	idx, err := m.index()
	if err != nil || owner == "" {
		return 0, err
	}
	total := 0
	for round := 0; round < 8; round++ {
		deleted := 0
		err := m.owned(ctx, idx, owner, func(id string, rec *record[struct{}, struct{}]) error {
			if slices.Contains(keep, id) {
				return nil
			}
			c, cancel := m.context(ctx)
			defer cancel()
			if err := m.be.Delete(c, id); err != nil {
				return storeErr("delete", err)
			}
			if !rec.moved() {
				total++
			}
			deleted++
			return errGone // disowned with the dead
		})
		if err != nil || deleted == 0 {
			return total, err
		}
	}
	return total, nil
}

// errGone tells owned that fn deleted the record: its entry goes.
var errGone = errors.New("gone")

// owned calls fn with each record of owner's index that owner still owns,
// and disowns the entries of records that are gone, owned by someone else or
// unreadable, or that fn deleted (returning errGone).
func (m *Manager[V, F]) owned(ctx context.Context, idx OwnerIndex, owner string, fn func(id string, rec *record[struct{}, struct{}]) error) error {
	c, cancel := m.context(ctx)
	ids, err := idx.Owned(c, owner)
	cancel()
	if err != nil {
		return storeErr("owned", err)
	}
	var dead []string
	var rec record[struct{}, struct{}]
	now := ms(m.now())
	for _, id := range ids {
		c, cancel := m.context(ctx)
		data, err := m.be.Get(c, id)
		cancel()
		switch {
		case errors.Is(err, ErrNotFound):
			dead = append(dead, id)
			continue
		case err != nil:
			return storeErr("get", err)
		}
		if decodeRecord(data, &rec) != nil || rec.owner != owner || rec.deadline <= now && !rec.moved() {
			dead = append(dead, id)
			continue
		}
		switch err := fn(id, &rec); {
		case err == errGone:
			dead = append(dead, id)
		case err != nil:
			return err
		}
	}
	if len(dead) == 0 {
		return nil
	}
	c, cancel = m.context(ctx)
	defer cancel()
	if err := idx.Disown(c, owner, dead...); err != nil {
		return storeErr("disown", err)
	}
	return nil
}

// Devices lists the live sessions of owner, latest first. It fails with
// ErrUnsupported when the store is not an OwnerIndex.
func (m *Manager[V, F]) Devices(ctx context.Context, owner string) ([]Device, error) {
	return m.devices(ctx, owner, "")
}

// Devices lists the live sessions of the session's owner, latest first,
// marking this one Current; a session without an owner has none.
func (s *Session[V, F]) Devices(ctx context.Context) ([]Device, error) {
	if s.rec.owner == "" {
		return nil, nil
	}
	cur := ""
	if s.stored {
		cur = s.id
	}
	return s.m.devices(ctx, s.rec.owner, cur)
}

func (m *Manager[V, F]) devices(ctx context.Context, owner, current string) ([]Device, error) {
	idx, err := m.index()
	if err != nil || owner == "" {
		return nil, err
	}
	var ds []Device
	err = m.owned(ctx, idx, owner, func(id string, rec *record[struct{}, struct{}]) error {
		if rec.moved() { // a grace copy: its session lives on under a new id
			return nil
		}
		in := m.info(rec, id, 0)
		if !in.Expires.After(m.now()) {
			return errGone
		}
		agent, ip := rec.agentIP()
		ds = append(ds, Device{
			Created: in.Created, LastSeen: in.LastSeen, Expires: in.Expires,
			UserAgent: strings.Clone(agent), IP: strings.Clone(ip),
			Current: id == current,
		})
		return nil
	})
	slices.SortFunc(ds, func(a, b Device) int { return b.LastSeen.Compare(a.LastSeen) })
	return ds, err
}

// own indexes the session, about to be written as rec, under its owner: when
// it gets a new id (created or rotated) or a new owner. It runs before the
// write, so that no record of an owner's is ever missing from the index.
func (s *Session[V, F]) own(ctx context.Context, rec *record[V, F]) error {
	if rec.owner == "" || s.be.bound || s.stored && s.rot.oldID == "" && !s.ownerSet {
		return nil
	}
	idx, ok := s.m.cfg.Store.(OwnerIndex)
	if !ok {
		return nil
	}
	if err := idx.Own(ctx, rec.owner, s.id, time.UnixMilli(rec.deadline)); err != nil {
		return storeErr("own", err)
	}
	return nil
}

// disown removes ids, whose records this request deleted, from owner's index.
func (s *Session[V, F]) disown(ctx context.Context, owner string, ids ...string) error {
	idx, ok := s.m.cfg.Store.(OwnerIndex)
	if owner == "" || !ok || s.be.bound || len(ids) == 0 {
		return nil
	}
	if err := idx.Disown(ctx, owner, ids...); err != nil {
		return storeErr("disown", err)
	}
	return nil
}

// device records the request's user agent and IP address in rec, an owned
// session's record about to be written, with Config.Devices.
func (s *Session[V, F]) device(rec *record[V, F]) {
	if rec.owner == "" || !s.m.cfg.Devices || s.req == nil {
		return
	}
	ua := s.req.UserAgent()
	if len(ua) > maxOwner {
		ua = ua[:maxOwner]
	}
	ip := s.req.RemoteIP().String()
	if agent, had := rec.agentIP(); string(ua) != agent || ip != had {
		rec.device = device(string(ua), ip)
	}
}
