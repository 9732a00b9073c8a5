package session

import (
	"cmp"
	"iter"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
)

// Session is one request's view of a session: values of type V and flash
// messages of type F under string keys. Get it with session.Get (Fiber) or
// Manager.FromRequestCtx (fasthttp). A Session belongs to its request and is
// not safe for use by several goroutines at once. Like Fiber's Ctx, a
// request's Session is valid until the request ends (after its response is
// written and every handler, outer middleware included, has returned): the
// manager then reuses it for another request. Strings and values it
// returned stay valid; keep the Session itself no longer. A detached Session
// (Manager.Load, LoadID, LoadRequest) is never reused.
//
// Values are stored encoded and decoded when first read. Changing a value in
// place (a map or pointer V) is not seen: call Set to store the change.
type Session[V, F any] struct {
	m   *Manager[V, F]
	req *fasthttp.RequestCtx
	be  *backend // the manager's store, or the one bound to this request

	// What the request brought and did, kept for its whole life.
	client    string  // the id the request's cookie or header named
	doomed    *doomed // what Destroy left for the next save to delete, or nil
	failed    error   // the error of a Save that failed: the middleware does not save again
	resign    bool    // that cookie was signed with an older key
	destroyed bool    // Destroy was called
	recookie  bool    // SetIdleTimeout: send the cookie again, persistent or not
	served    bool    // Serve is done with it: reused when its request ends (load.go)

	// Taking turns with the process's other saves of the session (commit.go).
	turn    chan turn[V, F]  // where this save waits for its turn
	waiting []*Session[V, F] // saves waiting for this one's turn to end

	state[V, F] // the session itself: reset returns it to the zero value
}

// state is a session's record and this request's unsaved changes to it. The
// zero value is a new, empty session.
type state[V, F any] struct {
	id     string // "" until one is needed
	loaded bool   // began from a stored record (not fresh, not after Destroy)
	stored bool   // a record exists under id (read or written by this request)
	dirty  bool   // values, expiry or id changed since the last save
	// csrfNew: rec.csrf was made (or taken from the CSRF cookie) by this
	// request and is not stored yet. A save that merges keeps the stored
	// secret over it (save.go merge), so a secret, once stored under an id,
	// is never replaced or dropped there.
	csrfNew  bool
	ownerSet bool         // SetOwner since the last save: a merge keeps this owner
	raw      []byte       // the record under id as last read or written: the compare-and-set base
	rec      record[V, F] // header, values and CSRF secret; rec.flash is unused (see flash)

	vals  changes[V]
	flash flashes[F]
	rot   rotation
	exp   expiry

	first [2]entry[V] // rec.vals's first backing array
}

// doomed are the ids of a destroyed session, and its owner, for the next
// save to delete (kept apart: Destroy is rare, and a Session small).
type doomed struct {
	ids   []string
	owner string // "" when the session had none
}

// changes are the values set, unset, updated or cleared since the last save.
type changes[V any] struct {
	keys    []string    // set or unset
	updates []update[V] // Update, in order, of keys not in keys
	cleared bool        // Clear
	buf     [4]string   // keys's first backing array
	read    uint64      // keys read, on a StaleReader store: bit keyBit(key)
}

// keyBit returns the bit of key in changes.read: a 64-bit filter, in which
// a key not read may rarely count as read (its bit shared with one that
// was), never the reverse.
func keyBit(key string) uint64 {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return 1 << (h % 64)
}

// reading notes that the request read key, on a store whose reads may be
// outdated (see StaleReader).
func (s *Session[V, F]) reading(key string) {
	if s.be.stale {
		s.vals.read |= keyBit(key)
	}
}

// update is one call of Update.
type update[V any] struct {
	key string
	fn  func(V) V
}

// flashes are the flash messages of this request and the next.
type flashes[F any] struct {
	in, out []entry[F] // from an earlier request (visible), for the next
	keepAll bool       // KeepFlash()
	kept    []string   // KeepFlash(keys...)
	written bool       // a save has written the flash; later only new calls count
	dirty   bool       // Flash or KeepFlash since that save
}

// rotation is a pending move of the record to a new id.
type rotation struct {
	oldID     string // the stored id RegenerateID moved away from
	oldRaw    []byte // its record, for the read-only grace copy
	deleteOld bool   // delete oldID instead of keeping a grace copy
	readOnly  bool   // this record is a grace copy: readable, never written
}

// expiry is what the request knows and wants of the record's time to live.
type expiry struct {
	ttl      time.Duration // the store's remaining TTL at the last read, write or touch; 0 when unknown
	touch    bool          // the idle expiry is due to be extended
	extended bool          // written or touched: a persistent cookie needs a new Max-Age
	idleSet  bool          // SetIdleTimeout since the last save
}

// reset forgets the data and every unsaved change: the session is new.
func (s *Session[V, F]) reset() { s.state = state[V, F]{} }

