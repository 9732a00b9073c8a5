package session

import (
	"errors"
	"slices"
	"time"
)

// maxTries bounds the compare-and-set attempts of one save. Every failed
// attempt means another request's save succeeded, so a save fails with
// ErrConflict only when more than maxTries requests wrote the same session
// while it retried.
const maxTries = 32

// Save writes the session now if anything changed, extends an idle expiry
// that is due, and sets the cookie. The middleware calls it after the
// handler; call it yourself only to see an error in the handler. A session
// that is new and empty is not stored and gets no cookie. The error is a
// *StoreError, or wraps ErrEncode when a value does not encode.
func (s *Session[V, F]) Save() error {
	wrote := len(s.doomed) > 0
	for len(s.doomed) > 0 {
		ctx, cancel := s.context()
		err := s.be.Delete(ctx, s.doomed[0])
		cancel()
		if err != nil {
			return storeErr("delete", err)
		}
		s.doomed = s.doomed[1:]
	}
	canTouch := s.be.touch != nil && s.exp.ttl > 0 && s.rot.oldID == ""
	switch {
	case s.rot.readOnly:
	case s.dirty || s.flashChanged() || s.exp.touch && !canTouch:
		if !s.loaded && !s.stored && s.empty() {
			break
		}
		if err := s.write(s.m.now()); err != nil {
			return err
		}
		if err := s.retire(); err != nil {
			return err
		}
		wrote = true
	case s.exp.touch:
		if err := s.extend(s.m.now()); err != nil {
			return err
		}
		wrote = true
	}
	if wrote && s.be.bound {
		vary(&s.req.Response.Header)
	}
	s.sendCookie()
	return nil
}

// empty reports whether there is nothing worth storing.
func (s *Session[V, F]) empty() bool {
	return len(s.rec.vals) == 0 && len(s.pending()) == 0 && s.rec.idle == 0
}

// write stores the record under s.id: with compare-and-set when the store has
// it, re-applying this request's changes onto a concurrently written record.
func (s *Session[V, F]) write(now time.Time) error {
	ctx, cancel := s.context()
	defer cancel()
	if s.id == "" {
		s.id = newID()
	}
	if s.rec.created == 0 {
		s.rec.created = ms(now)
		s.rec.deadline = ms(now.Add(s.m.cfg.AbsoluteTimeout))
	}
	rec := s.rec
	rec.flash = s.pending()
	rec.flags = 0
	rec.written = ms(now)
	rec.version++
	data, err := encodeRecord(s.m.cfg.Codec, &rec)
	if err != nil {
		return err
	}
	ttl := max(rec.ttl(now, s.m.cfg.IdleTimeout), time.Second)
	if s.be.cas == nil {
		if err := s.be.Set(ctx, s.id, data, ttl); err != nil {
			return storeErr("set", err)
		}
	}
	for try := 0; s.be.cas != nil; try++ {
		done, err := s.be.cas.CompareAndSet(ctx, s.id, s.raw, data, ttl)
		if err != nil {
			return storeErr("set", err)
		}
		if done {
			break
		}
		if try == maxTries {
			return storeErr("set", ErrConflict)
		}
		if s.raw == nil { // the new id is taken: choose another
			s.id = newID()
			continue
		}
		cur, err := s.be.Get(ctx, s.id)
		if errors.Is(err, ErrNotFound) {
			s.m.log.Debug("session: record deleted by a concurrent request; changes dropped")
			s.reset()
			return nil
		}
		if err != nil {
			return storeErr("get", err)
		}
		var latest record[V, F]
		if decodeRecord(cur, &latest) != nil {
			s.raw = cur // overwrite what cannot be read
			continue
		}
		if latest.moved() {
			s.m.log.Debug("session: id rotated by a concurrent request; changes dropped")
			s.reset()
			return nil
		}
		rec = s.merge(latest, now)
		if data, err = encodeRecord(s.m.cfg.Codec, &rec); err != nil {
			return err
		}
		s.raw = cur
		ttl = max(rec.ttl(now, s.m.cfg.IdleTimeout), time.Second)
	}
	rec.flash = nil
	s.rec, s.raw, s.stored, s.dirty, s.csrfNew = rec, data, true, false, false
	s.exp = expiry{ttl: ttl, extended: true}
	s.vals.keys, s.vals.cleared = s.vals.keys[:0], false
	s.flash.written, s.flash.dirty = true, false
	return nil
}

// merge re-applies this request's changes onto latest, the record another
// request wrote meanwhile: values set or unset here, flash consumed or queued
// here, an idle timeout set here, and a CSRF secret made here when latest has
// none. Everything else is latest's. So a concurrent save never drops or
// replaces a stored CSRF secret, and when two requests make a session's
// first secret at once, the one saved first wins: the tokens the other
// request gave its page are refused, and the store never holds a mix.
func (s *Session[V, F]) merge(latest record[V, F], now time.Time) record[V, F] {
	if s.vals.cleared {
		latest.vals = nil
	}
	for _, key := range s.vals.keys {
		if i := find(s.rec.vals, key); i >= 0 {
			latest.vals = put(latest.vals, s.rec.vals[i])
		} else if j := find(latest.vals, key); j >= 0 {
			latest.vals = slices.Delete(latest.vals, j, j+1)
		}
	}
	for _, e := range s.flash.in {
		if j := find(latest.flash, e.key); j >= 0 && !s.isKept(e.key) && string(latest.flash[j].raw) == string(e.raw) {
			latest.flash = slices.Delete(latest.flash, j, j+1)
		}
	}
	for _, e := range s.flash.out {
		latest.flash = put(latest.flash, e)
	}
	if s.exp.idleSet {
		latest.idle = s.rec.idle
	}
	if s.csrfNew && latest.csrf == nil {
		latest.csrf = s.rec.csrf
	}
	latest.flags = 0
	latest.written = ms(now)
	latest.version++
	return latest
}

// retire deletes the id RegenerateID moved away from, or cuts it down to a
// read-only copy for the rotation grace. A store bound to the request holds
// only the new record, so there is nothing to retire.
func (s *Session[V, F]) retire() error {
	if s.rot.oldID != "" && !s.be.bound {
		ctx, cancel := s.context()
		defer cancel()
		if s.rot.deleteOld {
			if err := s.be.Delete(ctx, s.rot.oldID); err != nil {
				return storeErr("delete", err)
			}
		} else {
			moved := graceCopy(s.rot.oldRaw) // read-only, without the CSRF secret
			if err := s.be.Set(ctx, s.rot.oldID, moved, s.m.cfg.RotationGrace); err != nil {
				return storeErr("set", err)
			}
		}
	}
	s.rot = rotation{}
	return nil
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
