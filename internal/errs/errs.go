// Package errs holds the sentinel errors shared by the session package and the
// stores that live inside the core module (which the session package imports).
package errs

import "errors"

// ErrNotFound is returned by a store's Get when a record is absent or expired.
var ErrNotFound = errors.New("session: record not found")
