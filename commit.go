package session

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Concurrent saves of one session. A store with compare-and-set writes a
// record only if it still holds the one the save started from; when it does
// not, another request wrote the session, and the save reads the record
// again, re-applies its own changes onto it (merge) and tries again. So
// requests that change different keys of one session all persist, and a
// session that another request destroyed or moved to a new id is never
// written back, moved again or extended.
//
// Within one process, the saves of one session take turns instead of
// fighting: while one writes the record, the saves that arrive wait, and
// the first of them then writes them all, merged, with one compare-and-set.
// A retry therefore means that another process wrote the session; retries
// wait a random, growing time (backoff) so that processes spread out.

// saving tracks the session being written by each save in turn, by id. It is
// sharded by the id's first byte, so that saves of different sessions
// rarely share a lock.
type saving[V, F any] struct{ shards [16]shard[V, F] }

type shard[V, F any] struct {
	mu      sync.Mutex
	writing map[string]*Session[V, F] // the save whose turn it is
}

// written is the outcome of a write: the record stored as data for ttl, or
// gone (the session was destroyed or moved: nothing was written), or err.
type written[V, F any] struct {
	rec    record[V, F]
	data   []byte
	ttl    time.Duration
	gone   bool
	err    error
	shared bool // rec holds the values of several requests (see took)
}

// turn is what a waiting save gets when the save before it is done: its
// outcome, written by another save's turn, or, for the first waiting save,
// the lead of the next turn: the other waiting saves, which it writes with
// its own, and the record the store now holds.
type turn[V, F any] struct {
	lead   bool
	others []*Session[V, F]
	base   []byte
	w      written[V, F]
}

// commit writes s's changes to the stored record of s.id, taking turns with
// the process's other saves of that session. w is s's record as written when
// the store still holds s.raw.
func (m *Manager[V, F]) commit(ctx context.Context, s *Session[V, F], w written[V, F], now time.Time) error {
	sh := &m.saving.shards[s.id[0]%16]
	var others []*Session[V, F] // written with s's turn
	base, waited := s.raw, false
	sh.mu.Lock()
	if cur := sh.writing[s.id]; cur != nil {
		cur.waiting = append(cur.waiting, s)
		s.turn = make(chan turn[V, F], 1)
		sh.mu.Unlock()
		t, err := s.wait(sh, ctx)
		if err != nil {
			return err
		}
		if !t.lead {
			return s.took(t.w)
		}
		others, base, waited = t.others, t.base, true
	} else {
		if sh.writing == nil {
			sh.writing = make(map[string]*Session[V, F])
		}
		sh.writing[s.id] = s
		sh.mu.Unlock()
	}

	ended := false
	defer func() {
		if !ended { // a panic (in an Update function, say): no save may wait forever
			m.endTurn(sh, s, others, nil, written[V, F]{err: errors.New("session: a save of the same session panicked")})
		}
	}()
	if waited { // w is s's record alone, on what s read: merge onto base
		w = m.build(s, others, base, now)
	}
	w, base = m.writeTurn(ctx, s, others, base, w, now)
	ended = true
	m.endTurn(sh, s, others, base, w)
	return s.took(w)
}

// wait waits for s's turn. When ctx ends first and s is still waiting, s
// leaves the queue and fails; once a turn has taken s in, s waits for it to
// end (it is bounded by that turn's own context).
func (s *Session[V, F]) wait(sh *shard[V, F], ctx context.Context) (turn[V, F], error) {
	select {
	case t := <-s.turn:
		return t, nil
	case <-ctx.Done():
	}
	sh.mu.Lock()
	if cur := sh.writing[s.id]; cur != nil {
		if i := slices.Index(cur.waiting, s); i >= 0 {
			cur.waiting = slices.Delete(cur.waiting, i, i+1)
			sh.mu.Unlock()
			return turn[V, F]{}, storeErr("set", ctx.Err())
		}
	}
	sh.mu.Unlock()
	return <-s.turn, nil
}

// endTurn ends s's turn: it gives the others written in it their outcome w,
// and the saves that waited meanwhile the next turn, with base, the record
// the store now holds. When the store failed, they fail with it instead:
// so would their turn.
func (m *Manager[V, F]) endTurn(sh *shard[V, F], s *Session[V, F], others []*Session[V, F], base []byte, w written[V, F]) {
	failed := w.err != nil && (base == nil || isStoreError(w.err))
	sh.mu.Lock()
	next := s.waiting
	s.waiting = nil
	if len(next) == 0 || failed {
		delete(sh.writing, s.id)
	} else {
		sh.writing[s.id] = next[0]
	}
	sh.mu.Unlock()
	for _, o := range others {
		o.turn <- turn[V, F]{w: w}
	}
	switch {
	case failed:
		for _, o := range next {
			o.turn <- turn[V, F]{w: w}
		}
	case len(next) > 0:
		next[0].turn <- turn[V, F]{lead: true, others: next[1:], base: base}
	}
}

