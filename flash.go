package session

import "slices"

// Flash queues msg under key for the next request that loads the session. It
// is not visible in this request. A second Flash with the same key replaces
// the first. Flash messages and values are separate namespaces.
func (s *Session[V, F]) Flash(key string, msg F) {
	e := entry[F]{key: key, v: msg, has: true}
	if i := find(s.out, key); i >= 0 {
		s.out[i] = e
	} else {
		s.out = append(s.out, e)
	}
	s.flashDirty = true
}

// GetFlash returns the message an earlier request queued under key. It can be
// read any number of times during this request, and is dropped when the
// request ends unless KeepFlash carries it over.
func (s *Session[V, F]) GetFlash(key string) (F, bool) {
	return decodeEntry(s.m, s.in, key)
}

// Flashes returns every message queued by an earlier request, by key.
func (s *Session[V, F]) Flashes() map[string]F {
	out := make(map[string]F, len(s.in))
	for _, e := range s.in {
		if msg, ok := decodeEntry(s.m, s.in, e.key); ok {
			out[e.key] = msg
		}
	}
	return out
}

// FlashKeys returns the keys of the messages queued by an earlier request, in
// the order they were queued.
func (s *Session[V, F]) FlashKeys() []string {
	keys := make([]string, len(s.in))
	for i, e := range s.in {
		keys[i] = e.key
	}
	return keys
}

// KeepFlash carries this request's messages over to the next request: those
// under keys, or all of them when no key is given.
func (s *Session[V, F]) KeepFlash(keys ...string) {
	if len(keys) == 0 {
		s.keepAll = true
	}
	s.kept = append(s.kept, keys...)
	s.flashDirty = true
}

func (s *Session[V, F]) isKept(key string) bool {
	return s.keepAll || slices.Contains(s.kept, key)
}

// pending returns the messages the next request will see: the kept ones and
// those queued here (which win over a kept one with the same key).
func (s *Session[V, F]) pending() []entry[F] {
	var p []entry[F]
	for _, e := range s.in {
		if s.isKept(e.key) && find(s.out, e.key) < 0 {
			p = append(p, e)
		}
	}
	return append(p, s.out...)
}

// flashChanged reports whether the stored flash differs from pending().
func (s *Session[V, F]) flashChanged() bool {
	if s.flashWritten {
		return s.flashDirty
	}
	if len(s.out) > 0 {
		return true
	}
	for _, e := range s.in {
		if !s.isKept(e.key) {
			return true
		}
	}
	return false
}
