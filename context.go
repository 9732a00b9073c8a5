package session

import (
	"context"

	"github.com/valyala/fasthttp"
)

// requestContext is the context of a session's store calls: a background
// context (fasthttp does not cancel a request's context) that also carries
// the request, for stores that keep their data in it (stores/cookie).
type requestContext struct {
	context.Context
	req *fasthttp.RequestCtx
}

type requestKey struct{}

func (c *requestContext) Value(key any) any {
	if key == (requestKey{}) {
		return c.req
	}
	return c.Context.Value(key)
}

// RequestCtx returns the request on whose behalf a store call is made, or nil
// when ctx does not come from the session middleware. Stores that keep the
// record in the request itself (such as an encrypted cookie) use it.
func RequestCtx(ctx context.Context) *fasthttp.RequestCtx {
	req, _ := ctx.Value(requestKey{}).(*fasthttp.RequestCtx)
	return req
}

// context returns the context for one store call, bounded by
// Config.StoreTimeout when that is set.
func (s *Session[V, F]) context() (context.Context, context.CancelFunc) {
	if d := s.m.cfg.StoreTimeout; d > 0 {
		return context.WithTimeout(&s.ctx, d)
	}
	return &s.ctx, noop
}

func noop() {}