// took applies the outcome of a write to s.
func (s *Session[V, F]) took(w written[V, F]) error {
	switch {
	case s.failed != nil: // outdated (build): none of s was written
		return s.failed
	case w.err != nil:
		return w.err
	case w.gone:
		s.drop("session destroyed, moved to a new id or rewritten in a format this release cannot read")
		return nil
	}
	if w.shared {
		// Each request gets its own entries, holding the encoded values
		// only: a decoded value of one request must not reach another.
		w.rec.vals = slices.Clone(w.rec.vals)
		for i := range w.rec.vals {
			var zero V
			w.rec.vals[i].v, w.rec.vals[i].has = zero, false
		}
	}
	s.wrote(w.rec, w.data, w.ttl)
	return nil
}

// writeTurn stores w, the changes of s and then others merged onto base,
// under s.id by compare-and-set against base, the record the store is
// believed to hold (nil: none, the session is gone). When the store holds
// another record, it reads it, merges again and retries. It returns the
// outcome and the record the store holds as far as it knows (nil: none).
func (m *Manager[V, F]) writeTurn(ctx context.Context, s *Session[V, F], others []*Session[V, F], base []byte, w written[V, F], now time.Time) (written[V, F], []byte) {
	id, cas := s.id, s.be.cas
	for try := 0; ; try++ {
		if w.err != nil || w.gone {
			return w, base
		}
		done, err := cas.CompareAndSet(ctx, id, base, w.data, w.ttl)
		switch {
		case err != nil:
			return written[V, F]{err: storeErr("set", err)}, base
		case done:
			w.shared = len(others) > 0
			return w, w.data
		case try == maxTries || !backoff(ctx, try):
			return written[V, F]{err: storeErr("set", ErrConflict)}, base
		}
		cur, err := s.be.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return written[V, F]{gone: true}, nil
		case err != nil:
			return written[V, F]{err: storeErr("get", err)}, base
		}
		base, w = cur, m.build(s, others, cur, now)
	}
}

// build merges the changes of s and then of others, in order, onto base, the
// stored record, and encodes the result. No record, a grace copy (the
// session moved to a new id) or a record that does not decode (a newer
// release's, say, which this one must not overwrite) means the session is
// gone for this request.
func (m *Manager[V, F]) build(s *Session[V, F], others []*Session[V, F], base []byte, now time.Time) written[V, F] {
	if base == nil {
		return written[V, F]{gone: true}
	}
	var rec record[V, F]
	if decodeRecord(base, &rec) != nil || rec.moved() {
		return written[V, F]{gone: true}
	}
	version := rec.version
	merged := 0
	for i := -1; i < len(others); i++ {
		o := s
		if i >= 0 {
			o = others[i]
		}
		if o.failed != nil { // stale (below), in an earlier try of this turn
			continue
		}
		if err := o.outdated(&rec); err != nil {
			o.failed = err // took returns it
			continue
		}
		rec = o.merge(rec)
		merged++
	}
	if merged == 0 {
		return written[V, F]{err: s.failed}
	}
	stamp(&rec, version, now)
	data, ttl, err := s.encode(&rec, now)
	return written[V, F]{rec: rec, data: data, ttl: ttl, err: err}
}

// outdated returns an error wrapping ErrStale when the store may serve
// outdated reads (StaleReader) and latest holds another value than the
// record this request read under a key that the request read and then set
// or unset: the new value may have been computed from an outdated one, and
// writing it would undo the newer.
func (s *Session[V, F]) outdated(latest *record[V, F]) error {
	if !s.be.stale || s.vals.read == 0 {
		return nil
	}
	base := s.raw
	if base == nil {
		base = s.rot.oldRaw
	}
	var read record[V, F]
	if base != nil && decodeRecord(base, &read) != nil {
		return nil // this request read no record it could decode (never written back)
	}
	for _, key := range s.vals.keys {
		if s.vals.read&keyBit(key) == 0 {
			continue
		}
		i, j := find(read.vals, key), find(latest.vals, key)
		if (i < 0) != (j < 0) || i >= 0 && (latest.vals[j].raw == nil || string(read.vals[i].raw) != string(latest.vals[j].raw)) {
			return fmt.Errorf("%w (key %q)", ErrStale, key)
		}
	}
	return nil
}

