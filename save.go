package session

import (
	"errors"
	"slices"
	"time"
)

// Reload discards this request's unsaved changes and reads the session again
// from the store. If the record is gone, the session starts fresh.
func (s *Session[V, F]) Reload() error {
	id := s.id
	if !s.stored {
		id = s.oldID
	}
	s.reset()
	s.id = ""
	if id == "" {
		return nil
	}
	return s.read(id)
}

// read loads the record under id. A missing, expired or undecodable record
// leaves the session fresh; only a store failure is an error.
func (s *Session[V, F]) read(id string) error {
	ctx, cancel := s.context()
	defer cancel()
	var data []byte
	var err error
	ttl := time.Duration(-1)
	if g, ok := s.m.store.(TTLGetter); ok {
		data, ttl, err = g.GetTTL(ctx, id)
	} else {
		data, err = s.m.store.Get(ctx, id)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		s.m.log.Debug("session: no record for the id; starting a fresh session")
		return nil
	case err != nil:
		return storeErr("get", err)
	}
	rec := record[V, F]{vals: s.rec.vals}
	if err := decodeRecord(data, &rec); err != nil {
		s.m.log.Warn("session: record does not decode; starting a fresh session", "err", err)
		return nil
	}
	s.rec = rec
	s.ttl = ttl
	// A store that reports the TTL holds no record past its absolute deadline
	// (every write and touch sets TTL <= deadline - now), and its TTL lags
	// the idle timeout by less than a touch interval on most requests: then
	// the clock is not needed.
	if ttl < 0 || s.idle()-ttl >= s.m.cfg.TouchInterval {
		now := s.m.now()
		if rec.deadline <= ms(now) {
			s.rec, s.ttl = record[V, F]{}, -1
			s.m.log.Debug("session: record past its absolute lifetime; starting a fresh session")
			return nil
		}
		s.touch = s.touchDue(now)
	}
	s.id, s.stored, s.isNew, s.raw = id, true, false, data
	s.in, s.rec.flash = rec.flash, nil
	s.readOnly = rec.moved()
	return nil
}

