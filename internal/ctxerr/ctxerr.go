// Package ctxerr gives the stores of this repository one way to report the
// failure of a call they made for a context (the internal rule allows every
// package under github.com/fibersession/session, in any of its modules).
package ctxerr

import (
	"context"
	"errors"
	"fmt"
)

// Wrap returns err prefixed with what failed ("redisstore: get"). When ctx
// has ended and err does not already say so, the result wraps ctx's error
// too, so that a call cut short by its context matches context.Canceled or
// context.DeadlineExceeded under errors.Is whatever its client returned. A
// nil err stays nil.
func Wrap(ctx context.Context, prefix string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %w: %w", prefix, cerr, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