// ID returns the session id, choosing a new random one if the session has
// none yet. After RegenerateID it is the new id.
func (s *Session[V, F]) ID() string {
	if s.id == "" {
		s.id = newID()
	}
	return s.id
}

// Get returns the value under key. A stored value that no longer decodes into
// V (its type changed) is reported absent and logged.
func (s *Session[V, F]) Get(key string) (V, bool) {
	s.reading(key)
	return decodeEntry(s.m, s.rec.vals, key, s.m.decoded)
}

// Has reports whether a value is stored under key.
func (s *Session[V, F]) Has(key string) bool {
	s.reading(key)
	return find(s.rec.vals, key) >= 0
}

// Keys returns the keys of the values, sorted.
func (s *Session[V, F]) Keys() []string {
	keys := make([]string, len(s.rec.vals))
	for i, e := range s.rec.vals {
		keys[i] = e.key
	}
	slices.Sort(keys)
	return keys
}

// All returns an iterator over the values and their keys, in key order.
// A stored value that no longer decodes into V is skipped and logged, as Get
// reports it absent.
func (s *Session[V, F]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, k := range s.Keys() {
			if v, ok := s.Get(k); ok && !yield(k, v) {
				return
			}
		}
	}
}

// Replace replaces every value with those of vals, as Clear followed by a
// Set of each; flash messages stay.
func (s *Session[V, F]) Replace(vals map[string]V) {
	s.Clear()
	for k, v := range vals {
		s.Set(k, v)
	}
}

// Stored reports whether a record of the session exists in the store: it
// was loaded, or this request saved it. A new session is not stored until
// a save writes it, which it does only once it holds something.
func (s *Session[V, F]) Stored() bool { return s.stored }

// Len returns the number of values.
func (s *Session[V, F]) Len() int { return len(s.rec.vals) }

// Set stores v under key.
func (s *Session[V, F]) Set(key string, v V) {
	s.rec.vals = put(s.rec.vals, entry[V]{key: key, v: v, has: true})
	s.change(key)
}

// Update sets the value under key to fn(old), where old is the current value
// (the zero V when there is none), and returns the new value. Unlike Get then
// Set, it is a read-modify-write: when another request changed the key after
// this one read the session, the save applies fn again to the value stored by
// then, so a hundred concurrent requests that each add one to a counter add a
// hundred (on a store with compare-and-set). fn may therefore run more than
// once, and during another request's save of the same session: it must
// compute the new value from old alone. A Set, Unset or Clear of the key
// later in the request replaces the update.
func (s *Session[V, F]) Update(key string, fn func(old V) V) V {
	old, _ := decodeEntry(s.m, s.rec.vals, key, s.m.decoded) // not a read that StaleReader concerns: fn runs again on a change
	v := fn(old)
	s.rec.vals = put(s.rec.vals, entry[V]{key: key, v: v, has: true})
	if !slices.Contains(s.vals.keys, key) {
		s.vals.updates = append(s.vals.updates, update[V]{key, fn})
	}
	s.dirty = true
	return v
}

// Unset removes the value under key.
func (s *Session[V, F]) Unset(key string) {
	if i := find(s.rec.vals, key); i >= 0 {
		s.rec.vals = slices.Delete(s.rec.vals, i, i+1)
	}
	s.change(key)
}

// Clear removes every value. Flash messages are not values and stay.
func (s *Session[V, F]) Clear() {
	s.rec.vals = nil
	s.vals.keys, s.vals.updates = s.vals.keys[:0], nil
	s.vals.cleared = true
	s.dirty = true
}

func (s *Session[V, F]) change(key string) {
	if s.vals.keys == nil {
		s.vals.keys = s.vals.buf[:0]
	}
	if !slices.Contains(s.vals.keys, key) {
		s.vals.keys = append(s.vals.keys, key)
	}
	s.vals.updates = slices.DeleteFunc(s.vals.updates, func(u update[V]) bool { return u.key == key })
	s.dirty = true
}

// Dirty reports whether saving would write anything: changed values, flash
// queued or consumed, a new id, a changed expiry, or a destroyed record.
func (s *Session[V, F]) Dirty() bool {
	return s.dirty || s.flashChanged() || s.doomed != nil || s.rot.oldID != ""
}

// Destroy ends the session: at save its record is deleted (and that of an id
// it was rotated away from) and the cookie is expired with the same Path and
// Domain. Values and flash set afterwards start a brand-new session under a
// new id, so a logout can still flash a message. Destroyed stays true for the
// rest of the request. The session's CSRF secret goes with it: tokens issued
// before Destroy no longer verify (see NewCSRF).
func (s *Session[V, F]) Destroy() {
	var ids []string
	if s.stored {
		ids = append(ids, s.id)
	}
	if s.rot.oldID != "" {
		ids = append(ids, s.rot.oldID)
	}
	if len(ids) > 0 {
		if s.doomed == nil {
			s.doomed = &doomed{}
		}
		s.doomed.ids = append(s.doomed.ids, ids...)
		s.doomed.owner = cmp.Or(s.rec.owner, s.doomed.owner)
	}
	csrf := s.rec.csrf != nil
	s.reset()
	s.destroyed = true
	s.renewCSRF(csrf)
}

