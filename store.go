package session

import (
	"context"
	"time"

	"github.com/fibersession/session/internal/errs"
)

// ErrNotFound is what a Store's Get returns when a record is absent or has
// expired. Stores must return it (or an error wrapping it) and nothing else for
// a missing record: any other error is treated as the store being unavailable.
var ErrNotFound = errs.ErrNotFound

// Store keeps encoded session records under their ids.
//
// Ownership of bytes: Set may keep data as it is (the caller never changes it
// after the call). The slice Get returns must never change afterwards: the
// session reads keys and values from it for the rest of the request without
// copying, and never writes to it. A store may return its own immutable copy.
// An id may share memory with the request's session: a store that keeps an
// id beyond the call (as a map key, say) keeps a copy. Every method must be safe for concurrent use
// and honour ctx's cancellation and deadline where it does I/O.
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
// extend idle sessions cheaply; a missing record is not an error.
type Toucher interface {
	Touch(ctx context.Context, id string, ttl time.Duration) error
}

// TTLGetter is implemented by stores that report, in the same round trip as
// the read, how long a record has left to live. It lets the middleware decide
// when a touch is due without writing a timestamp on every request.
type TTLGetter interface {
	GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error)
}

// CompareAndSetter is implemented by stores with an atomic conditional write.
//
// CompareAndSet stores data under id for ttl only if the record currently
// stored is byte-for-byte old; a nil old means "only if absent". It reports
// whether the write happened. With it, concurrent requests that change
// different keys of one session both persist, and a destroyed or rotated
// session is never written back by a slower request.
type CompareAndSetter interface {
	CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error)
}

// Closer is implemented by stores that hold resources (connections, background
// sweepers). Manager.Close calls it.
type Closer interface {
	Close() error
}
