package session

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"time"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// ErrNoMiddleware is returned by Get when the request did not pass through
// the session middleware of the requested types (not installed, skipped by
// Config.Next, or installed with other type arguments).
var ErrNoMiddleware = errors.New("session: no session middleware with these types on this request")

// StoreError wraps an error from the Store. The middleware answers requests
// whose handler returns one with Config.ErrorHandler.
type StoreError struct {
	Op  string // "get", "set", "delete", "touch"
	Err error
}

func (e *StoreError) Error() string { return "session: store " + e.Op + ": " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// Manager holds a validated configuration and serves sessions of one pair of
// types. It is safe for concurrent use. New is a shortcut for
// NewManager(cfg).Handler().
type Manager[V, F any] struct {
	cfg    Config[V, F]
	store  Store
	signer *signer
	log    *slog.Logger
	now    func() time.Time // the clock; tests move it
}

type ctxKey int

// managerKey is the request user value that holds the request's manager, as
// a handle: fasthttp closes every user value with a Close method at the end
// of a request, and a Manager's Close closes its store.
const managerKey ctxKey = 0

type handle[V, F any] struct{ m *Manager[V, F] }

// manager returns the manager that handles the request, or nil.
func manager[V, F any](ctx *fasthttp.RequestCtx) *Manager[V, F] {
	h, _ := ctx.UserValue(managerKey).(handle[V, F])
	return h.m
}

// NewManager validates cfg, fills in its defaults and returns a Manager.
func NewManager[V, F any](cfg Config[V, F]) (*Manager[V, F], error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	return &Manager[V, F]{
		cfg:    cfg,
		store:  cfg.Store,
		signer: newSigner(cfg.CookieName, cfg.Secrets),
		log:    cfg.Logger,
		now:    time.Now,
	}, nil
}

// New returns the Fiber middleware for cfg. A bad configuration is a
// programming error: New panics with the error NewManager would return (use
// NewManager to handle it instead).
func New[V, F any](cfg Config[V, F]) fiber.Handler {
	m, err := NewManager(cfg)
	if err != nil {
		panic(err)
	}
	return m.Handler()
}

// Get returns the request's session, loading it on the first call: the cookie
// is verified and the store read once per request, later calls return the
// same *Session. A missing, expired, undecodable or forged session yields a
// fresh one. Only a store failure is an error (a *StoreError).
func Get[V, F any](c *fiber.Ctx) (*Session[V, F], error) {
	m := manager[V, F](c.Context())
	if m == nil {
		return nil, ErrNoMiddleware
	}
	return m.load(c.Context())
}

// Handler returns the Fiber middleware: it makes the session available to
// Get and, after the rest of the chain, saves it if it changed.
func (m *Manager[V, F]) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if m.cfg.Next != nil && m.cfg.Next(c) {
			return c.Next()
		}
		ctx := c.Context()
		ctx.SetUserValue(managerKey, handle[V, F]{m})
		err := c.Next()
		if serr := m.finish(ctx); serr != nil {
			return m.cfg.ErrorHandler(c, serr)
		}
		if err != nil && isStoreError(err) {
			return m.cfg.ErrorHandler(c, err)
		}
		return err
	}
}

// Get is the typed shortcut for session.Get: the session of a request that
// passed through m's Handler.
func (m *Manager[V, F]) Get(c *fiber.Ctx) (*Session[V, F], error) {
	if manager[V, F](c.Context()) != m {
		return nil, ErrNoMiddleware
	}
	return m.load(c.Context())
}

// FastHTTP wraps a plain fasthttp handler: next can call FromRequestCtx, and
// the session is saved after next returns. A store failure answers 500 with
// "Internal Server Error" and is logged.
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

