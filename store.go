package session

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"
)

// Store keeps encoded session records under their ids.
//
// Ownership of bytes: Set may keep data as it is (the caller never changes it
// after the call). The slice Get returns must never change afterwards: the
// session reads keys and values from it for the rest of the request without
// copying, and never writes to it. A store may return its own immutable copy.
// An id may share memory with the request's session: a store that keeps an
// id beyond the call (as a map key, say) keeps a copy. Every method must be
// safe for concurrent use and honour ctx's cancellation and deadline where it
// does I/O.
//
// A store may implement the optional capabilities below, which the Manager
// finds by type assertion once, when it is built, and io.Closer, which
// Manager.Close calls.
type Store interface {
	// Get returns the record stored under id, or ErrNotFound.
	Get(ctx context.Context, id string) ([]byte, error)
	// Set stores data under id for ttl (always > 0), replacing any record.
	Set(ctx context.Context, id string, data []byte, ttl time.Duration) error
	// Delete removes the record under id. Deleting a missing id is not an error.
	Delete(ctx context.Context, id string) error
}

// Toucher is implemented by stores that can extend a record's time to live
// without rewriting it. The middleware uses it together with TTLGetter to
// extend idle sessions cheaply on a store without CompareAndSetter (one with
// it extends by a conditional rewrite, which cannot extend an id that
// another request moved away from); a missing record is not an error.
type Toucher interface {
	// Touch sets the remaining time to live of the record under id to ttl.
	Touch(ctx context.Context, id string, ttl time.Duration) error
}

// TTLGetter is implemented by stores that report, in the same round trip as
// the read, how long a record has left to live. It lets the middleware decide
// when a touch is due without writing a timestamp on every request.
type TTLGetter interface {
	// GetTTL is Get that also returns the record's remaining time to live
	// (<= 0 when the store cannot tell).
	GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error)
}

// CompareAndSetter is implemented by stores with an atomic conditional write.
//
// CompareAndSet stores data under id for ttl only if the record currently
// stored is byte-for-byte old; a nil old means "only if absent". It reports
// whether the write happened. With it, concurrent requests that change
// different keys of one session both persist, and a destroyed or rotated
// session is never written back, moved again or extended by a slower
// request. A store that keeps data must compare the bytes exactly: the
// middleware also uses it to replace a rotated-away record with its grace
// copy or a tombstone only if it is still the record the request read.
type CompareAndSetter interface {
	// CompareAndSet writes data only if the record under id is old (nil:
	// absent), and reports whether it wrote.
	CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error)
}

// StaleReader is implemented by stores whose Get may return a record older
// than the one stored, for a short while after another client (another app
// instance) wrote it: a store that serves reads from a client-side cache,
// say (stores/rueidisstore). Such a read cannot be told from one made just
// before a concurrent write, so on such a store a save treats every key the
// request read and then set or unset as read-modify-write: when the stored
// value of the key is no longer the one the request read, the save fails
// with ErrStale and writes nothing, rather than let a value computed from an
// outdated read undo the newer one (Update is re-applied instead, as
// everywhere). Other keys merge as on any store with compare-and-set.
type StaleReader interface {
	// StaleReads reports whether Get may return an outdated record.
	StaleReads() bool
}

// Binder is implemented by stores that keep a session's record in the
// request and its response rather than behind the id on a server, such as
// the encrypted cookie store (stores/cookiestore). Such a store serves one
// request at a time, so the middleware binds it to each request that loads
// a session, before the first store call, and makes every call of that
// request through the Store that Bind returns (whose optional capabilities
// are found like the store's own).
//
// cookie carries the attributes of the middleware's own cookie (Path, Domain,
// Secure, HttpOnly, SameSite), so that a cookie the store sets travels with
// it; the store copies what it needs and keeps no reference to cookie.
//
// The middleware takes care of what such a store cannot do: after
// RegenerateID it neither writes a read-only copy of the old id nor deletes
// it (the response holds one record, the new one), and it marks every
// response in which it wrote through the bound store with "Vary: Cookie" and
// `Cache-Control: no-cache="Set-Cookie"`.
type Binder interface {
	// Bind returns the Store that serves the calls of the request req.
	Bind(req *fasthttp.RequestCtx, cookie *fasthttp.Cookie) Store
}

// backend is a Store with its optional capabilities, found once.
type backend struct {
	Store
	ttl   TTLGetter        // nil when the store has none
	touch Toucher          // nil when the store has none
	cas   CompareAndSetter // nil when the store has none
	bound bool             // the store Bind returned for one request
	stale bool             // Get may return an outdated record (StaleReader)
}

func newBackend(st Store, bound bool) *backend {
	b := &backend{Store: st, bound: bound}
	b.ttl, _ = st.(TTLGetter)
	b.touch, _ = st.(Toucher)
	b.cas, _ = st.(CompareAndSetter)
	if sr, ok := st.(StaleReader); ok {
		b.stale = sr.StaleReads()
	}
	return b
}

// context returns the context of one store call of the session: a
// background context (fasthttp does not cancel a request's context), bounded
// by Config.StoreTimeout when that is set.
func (s *Session[V, F]) context() (context.Context, context.CancelFunc) {
	return s.m.context(context.Background())
}

// context returns the context of one store call made for parent, bounded by
// Config.StoreTimeout when that is set.
func (m *Manager[V, F]) context(parent context.Context) (context.Context, context.CancelFunc) {
	if d := m.cfg.StoreTimeout; d > 0 {
		return context.WithTimeout(parent, d)
	}
	return parent, noop
}

func noop() {}
