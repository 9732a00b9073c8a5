// Package fiberv3 is the Fiber v3 middleware of github.com/fibersession/session:
// the same typed, signed sessions with flash, the same Config and stores as the
// Fiber v2 middleware, with Next and ErrorHandler taking v3's fiber.Ctx.
//
//	app.Use(fiberv3.New(fiberv3.Config[User, Msg]{
//		Config: session.Config[User, Msg]{Secrets: keys, Store: store},
//	}))
//	app.Post("/login", func(c fiber.Ctx) error {
//		s, err := fiberv3.Get[User, Msg](c) // *session.Session[User, Msg]
//		...
//	})
//
// Sessions are kept on the request's fasthttp.RequestCtx, so a request served
// by this middleware can also be reached with session.FromRequest and a core
// Manager's FromRequestCtx, given c.RequestCtx().
package fiberv3

import (
	"fmt"
	"log/slog"

	"github.com/gofiber/fiber/v3"

	"github.com/fibersession/session"
)

// Config configures the Fiber v3 middleware: the embedded session.Config is
// the core's configuration, with the same fields and defaults (filled in by
// NewManager), except its Next and ErrorHandler, which take Fiber v2's
// context and must stay nil; set this Config's Next and ErrorHandler instead.
type Config[V, F any] struct {
	// Config is the core's configuration: secrets, store, codec, logger,
	// timeouts, cookie and header settings, with the core's defaults. Its
	// Next and ErrorHandler must be nil.
	session.Config[V, F]

	// Next, when it returns true, skips the middleware for the request: the
	// session is unavailable (Get returns session.ErrNoMiddleware) and nothing
	// is saved.
	Next func(c fiber.Ctx) bool

	// ErrorHandler answers a request whose session could not be saved (the
	// store failed, or a value did not encode), and a request whose handler
	// returned a *session.StoreError (the store failed while loading). Its
	// return value is the middleware's. Default: log the error with
	// Config.Logger (slog.Default() when nil) and answer 500 with the plain
	// text "Internal Server Error" (no internals), as the v2 middleware does.
	ErrorHandler func(c fiber.Ctx, err error) error
}

// Manager serves sessions of one pair of types to Fiber v3 apps. It embeds the
// core *session.Manager, so Close, FromRequestCtx, FastHTTP and Serve are
// available on it; its own Handler and Get take v3's context and replace the
// core's Fiber v2 ones. It is safe for concurrent use.
type Manager[V, F any] struct {
	// Manager is the core manager that validated the configuration and
	// loads and saves the sessions.
	*session.Manager[V, F]

	next    func(c fiber.Ctx) bool
	onError func(c fiber.Ctx, err error) error
}

// NewManager validates cfg, fills in its defaults and returns a Manager. A bad
// configuration is an error wrapping session.ErrConfig, including a Next or
// ErrorHandler set on the embedded session.Config (a Fiber v2 hook this
// middleware would never call).
func NewManager[V, F any](cfg Config[V, F]) (*Manager[V, F], error) {
	if cfg.Config.Next != nil {
		return nil, fmt.Errorf("%w: fiberv3: session.Config.Next takes a Fiber v2 context and is never called by the Fiber v3 middleware; set Next on fiberv3.Config", session.ErrConfig)
	}
	if cfg.Config.ErrorHandler != nil {
		return nil, fmt.Errorf("%w: fiberv3: session.Config.ErrorHandler takes a Fiber v2 context and is never called by the Fiber v3 middleware; set ErrorHandler on fiberv3.Config", session.ErrConfig)
	}
	core, err := session.NewManager(cfg.Config)
	if err != nil {
		return nil, err
	}
	m := &Manager[V, F]{Manager: core, next: cfg.Next, onError: cfg.ErrorHandler}
	if m.onError == nil {
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		m.onError = func(c fiber.Ctx, err error) error { return fail(log, c, err) }
	}
	return m, nil
}

// fail is the default ErrorHandler: it logs err and answers 500 with no
// internals, replacing whatever response the handlers had written (including
// a session cookie that names an unsaved session).
func fail(log *slog.Logger, c fiber.Ctx, err error) error {
	ctx := c.RequestCtx()
	log.Error("session: load or save failed", "err", err, "path", string(ctx.Path()))
	ctx.Response.Reset()
	ctx.Error("Internal Server Error", fiber.StatusInternalServerError)
	return nil
}

// New returns the Fiber v3 middleware for cfg. A bad configuration is a
// programming error: New panics with the error NewManager would return (use
// NewManager to handle it instead).
func New[V, F any](cfg Config[V, F]) fiber.Handler {
	m, err := NewManager(cfg)
	if err != nil {
		panic(err)
	}
	return m.Handler()
}

// Handler returns the Fiber v3 middleware: it makes the session available to
// Get (loaded on first use, once per request) and, after the rest of the
// chain, saves it if it changed. A failed save, and a *session.StoreError the
// chain returns, are answered by Config.ErrorHandler; any other error of the
// chain is returned as it is, for the app's error handler.
func (m *Manager[V, F]) Handler() fiber.Handler {
	return func(c fiber.Ctx) error {
		if m.next != nil && m.next(c) {
			return c.Next()
		}
		err, failed := m.Serve(c.RequestCtx(), c.Next)
		if failed {
			return m.onError(c, err)
		}
		return err
	}
}

// Get returns the session of a request that passed through m's Handler,
// loading it on the first call. It works whatever other managers serve the
// request, of any types; a request m does not serve (not installed on the
// route, or skipped by Config.Next) is session.ErrNoMiddleware.
func (m *Manager[V, F]) Get(c fiber.Ctx) (*session.Session[V, F], error) {
	return m.FromRequestCtx(c.RequestCtx())
}

// Get returns the request's session of types V and F, loading it on the first
// call: the cookie is verified and the store read once per request, later
// calls return the same *session.Session. A missing, expired, undecodable or
// forged session yields a fresh one. A store failure is an error (a
// *session.StoreError); so is a request that no middleware of these types
// serves (session.ErrNoMiddleware), or that two or more do
// (session.ErrAmbiguous: use their Manager's Get).
func Get[V, F any](c fiber.Ctx) (*session.Session[V, F], error) {
	return session.FromRequest[V, F](c.RequestCtx())
}