// Close closes the store if it has a Close method.
func (m *Manager[V, F]) Close() error {
	if c, ok := m.store.(Closer); ok {
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

// load returns the request's session, reading it on the first call.
func (m *Manager[V, F]) load(ctx *fasthttp.RequestCtx) (*Session[V, F], error) {
	if s, ok := ctx.UserValue(m).(*Session[V, F]); ok {
		return s, nil
	}
	s := &Session[V, F]{m: m, req: ctx, isNew: true, ttl: -1}
	s.ctx = requestContext{Context: context.Background(), req: ctx}
	s.rec.vals = s.first[:0]
	if id, key, ok := m.token(ctx); ok {
		copy(s.idBuf[:], id)
		s.client = unsafe.String(&s.idBuf[0], idLen)
		s.resign = key > 0
		if err := s.read(s.client); err != nil {
			return nil, err
		}
	}
	ctx.SetUserValue(m, s)
	return s, nil
}

// token returns the verified id the request carries. With several cookies of
// the session's name, they must not name different sessions.
func (m *Manager[V, F]) token(ctx *fasthttp.RequestCtx) (id []byte, key int, ok bool) {
	if m.cfg.Header != "" {
		if v := ctx.Request.Header.Peek(m.cfg.Header); len(v) > 0 {
			return m.signer.verify(v)
		}
	}
	for k, v := range ctx.Request.Header.Cookies() {
		if string(k) != m.cfg.CookieName {
			continue
		}
		vid, vkey, vok := m.signer.verify(v)
		if !vok {
			continue
		}
		if ok && string(vid) != string(id) {
			m.log.Debug("session: several valid cookies name different sessions; starting fresh")
			return nil, 0, false
		}
		id, key, ok = vid, vkey, true
	}
	return id, key, ok
}

// setCookie sends token (or, when token is "", an expired cookie), with the
// headers that keep shared caches from storing it.
func (m *Manager[V, F]) setCookie(ctx *fasthttp.RequestCtx, token string, maxAge time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(m.cfg.CookieName)
	c.SetValue(token)
	c.SetPath(m.cfg.CookiePath)
	c.SetDomain(m.cfg.CookieDomain)
	c.SetHTTPOnly(!m.cfg.CookieScriptable)
	c.SetSecure(!m.cfg.CookieInsecure)
	c.SetSameSite(sameSite(m.cfg.CookieSameSite))
	switch {
	case token == "":
		c.SetExpire(fasthttp.CookieExpireDelete)
	case maxAge > 0:
		c.SetMaxAge(int((maxAge + time.Second - 1) / time.Second))
	}
	h := &ctx.Response.Header
	h.SetCookie(c)
	if m.cfg.Header != "" {
		h.Set(m.cfg.Header, token)
	}
	VaryCookie(h)
}

// VaryCookie adds "Vary: Cookie" and `Cache-Control: no-cache="Set-Cookie"` to
// a response that sets a cookie, keeping what the headers already say. The
// middleware calls it whenever it sets its cookie; stores that set cookies of
// their own call it too.
func VaryCookie(h *fasthttp.ResponseHeader) {
	if !hasToken(h.Peek(fasthttp.HeaderVary), "Cookie") {
		h.Add(fasthttp.HeaderVary, "Cookie")
	}
	const nc = `no-cache="Set-Cookie"`
	if cc := h.Peek(fasthttp.HeaderCacheControl); len(cc) == 0 {
		h.Set(fasthttp.HeaderCacheControl, nc)
	} else if !hasToken(cc, nc) {
		h.Set(fasthttp.HeaderCacheControl, string(cc)+", "+nc)
	}
}

// hasToken reports whether the comma-separated list has tok (ASCII case-insensitive).
func hasToken(list []byte, tok string) bool {
	for item := range bytes.SplitSeq(list, []byte{','}) {
		if bytes.EqualFold(bytes.TrimSpace(item), []byte(tok)) {
			return true
		}
	}
	return false
}

func storeErr(op string, err error) error { return &StoreError{Op: op, Err: err} }

func isStoreError(err error) bool {
	var se *StoreError
	return errors.As(err, &se)
}