// merge re-applies this request's changes onto latest, the record another
// request wrote meanwhile: values set, unset or updated here, flash consumed
// or queued here, an idle timeout set here, and a CSRF secret made here when
// latest has none. Everything else is latest's. So a concurrent save never
// drops or replaces a stored CSRF secret, and when two requests make a
// session's first secret at once, the one saved first wins: the tokens the
// other request gave its page are refused, and the store never holds a mix.
func (s *Session[V, F]) merge(latest record[V, F]) record[V, F] {
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
	for _, u := range s.vals.updates {
		old, _ := decodeEntry(s.m, latest.vals, u.key, s.m.decoded)
		latest.vals = put(latest.vals, entry[V]{key: u.key, v: u.fn(old), has: true})
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
	if s.ownerSet {
		latest.owner, latest.device = s.rec.owner, s.rec.device
	}
	if s.csrfNew && latest.csrf == nil {
		latest.csrf = s.rec.csrf
	}
	return latest
}

// rotate moves the session from s.rot.oldID, the id it was read under, to
// s.id. It writes the new record first, then replaces the old one, by
// compare-and-set against the record this request read, with its read-only
// grace copy (RegenerateID(false)) or with a tombstone that reads as no
// session (RegenerateID(true)), which it then deletes. When another request wrote the old record
// meanwhile, its changes are merged into the new record and the move is
// tried again. When another request destroyed the session or moved it
// first, the new record is deleted and this request's changes are dropped.
// A store failure before the old record is replaced leaves it as it was (a
// new record written by then is under an id no client has, and expires
// unread); one whose replacement landed though its answer was lost leaves
// the browser, which keeps the old cookie, on the tombstone or grace copy.
func (s *Session[V, F]) rotate(ctx context.Context, rec record[V, F], data []byte, ttl time.Duration, now time.Time) error {
	cas, oldID, base := s.be.cas, s.rot.oldID, s.rot.oldRaw
	var cur []byte // the record under s.id, once this loop wrote it
	for try := 0; ; try++ {
		done, err := cas.CompareAndSet(ctx, s.id, cur, data, ttl)
		switch {
		case err != nil:
			return storeErr("set", err)
		case !done && (cur != nil || try == maxTries):
			return storeErr("set", ErrConflict)
		case !done: // the new id is taken: choose another
			s.id = newID()
			continue
		}
		cur = data
		old, oldTTL := tombstone(), time.Second
		if !s.rot.deleteOld {
			old, oldTTL = s.graceCopy(base), s.m.cfg.RotationGrace
		}
		if done, err = cas.CompareAndSet(ctx, oldID, base, old, oldTTL); err != nil {
			return storeErr("set", err)
		}
		if done {
			if s.rot.deleteOld {
				// No save can write a tombstone again: deleting it
				// unconditionally is safe. If that fails, it expires.
				if err := s.be.Delete(ctx, oldID); err != nil {
					s.m.log.Warn("session: deleting the id a rotation moved away from failed; its tombstone expires in a second", "err", err)
				}
			}
			s.wrote(rec, data, ttl)
			return nil
		}
		if try == maxTries || !backoff(ctx, try) {
			return storeErr("set", ErrConflict)
		}
		latest, err := s.be.Get(ctx, oldID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return storeErr("get", err)
		}
		w := s.m.build(s, nil, latest, now)
		if w.err != nil || w.gone {
			if err := s.be.Delete(ctx, s.id); err != nil {
				return storeErr("delete", err)
			}
			if w.err != nil {
				return w.err
			}
			s.drop("session destroyed, moved to a new id or rewritten in a format this release cannot read")
			return nil
		}
		// The moved record keeps this request's new lifetime and CSRF
		// secret, whatever the old one has now.
		w.rec.created, w.rec.deadline, w.rec.csrf = s.rec.created, s.rec.deadline, s.rec.csrf
		if data, ttl, err = s.encode(&w.rec, now); err != nil {
			return err
		}
		rec, base = w.rec, latest
	}
}

// backoff waits before compare-and-set attempt try+1 of a write whose
// attempt try failed: not at all after the first failure, then a random
// time up to 0.5 ms << try, at most 32 ms. It reports false when ctx ends
// first.
func backoff(ctx context.Context, try int) bool {
	if try == 0 {
		return true
	}
	d := time.Duration(rand.Int64N(int64(min(500*time.Microsecond<<try, 32*time.Millisecond))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