// Destroyed reports whether Destroy was called during this request.
func (s *Session[V, F]) Destroyed() bool { return s.destroyed }

// RegenerateID moves the session's data to a new random id and starts a new
// absolute lifetime. Call it after every privilege change (login, logout,
// sudo). With deleteOld the old record is deleted at save; without it, it is
// cut down to a read-only copy that lives Config.RotationGrace, so requests
// already in flight with the old cookie still see their session. Either way
// the old id is never written again, and if another request destroyed the
// session or moved it first, the save drops this request's changes rather
// than bring it back (see Save). The CSRF secret does not move: tokens
// issued before the rotation no longer verify, and the session gets a new
// secret (see NewCSRF).
//
// A request that read the old id's grace copy cannot move it again:
// RegenerateID does nothing then (logged at debug level), and the copy
// expires at the end of the grace.
func (s *Session[V, F]) RegenerateID(deleteOld bool) {
	if s.rot.readOnly {
		s.m.log.Debug("session: RegenerateID on the read-only grace copy of a rotated session ignored")
		return
	}
	s.renewCSRF(s.rec.csrf != nil)
	if s.stored && s.rot.oldID == "" {
		s.rot.oldID, s.rot.oldRaw = s.id, s.raw
	}
	s.rot.deleteOld = s.rot.deleteOld || deleteOld
	s.rot.readOnly = false
	s.id, s.stored, s.raw = newID(), false, nil
	now := s.m.now()
	s.rec.created = ms(now)
	s.rec.deadline = ms(now.Add(s.m.cfg.AbsoluteTimeout))
	s.dirty = true
}

// DeleteID returns the id that the next save deletes because of
// RegenerateID(true), or "" when there is none.
func (s *Session[V, F]) DeleteID() string {
	if s.rot.deleteOld {
		return s.rot.oldID
	}
	return ""
}

// renewCSRF drops the session's CSRF secret after a rotation or Destroy and
// gives the session a new one when it had one (had) or when a CSRF
// protection of this manager serves the request: a login then leaves the
// pre-login token (the CSRF cookie's) behind at once, instead of at the next
// page with a form. A session that gets no other content is not stored for
// its secret alone (Save).
func (s *Session[V, F]) renewCSRF(had bool) {
	s.rec.csrf, s.csrfNew = nil, false
	if had || csrfServes(s.req, s.m) {
		s.rec.csrf, s.csrfNew = newCSRFSecret(), true
	}
}

// csrfSecret returns the session's CSRF secret, or nil, and whether the
// session keeps it: it is stored, or this request will store it. The
// secret of a session that is not kept travels in the CSRF cookie instead.
// A read-only grace copy has no secret but one given to it by this request
// (graceCopy leaves the stored one behind; one that has it anyway does not
// count).
func (s *Session[V, F]) csrfSecret() (secret []byte, kept bool) {
	if s.rot.readOnly && !s.csrfNew {
		return nil, false
	}
	return s.rec.csrf, s.kept()
}

// setCSRFSecret gives the session secret, which this request made or took
// from the CSRF cookie; with save, the session is written for it.
func (s *Session[V, F]) setCSRFSecret(secret []byte, save bool) {
	s.rec.csrf, s.csrfNew = secret, true
	s.dirty = s.dirty || save
}

// kept reports whether the session is stored and writable, or will be stored
// by this request's save as things stand (see Save).
func (s *Session[V, F]) kept() bool {
	switch {
	case s.rot.readOnly:
		return false
	case s.stored:
		return true
	}
	return (s.dirty || s.flashChanged()) && (s.loaded || !s.empty())
}

// flashPending reports whether the session holds flash messages queued by an
// earlier request, which a save would consume.
func (s *Session[V, F]) flashPending() bool { return len(s.flash.in) > 0 }

// idle returns the session's idle timeout.
func (s *Session[V, F]) idle() time.Duration { return s.rec.idleTimeout(s.m.cfg.IdleTimeout) }

// ttlAt returns how long the record should live from now.
func (s *Session[V, F]) ttlAt(now time.Time) time.Duration {
	return s.rec.ttl(now, s.m.cfg.IdleTimeout)
}

// decodeEntry returns the value under key in es, decoding it on first use. A
// value that does not decode is reported absent and logged.
func decodeEntry[T, V, F any](m *Manager[V, F], es []entry[T], key string, d *decoded[T]) (T, bool) {
	i := find(es, key)
	if i < 0 {
		var zero T
		return zero, false
	}
	e := &es[i]
	if !e.has {
		if err := d.decode(m.cfg.Codec, e.raw, &e.v); err != nil {
			m.log.Warn("session: stored value does not decode", "key", key, "err", err)
			m.emit(Event{Kind: EventDecodeFailed, Err: err})
			var zero T
			return zero, false
		}
		e.has = true
	}
	return e.v, true
}
