package session

import (
	"io"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
)

// Manager holds a validated configuration and serves sessions of one pair of
// types. It is safe for concurrent use. New is a shortcut for
// NewManager(cfg).Handler().
type Manager[V, F any] struct {
	cfg    Config[V, F]
	be     *backend         // cfg.Store with its capabilities
	binder Binder           // cfg.Store when it binds to each request, else nil
	cookie *fasthttp.Cookie // the session cookie's name and attributes; never changed
	signer *signer
	log    *slog.Logger
	now    func() time.Time // the clock; tests move it
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
	m.binder, _ = cfg.Store.(Binder)
	return m, nil
}

// FastHTTP wraps a plain fasthttp handler: next can call FromRequestCtx, and
// the session is saved after next returns. A failed save answers 500 with
// "Internal Server Error" and is logged; a failed load is the error
// FromRequestCtx returns to next.
func (m *Manager[V, F]) FastHTTP(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetUserValue(managerKey, handle[V, F]{m})
		next(ctx)
		if err := m.finish(ctx); err != nil {
			m.log.Error("session: save failed", "err", err, "path", string(ctx.Path()))
			ctx.Response.Reset()
			ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
		}
	}
}

// FromRequestCtx returns the session of a request served through FastHTTP,
// like Get does for Fiber.
func (m *Manager[V, F]) FromRequestCtx(ctx *fasthttp.RequestCtx) (*Session[V, F], error) {
	if manager[V, F](ctx) != m {
		return nil, ErrNoMiddleware
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

// finish saves the request's session, if it was loaded.
func (m *Manager[V, F]) finish(ctx *fasthttp.RequestCtx) error {
	s, ok := ctx.UserValue(m).(*Session[V, F])
	if !ok {
		return nil
	}
	return s.Save()
}

type ctxKey int

// managerKey is the request user value that holds the request's manager, as
// a handle: fasthttp closes every user value with a Close method at the end
// of a request, and a Manager's Close closes its store. The request's session
// is the user value under the manager itself.
const managerKey ctxKey = 0

type handle[V, F any] struct{ m *Manager[V, F] }

// manager returns the manager that handles the request, or nil.
func manager[V, F any](ctx *fasthttp.RequestCtx) *Manager[V, F] {
	h, _ := ctx.UserValue(managerKey).(handle[V, F])
	return h.m
}
