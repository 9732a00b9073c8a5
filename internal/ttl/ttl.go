// Package ttl rounds durations to the granularity a store or a cookie keeps.
// The session package and the stores of this repository share it (the
// internal rule allows every package under github.com/fibersession/session,
// in any of its modules).
package ttl

import "time"

// Round rounds d up to a whole number of units, and to at least one unit:
// a record or cookie never lives shorter than asked, and a zero TTL (which
// some stores read as "never expires") is never sent.
func Round(d, unit time.Duration) time.Duration {
	return max(d+unit-1, unit).Truncate(unit)
}
