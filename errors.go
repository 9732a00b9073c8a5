package session

import (
	"errors"
	"fmt"

	"github.com/fibersession/session/internal/errs"
)

// Errors of the session package. Every error the package returns is one of
// these, wraps one of them, or is a *StoreError.
var (
	// ErrNotFound is what a Store's Get returns when a record is absent or
	// has expired. Stores must return it (or an error wrapping it) and
	// nothing else for a missing record: any other error means the store is
	// unavailable.
	ErrNotFound = errNotFound() // "session: record not found"

	// ErrNoMiddleware is returned by Get when the request did not pass
	// through a session middleware of the requested types (not installed,
	// skipped by Config.Next, or installed with other type arguments), and
	// by a Manager's Get when it did not pass through that manager's.
	ErrNoMiddleware = errors.New("session: no session middleware with these types on this request")

	// ErrAmbiguous is wrapped by the error of Get and FromRequest when
	// several managers of the requested types serve the request; the error
	// names their cookies. Each Manager's own Get still works.
	ErrAmbiguous = errors.New("session: several session middlewares with these types on this request")

	// ErrConfig is wrapped by every error NewManager returns for a bad
	// configuration.
	ErrConfig = errors.New("session: invalid configuration")

	// ErrShortSecret is the configuration error for a secret shorter than 32
	// bytes. It wraps ErrConfig.
	ErrShortSecret = fmt.Errorf("%w: every secret must be at least 32 bytes", ErrConfig)

	// ErrConflict is the error of a *StoreError from Save when a
	// compare-and-set store kept changing under it for too many attempts.
	ErrConflict = errors.New("session: too many concurrent writes to one session")

	// ErrStale is wrapped by the error of a Save on a StaleReader store
	// (one that may serve a read from a cache) when a key the request read
	// and then set or unset holds another value in the store than the one
	// read: the read was outdated, or another request changed the key
	// meanwhile. Nothing of the request is written then; Update merges
	// instead.
	ErrStale = errors.New("session: a value this request read and then changed was changed by another request first")

	// ErrEncode is wrapped by the error of a Save that could not encode a
	// value or flash message with the Codec; nothing is stored then.
	ErrEncode = errors.New("session: a value does not encode")

	// ErrTooLarge is wrapped by the error of a Save whose record would be
	// larger than Config.MaxRecordSize; nothing is stored then.
	ErrTooLarge = errors.New("session: record larger than Config.MaxRecordSize")

	// ErrBadToken is returned by Manager.Load and Manager.Destroy for a
	// token that does not verify: malformed, forged, or signed with a key no
	// longer in Config.Secrets.
	ErrBadToken = errors.New("session: token does not verify")

	// ErrDetached is wrapped by the error of a Save of a detached session
	// (Manager.Load, LoadID, LoadRequest) that would need a cookie, which
	// only an HTTP response can carry: after RegenerateID, or to start a new
	// session (values set after Destroy, or after the record was found
	// gone). Nothing is written then.
	ErrDetached = errors.New("session: a detached session cannot rotate its id or start anew (no response to carry the cookie)")

	// ErrCSRF is wrapped by the error of every request the CSRF protection
	// refuses; the error says why: a cross-origin request, a missing token,
	// or a wrong one.
	ErrCSRF = errors.New("session: CSRF check failed")

	// ErrNoCSRF is returned by CSRFToken when no CSRF middleware serves the
	// request (not installed on the route, or skipped by CSRFConfig.Next).
	ErrNoCSRF = errors.New("session: no CSRF middleware on this request")
)

// errNotFound returns the sentinel that the stores inside this module
// (stores/memory, which this package imports for its default store) also
// return. It lives in an internal package so that both can reach it; io/fs
// declares its ErrNotExist the same way.
func errNotFound() error { return errs.ErrNotFound }

// StoreError is the error of a Store call that failed: Get and Save return
// it, and the middleware answers it with Config.ErrorHandler.
type StoreError struct {
	Op  string // the call that failed: "get", "set", "delete" or "touch"
	Err error  // the store's error
}

// Error says what failed: "session: store get: " and the store's error.
func (e *StoreError) Error() string { return "session: store " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

func storeErr(op string, err error) error { return &StoreError{Op: op, Err: err} }

// isStoreError reports whether err is or wraps a *StoreError. (Its target
// escapes: call it only for a non-nil err.)
func isStoreError(err error) bool {
	var se *StoreError
	return errors.As(err, &se)
}
