package session

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Manager holds a validated configuration and serves sessions of one pair of
// types. It is safe for concurrent use. New is a shortcut for
// NewManager(cfg).Handler().
type Manager[V, F any] struct {
	cfg     Config[V, F]
	be      *backend         // cfg.Store with its capabilities
	binder  Binder           // cfg.Store when it binds to each request, else nil
	cookie  *fasthttp.Cookie // the session cookie's name and attributes; never changed
	signer  *signer
	log     *slog.Logger
	now     func() time.Time // the clock; tests move it
	saving  saving[V, F]     // saves of one session take turns (commit.go)
	pool    sync.Pool        // *Session[V, F] of finished requests (load.go)
	decoded *decoded[V]      // values decoded by earlier requests, or nil (decoded.go)

	warnPlainHTTP, warnLongIdle sync.Once // warnings logged once per manager
}

// NewManager validates cfg, fills in its defaults and returns a Manager. A
// bad configuration is an error wrapping ErrConfig.
func NewManager[V, F any](cfg Config[V, F]) (*Manager[V, F], error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	m := &Manager[V, F]{
		cfg:    cfg,
		be:     newBackend(cfg.Store, false),
		cookie: newCookie(cfg),
		signer: newSigner(cfg.CookieName, cfg.Secrets),
		log:    cfg.Logger,
		now:    time.Now,
	}
	m.pool.New = func() any { return new(Session[V, F]) }
	m.decoded = newDecoded[V]()
	m.binder, _ = cfg.Store.(Binder)
	if cfg.OnEvent != nil {
		m.be.observe(cfg.OnEvent)
	}
	warnUntyped[V, F](m.log, cfg.Codec)
	return m, nil
}

// Serve runs next with m serving the request: Get, FromRequest and
// FromRequestCtx find m's session there, loaded on first use. After next it
// saves the session if it changed. It returns next's error, or the save's if
// the save failed; failed is true when that error is the session's (a failed
// save, or a *StoreError from next), for the framework's error handler. The
// Fiber middleware and FastHTTP are built on Serve, and so can adapters for
// other frameworks on fasthttp.
func (m *Manager[V, F]) Serve(ctx *fasthttp.RequestCtx, next func() error) (err error, failed bool) {
	ctx.SetUserValue(m, (*Session[V, F])(nil)) // served, not loaded yet
	err = next()
	if s, _ := ctx.UserValue(m).(*Session[V, F]); s != nil {
		serr := s.Save()
		s.served = true  // reused once the request ends (load.go)
		if serr != nil { // a Save in next failed: its error, nothing written
			return serr, true
		}
	}
	return err, err != nil && isStoreError(err)
}

// FastHTTP wraps a plain fasthttp handler: next can call FromRequestCtx, and
// the session is saved after next returns. A failed save is passed to
// onError, which should answer the request; nil logs the error and answers
// 500 "Internal Server Error", as the Fiber middleware's default does. A
// failed load is the error FromRequestCtx returns to next.
func (m *Manager[V, F]) FastHTTP(next fasthttp.RequestHandler, onError func(ctx *fasthttp.RequestCtx, err error)) fasthttp.RequestHandler {
	if onError == nil {
		onError = m.fail
	}
	return func(ctx *fasthttp.RequestCtx) {
		err, failed := m.Serve(ctx, func() error { next(ctx); return nil })
		if failed {
			onError(ctx, err)
		}
	}
}

// fail is the default answer to a session error.
func (m *Manager[V, F]) fail(ctx *fasthttp.RequestCtx, err error) { fail(m.log, ctx, err) }

// fail logs err and answers 500 with no internals: the default error
// handler of every entry point.
func fail(log *slog.Logger, ctx *fasthttp.RequestCtx, err error) {
	log.Error("session: load or save failed", "err", err, "path", string(ctx.Path()))
	ctx.Response.Reset()
	ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
}

// FromRequestCtx returns the session of a request served by m (through
// FastHTTP or Serve), like Get does for Fiber.
func (m *Manager[V, F]) FromRequestCtx(ctx *fasthttp.RequestCtx) (*Session[V, F], error) {
	return m.session(ctx)
}

// FromRequest returns the session of types V and F of a request served
// through FastHTTP, Serve or an adapter: Get for any framework on fasthttp.
// It fails with ErrNoMiddleware when no manager of these types serves the
// request, and with ErrAmbiguous when several do.
func FromRequest[V, F any](ctx *fasthttp.RequestCtx) (*Session[V, F], error) {
	var m *Manager[V, F]
	n := 0
	ctx.VisitUserValuesAll(func(k, _ any) {
		if km, ok := k.(*Manager[V, F]); ok {
			m, n = km, n+1
		}
	})
	switch {
	case n == 0:
		return nil, ErrNoMiddleware
	case n > 1:
		var names []string
		ctx.VisitUserValuesAll(func(k, _ any) {
			if km, ok := k.(*Manager[V, F]); ok {
				names = append(names, km.cfg.CookieName)
			}
		})
		return nil, fmt.Errorf("%w: %d managers of these types serve this request (cookies %q); call Get on the one you mean", ErrAmbiguous, n, names)
	}
	return m.session(ctx)
}

// session returns m's session of the request, loading it on first use.
func (m *Manager[V, F]) session(ctx *fasthttp.RequestCtx) (*Session[V, F], error) {
	s, served := ctx.UserValue(m).(*Session[V, F])
	switch {
	case !served:
		return nil, ErrNoMiddleware
	case s != nil:
		return s, nil
	}
	return m.load(ctx)
}

// Close closes the store if it implements io.Closer.
func (m *Manager[V, F]) Close() error {
	if c, ok := m.cfg.Store.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
