package session

import (
	"context"
	"fmt"
	"time"
)

// maxTries bounds the compare-and-set attempts of one write. Every failed
// attempt means another process wrote the session meanwhile (saves within
// the process take turns, see commit.go), so a save fails with ErrConflict
// only when other processes wrote the same session that many times while it
// retried, waiting a little longer each time.
const maxTries = 32

// Save writes the session now if anything changed, extends an idle expiry
// that is due, and sets the cookie. The middleware calls it after the
// handler; call it yourself only to see an error in the handler. A session
// that is new and empty is not stored and gets no cookie. The error is a
// *StoreError, or wraps ErrEncode when a value does not encode, or
// ErrTooLarge when the record would outgrow Config.MaxRecordSize.
//
// When another request destroyed the session, or moved it to a new id,
// after this one read it, Save writes nothing and returns nil: the session
// is not brought back, and this request's changes are dropped (logged at
// debug level); the session then reads as new.
//
// After a Save that failed, the failed write may yet land, and a second
// one could apply the changes twice: later Saves return the same error
// without writing, until Reload, and the middleware answers the request with
// it (see Config.ErrorHandler).
func (s *Session[V, F]) Save() error {
	if s.failed != nil {
		return s.failed
	}
	if err := s.save(); err != nil {
		s.failed = err
		return err
	}
	return nil
}

func (s *Session[V, F]) save() error {
	if s.detached() && s.needsCookie() {
		what := "start a new session"
		if s.rot.oldID != "" {
			what = "rotate the id (RegenerateID)"
		}
		return fmt.Errorf("%w: cannot %s", ErrDetached, what)
	}
	wrote := s.doomed != nil
	if wrote {
		if err := s.delete(); err != nil {
			return err
		}
	}
	switch {
	case s.rot.readOnly: // a grace copy is never written, extended or moved
	case s.dirty || s.flashChanged() || s.exp.touch && !s.canTouch():
		if !s.loaded && !s.stored && s.empty() {
			break
		}
		if err := s.write(s.m.now()); err != nil {
			return err
		}
		wrote = true
	case s.exp.touch:
		if err := s.extend(s.m.now()); err != nil {
			return err
		}
		wrote = true
	}
	if s.detached() {
		return nil
	}
	if wrote && s.be.bound {
		vary(&s.req.Response.Header)
	}
	s.sendCookie()
	return nil
}

// delete deletes the ids that Destroy doomed, and takes them out of their
// owner's index.
func (s *Session[V, F]) delete() error {
	ctx, cancel := s.context()
	defer cancel()
	d := s.doomed
	for i, id := range d.ids {
		if err := s.be.Delete(ctx, id); err != nil {
			d.ids = d.ids[i:] // a retry deletes (and disowns) the rest
			return storeErr("delete", err)
		}
	}
	if err := s.disown(ctx, d.owner, d.ids...); err != nil {
		return err
	}
	s.doomed = nil
	if s.destroyed {
		s.m.emit(Event{Kind: EventDestroyed})
	}
	return nil
}

// empty reports whether there is nothing worth storing.
func (s *Session[V, F]) empty() bool {
	return len(s.rec.vals) == 0 && len(s.pending()) == 0 && s.rec.idle == 0
}

// canTouch reports whether a due idle extension can be a TTL-only Touch. A
// store with compare-and-set extends by rewriting the record conditionally
// instead, so that a request that read the session before another one moved
// it to a new id cannot extend the id it moved away from.
func (s *Session[V, F]) canTouch() bool {
	return s.be.touch != nil && s.be.cas == nil && s.exp.ttl > 0 && s.rot.oldID == ""
}

// write stores the session's record: under a new id when it has none in the
// store or was rotated, else in place. With compare-and-set, no write
// overwrites another request's changes, brings back a destroyed record or
// writes an id that was rotated away (commit.go).
func (s *Session[V, F]) write(now time.Time) error {
	if s.id == "" {
		s.id = newID()
	}
	if s.rec.created == 0 {
		s.rec.created = ms(now)
		s.rec.deadline = ms(now.Add(s.m.cfg.AbsoluteTimeout))
	}
	rec := s.next(now)
	data, ttl, err := s.encode(&rec, now)
	if err != nil {
		return err
	}
	ctx, cancel := s.context()
	defer cancel()
	if err := s.own(ctx, &rec); err != nil {
		return err
	}
	event, deleted := EventCreated, s.DeleteID()
	if s.rot.oldID != "" {
		event = EventRotated
	} else if s.stored {
		event = 0
	}
	switch {
	case s.be.cas == nil:
		if err = s.be.Set(ctx, s.id, data, ttl); err != nil {
			return storeErr("set", err)
		}
		if err = s.retire(ctx); err == nil {
			s.wrote(rec, data, ttl)
		}
	case s.rot.oldID != "":
		err = s.rotate(ctx, rec, data, ttl, now)
	case !s.stored:
		if err = s.create(ctx, &rec, data, ttl); err == nil {
			s.wrote(rec, data, ttl)
		}
	default:
		err = s.m.commit(ctx, s, written[V, F]{rec: rec, data: data, ttl: ttl}, now)
	}
	if err != nil || !s.stored { // failed, or dropped: another request destroyed or moved it
		return err
	}
	if event != 0 {
		s.m.emit(Event{Kind: event})
	}
	if deleted == "" || rec.owner == "" { // (no []string for disown's ids)
		return nil
	}
	return s.disown(ctx, rec.owner, deleted)
}

