package session

import "slices"

// Flash queues msg under key for the next request that loads the session. It
// is not visible in this request. A second Flash with the same key replaces
// the first. Flash messages and values are separate namespaces.
func (s *Session[V, F]) Flash(key string, msg F) {
	s.flash.out = put(s.flash.out, entry[F]{key: key, v: msg, has: true})
	s.flash.dirty = true
}

// GetFlash returns the message an earlier request queued under key. It can be
// read any number of times during this request, and is dropped when the
// request ends unless KeepFlash carries it over.
func (s *Session[V, F]) GetFlash(key string) (F, bool) {
	return decodeEntry[F](s.m, s.flash.in, key, nil)
}

// Flashes returns every message queued by an earlier request, by key.
func (s *Session[V, F]) Flashes() map[string]F {
	out := make(map[string]F, len(s.flash.in))
	for _, e := range s.flash.in {
		if msg, ok := decodeEntry[F](s.m, s.flash.in, e.key, nil); ok {
			out[e.key] = msg
		}
	}
	return out
}

// FlashKeys returns the keys of the messages queued by an earlier request, in
// the order they were queued.
func (s *Session[V, F]) FlashKeys() []string {
	keys := make([]string, len(s.flash.in))
	for i, e := range s.flash.in {
		keys[i] = e.key
	}
	return keys
}

// KeepFlash carries this request's messages over to the next request: those
// under keys, or all of them when no key is given.
func (s *Session[V, F]) KeepFlash(keys ...string) {
	if len(keys) == 0 {
		s.flash.keepAll = true
	}
	s.flash.kept = append(s.flash.kept, keys...)
	s.flash.dirty = true
}

func (s *Session[V, F]) isKept(key string) bool {
	return s.flash.keepAll || slices.Contains(s.flash.kept, key)
}

// pending returns the messages the next request will see: the kept ones and
// those queued here (which win over a kept one with the same key).
func (s *Session[V, F]) pending() []entry[F] {
	var p []entry[F]
	for _, e := range s.flash.in {
		if s.isKept(e.key) && find(s.flash.out, e.key) < 0 {
			p = append(p, e)
		}
	}
	return append(p, s.flash.out...)
}

// flashChanged reports whether the stored flash differs from pending().
func (s *Session[V, F]) flashChanged() bool {
	if s.flash.written {
		return s.flash.dirty
	}
	if len(s.flash.out) > 0 {
		return true
	}
	for _, e := range s.flash.in {
		if !s.isKept(e.key) {
			return true
		}
	}
	return false
}
