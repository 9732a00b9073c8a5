package session

import (
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"
)

// load reads the request's session: the id the request carries is verified
// (cookie.go), then its record read. The session is kept as the request's
// user value under m, for later calls and for the save.
func (m *Manager[V, F]) load(ctx *fasthttp.RequestCtx) (*Session[V, F], error) {
	s := m.pool.Get().(*Session[V, F])
	s.m, s.req, s.be = m, ctx, m.be
	if m.binder != nil {
		s.be = newBackend(m.binder.Bind(ctx, m.cookie), true)
		if m.cfg.OnEvent != nil {
			s.be.observe(m.cfg.OnEvent)
		}
	}
	s.rec.vals = s.first[:0]
	if id, key, ok := m.token(ctx); ok {
		s.client = id
		s.resign = key > 0
		if err := s.read(context.Background(), s.client); err != nil {
			m.release(s)
			return nil, err
		}
	}
	ctx.SetUserValue(m, s)
	ctx.SetUserValue(pooled[V, F]{s}, pooled[V, F]{s})
	return s, nil
}

// Sessions of requests are reused: one whose request Serve finished goes
// back to its manager's pool when fasthttp ends the request, by closing its
// user values after the response is written and every handler, outer
// middleware included, has returned. A session Serve did not finish (a
// request timed out by fasthttp, a handler that dropped the user values)
// is left to the garbage collector, as is every detached one (LoadID).

// pooled is the user value that returns s to the pool at the end of its
// request (fasthttp closes the io.Closer user values then).
type pooled[V, F any] struct{ s *Session[V, F] }

func (p pooled[V, F]) Close() error {
	if p.s.served {
		p.s.m.release(p.s)
	}
	return nil
}

// release returns s, which nothing refers to any more, to the pool.
func (m *Manager[V, F]) release(s *Session[V, F]) {
	*s = Session[V, F]{}
	m.pool.Put(s)
}

// Reload discards this request's unsaved changes and reads the session again
// from the store. If the record is gone, the session starts fresh. It ends
// the refusal of Save after a failed Save.
func (s *Session[V, F]) Reload() error {
	s.failed = nil
	id := s.id
	if !s.stored {
		id = s.rot.oldID
	}
	s.reset()
	if id == "" {
		return nil
	}
	return s.read(context.Background(), id)
}

// read loads the record under id, with a store call made for parent. A
// missing, expired or undecodable record leaves the session fresh; only a
// store failure is an error.
func (s *Session[V, F]) read(parent context.Context, id string) error {
	ctx, cancel := s.m.context(parent)
	defer cancel()
	var data []byte
	var ttl time.Duration // <= 0: unknown
	var err error
	if s.be.ttl != nil {
		data, ttl, err = s.be.ttl.GetTTL(ctx, id)
	} else {
		data, err = s.be.Get(ctx, id)
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
		s.m.emit(Event{Kind: EventDecodeFailed, Err: err})
		return nil
	}
	// A store that reports the TTL holds no record past its absolute deadline
	// (every write and touch sets TTL <= deadline - now), and its TTL lags
	// the idle timeout by less than a touch interval on most requests: then
	// the clock is not needed. A grace copy or tombstone (rotate) is always
	// checked: a tombstone's deadline has passed.
	touch := false
	if ttl <= 0 || rec.moved() || rec.idleTimeout(s.m.cfg.IdleTimeout)-ttl >= s.m.cfg.TouchInterval {
		now := s.m.now()
		if rec.deadline <= ms(now) {
			s.m.log.Debug("session: record past its absolute lifetime; starting a fresh session")
			return nil
		}
		touch = s.touchDue(&rec, ttl, now)
	}
	s.id, s.loaded, s.stored, s.raw = id, true, true, data
	s.rec, s.flash.in, s.rec.flash = rec, rec.flash, nil
	s.exp = expiry{ttl: max(ttl, 0), touch: touch}
	s.rot.readOnly = rec.moved()
	return nil
}

// touchDue reports whether the store's expiry of rec lags the wanted one by
// at least the touch interval. Without a TTL from the store, the time of the
// record's last write stands in for it.
func (s *Session[V, F]) touchDue(rec *record[V, F], storeTTL time.Duration, now time.Time) bool {
	def := s.m.cfg.IdleTimeout
	have := storeTTL
	if have <= 0 {
		have = time.UnixMilli(rec.written).Add(rec.idleTimeout(def)).Sub(now)
	}
	have = min(have, time.UnixMilli(rec.deadline).Sub(now))
	return rec.ttl(now, def)-have >= s.m.cfg.TouchInterval
}
