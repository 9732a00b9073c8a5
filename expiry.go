package session

import "time"

// Created returns when the session began, or when RegenerateID last moved
// it to a new id; for a session not stored yet, the time of the call.
func (s *Session[V, F]) Created() time.Time {
	if s.rec.created == 0 {
		return s.m.now()
	}
	return time.UnixMilli(s.rec.created)
}

// Deadline returns when the session ends whatever its activity: its
// creation plus Config.AbsoluteTimeout (RegenerateID starts a new one).
func (s *Session[V, F]) Deadline() time.Time {
	if s.rec.deadline == 0 {
		return s.m.now().Add(s.m.cfg.AbsoluteTimeout)
	}
	return time.UnixMilli(s.rec.deadline)
}

// ExpiresAt returns when the session expires if no later request extends
// it: the earlier of its Deadline and its last write or extension plus its
// IdleTimeout. A save that writes or extends the session moves it to the
// time of the save plus IdleTimeout; requests extend it at most once per
// Config.TouchInterval unless they write (see Touch). On a store without
// compare-and-set that extends records with Touch, it may lag by up to a
// touch interval.
func (s *Session[V, F]) ExpiresAt() time.Time {
	last := s.rec.written
	if !s.stored || last == 0 {
		last = ms(s.m.now())
	}
	idle := s.idle().Milliseconds()
	return time.UnixMilli(min(last+idle, s.Deadline().UnixMilli()))
}

// IdleTimeout returns the session's idle timeout: its SetIdleTimeout
// override, else Config.IdleTimeout.
func (s *Session[V, F]) IdleTimeout() time.Duration { return s.idle() }

// Touch extends the session's idle expiry at the next save, even within
// Config.TouchInterval of the last extension (which a save otherwise
// skips): one write of the record, or one Touch on a store without
// compare-and-set. It does nothing for a session that is not stored, or a
// read-only grace copy.
func (s *Session[V, F]) Touch() {
	if s.stored && !s.rot.readOnly {
		s.exp.touch = true
	}
}

// SetIdleTimeout overrides the idle timeout for this session ("remember me");
// d <= 0 restores Config.IdleTimeout. The override is kept in the record and
// applies to later requests; the absolute lifetime still caps it (a d longer
// than Config.AbsoluteTimeout is logged once as a warning). A session with an
// override gets a persistent cookie; restoring the default sends the cookie
// again as a browser-session cookie (unless Config.CookiePersistent). A d
// below one second is refused: it is logged as an error and nothing changes.
func (s *Session[V, F]) SetIdleTimeout(d time.Duration) {
	if d > 0 && d < time.Second {
		s.m.log.Error("session: SetIdleTimeout below one second refused; the idle timeout is unchanged", "timeout", d)
		return
	}
	if d > s.m.cfg.AbsoluteTimeout {
		s.m.warnLongIdle.Do(func() {
			s.m.log.Warn("session: SetIdleTimeout is longer than Config.AbsoluteTimeout, which ends the session first", "timeout", d, "absolute", s.m.cfg.AbsoluteTimeout)
		})
	}
	s.rec.idle = 0
	if d > 0 {
		s.rec.idle = d.Milliseconds()
	}
	s.exp.idleSet = true
	s.dirty = true
	s.recookie = true
}