// next returns the record this request's save writes when nothing else
// wrote the session since it was read: the session, its pending flash, and
// a new write time and version.
func (s *Session[V, F]) next(now time.Time) record[V, F] {
	rec := s.rec
	rec.flash = s.pending()
	stamp(&rec, s.rec.version, now)
	s.device(&rec)
	return rec
}

// stamp marks rec as the write after version, at now.
func stamp[V, F any](rec *record[V, F], version uint64, now time.Time) {
	rec.flags = 0
	rec.written = ms(now)
	rec.version = version + 1
}

// encode returns rec encoded and the time to live to store it with.
func (s *Session[V, F]) encode(rec *record[V, F], now time.Time) ([]byte, time.Duration, error) {
	data, err := encodeRecord(s.m.cfg.Codec, rec)
	if err != nil {
		return nil, 0, err
	}
	if len(data) > s.m.cfg.MaxRecordSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), s.m.cfg.MaxRecordSize)
	}
	return data, max(rec.ttl(now, s.m.cfg.IdleTimeout), time.Second), nil
}

// create stores rec, encoded as data, which no id holds yet: under s.id if it
// is free, else under another new id (indexed under its owner first).
func (s *Session[V, F]) create(ctx context.Context, rec *record[V, F], data []byte, ttl time.Duration) error {
	for try := 0; ; try++ {
		if try > 0 {
			if err := s.own(ctx, rec); err != nil {
				return err
			}
		}
		done, err := s.be.cas.CompareAndSet(ctx, s.id, nil, data, ttl)
		switch {
		case err != nil:
			return storeErr("set", err)
		case done:
			return nil
		case try == maxTries:
			return storeErr("set", ErrConflict)
		}
		s.id = newID()
	}
}

// wrote makes rec, stored as data for ttl, the session as saved.
func (s *Session[V, F]) wrote(rec record[V, F], data []byte, ttl time.Duration) {
	rec.flash = nil
	s.rec, s.raw, s.stored, s.dirty, s.csrfNew, s.ownerSet = rec, data, true, false, false, false
	s.exp = expiry{ttl: ttl, extended: true}
	s.vals.keys, s.vals.updates, s.vals.cleared = s.vals.keys[:0], nil, false
	s.flash.written, s.flash.dirty = true, false
	s.rot = rotation{}
}

// drop forgets the session after another request destroyed it or moved it
// to a new id: nothing of this request is written, and no cookie is sent.
func (s *Session[V, F]) drop(why string) {
	s.m.log.Debug("session: " + why + " by a concurrent request; this request's changes are dropped")
	s.reset()
}

// retire deletes the id RegenerateID moved away from, or replaces it with a
// read-only copy for the rotation grace, on a store without compare-and-set
// (rotate does it with). A store bound to the request holds only the new
// record, so there is nothing to retire.
func (s *Session[V, F]) retire(ctx context.Context) error {
	if s.rot.oldID == "" || s.be.bound {
		return nil
	}
	if s.rot.deleteOld {
		if err := s.be.Delete(ctx, s.rot.oldID); err != nil {
			return storeErr("delete", err)
		}
		return nil
	}
	if err := s.be.Set(ctx, s.rot.oldID, s.graceCopy(s.rot.oldRaw), s.m.cfg.RotationGrace); err != nil {
		return storeErr("set", err)
	}
	return nil
}

// graceCopy returns the read-only copy of raw, the record under the id
// RegenerateID moved away from, that the id keeps for the rotation grace.
func (s *Session[V, F]) graceCopy(raw []byte) []byte {
	return graceCopy(raw, ms(s.m.now().Add(s.m.cfg.RotationGrace)))
}

// extend moves an unchanged record's idle expiry with a TTL-only touch.
func (s *Session[V, F]) extend(now time.Time) error {
	ttl := s.ttlAt(now)
	ctx, cancel := s.context()
	defer cancel()
	if err := s.be.touch.Touch(ctx, s.id, ttl); err != nil {
		return storeErr("touch", err)
	}
	s.exp = expiry{ttl: ttl, extended: true}
	return nil
}