// touchDue reports whether the store's expiry lags the wanted one by at least
// the touch interval. Without a TTL from the store, the last write's time
// stands in for it.
func (s *Session[V, F]) touchDue(now time.Time) bool {
	deadline := time.UnixMilli(s.rec.deadline)
	have := time.UnixMilli(s.rec.written).Add(s.idle())
	if s.ttl >= 0 {
		have = now.Add(s.ttl)
	}
	return earlier(now.Add(s.idle()), deadline).Sub(earlier(have, deadline)) >= s.m.cfg.TouchInterval
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Save writes the session now if anything changed, extends an idle expiry
// that is due, and sets the cookie. The middleware calls it after the
// handler; call it yourself only to see a store error in the handler. A
// session that is new and empty is not stored and gets no cookie.
func (s *Session[V, F]) Save() error {
	store := s.m.store
	for len(s.doomed) > 0 {
		ctx, cancel := s.context()
		err := store.Delete(ctx, s.doomed[0])
		cancel()
		if err != nil {
			return storeErr("delete", err)
		}
		s.doomed = s.doomed[1:]
	}
	toucher, canTouch := store.(Toucher)
	canTouch = canTouch && s.ttl >= 0 && s.oldID == ""
	switch {
	case s.readOnly:
	case s.dirty || s.flashChanged() || s.touch && !canTouch:
		if s.isNew && !s.stored && s.empty() {
			break
		}
		if err := s.write(s.m.now()); err != nil {
			return err
		}
		if err := s.retire(); err != nil {
			return err
		}
	case s.touch:
		ttl := s.ttlAt(s.m.now())
		ctx, cancel := s.context()
		err := toucher.Touch(ctx, s.id, ttl)
		cancel()
		if err != nil {
			return storeErr("touch", err)
		}
		s.touch, s.ttl, s.extended = false, ttl, true
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
	ttl := max(s.ttlAt(now), time.Second)
	cas, ok := s.m.store.(CompareAndSetter)
	if !ok {
		if err := s.m.store.Set(ctx, s.id, data, ttl); err != nil {
			return storeErr("set", err)
		}
	}
	for try := 0; ok; try++ {
		done, err := cas.CompareAndSet(ctx, s.id, s.raw, data, ttl)
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
		cur, err := s.m.store.Get(ctx, s.id)
		if errors.Is(err, ErrNotFound) {
			s.m.log.Debug("session: record deleted by a concurrent request; changes dropped")
			s.reset()
			s.isNew = false
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
			s.isNew = false
			return nil
		}
		rec = s.merge(latest, now)
		if data, err = encodeRecord(s.m.cfg.Codec, &rec); err != nil {
			return err
		}
		s.raw = cur
		ttl = max(min(rec.idleOr(s.m.cfg.IdleTimeout), time.UnixMilli(rec.deadline).Sub(now)), time.Second)
	}
	s.raw, s.stored, s.ttl, s.extended, s.touch = data, true, ttl, true, false
	rec.flash = nil
	s.rec = rec
	s.changed, s.cleared, s.idleSet, s.dirty = s.changed[:0], false, false, false
	s.flashWritten, s.flashDirty = true, false
	return nil
}

// merge re-applies this request's changes onto latest, the record another
// request wrote meanwhile: values set or unset here, flash consumed or queued
// here, an idle timeout set here. Everything else is latest's.
func (s *Session[V, F]) merge(latest record[V, F], now time.Time) record[V, F] {
	if s.cleared {
		latest.vals = nil
	}
	for _, key := range s.changed {
		j := find(latest.vals, key)
		i := find(s.rec.vals, key)
		switch {
		case i < 0 && j >= 0:
			latest.vals = slices.Delete(latest.vals, j, j+1)
		case i >= 0 && j >= 0:
			latest.vals[j] = s.rec.vals[i]
		case i >= 0:
			latest.vals = append(latest.vals, s.rec.vals[i])
		}
	}
	for _, e := range s.in {
		if j := find(latest.flash, e.key); j >= 0 && !s.isKept(e.key) && string(latest.flash[j].raw) == string(e.raw) {
			latest.flash = slices.Delete(latest.flash, j, j+1)
		}
	}
	for _, e := range s.out {
		if j := find(latest.flash, e.key); j >= 0 {
			latest.flash[j] = e
		} else {
			latest.flash = append(latest.flash, e)
		}
	}
	if s.idleSet {
		latest.idle = s.rec.idle
	}
	latest.flags = 0
	latest.written = ms(now)
	latest.version++
	return latest
}

func (r *record[V, F]) idleOr(d time.Duration) time.Duration {
	if r.idle > 0 {
		return time.Duration(r.idle) * time.Millisecond
	}
	return d
}

// retire deletes the id RegenerateID moved away from, or cuts it down to a
// read-only copy for the rotation grace.
func (s *Session[V, F]) retire() error {
	if s.oldID == "" {
		return nil
	}
	ctx, cancel := s.context()
	defer cancel()
	if s.deleteOld {
		if err := s.m.store.Delete(ctx, s.oldID); err != nil {
			return storeErr("delete", err)
		}
	} else {
		moved := append([]byte(nil), s.oldRaw...)
		moved[1] |= flagMoved
		if err := s.m.store.Set(ctx, s.oldID, moved, s.m.cfg.RotationGrace); err != nil {
			return storeErr("set", err)
		}
	}
	s.oldID, s.oldRaw, s.deleteOld = "", nil, false
	return nil
}

// sendCookie sets the cookie when the client's differs from the session's:
// a new id, a re-signed value, a new Max-Age, or a destroyed session.
func (s *Session[V, F]) sendCookie() {
	persistent := s.m.cfg.CookiePersistent || s.rec.idle > 0
	switch {
	case s.stored && (s.id != s.client || s.resign || persistent && s.extended):
		maxAge := time.Duration(0)
		if persistent {
			maxAge = s.ttl // what the store gives the record
			if maxAge < 0 {
				maxAge = s.ttlAt(s.m.now())
			}
		}
		s.m.setCookie(s.req, s.m.signer.sign(s.id), maxAge)
		s.client, s.resign, s.extended = s.id, false, false
	case s.destroyed && s.client != "" && !s.stored:
		s.m.setCookie(s.req, "", 0)
		s.client = ""
	}
}
