package fiberv3

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v3"

	"github.com/fibersession/session"
)

// CSRFConfig configures the Fiber v3 CSRF middleware: the embedded
// session.CSRFConfig with the core's fields and defaults (field, header and
// cookie names, trusted origins), except its Next and ErrorHandler, which
// take Fiber v2's context and must stay nil; set this Config's instead.
type CSRFConfig struct {
	// CSRFConfig is the core's configuration. Its Next and ErrorHandler must
	// be nil.
	session.CSRFConfig

	// Next, when it returns true, skips the protection for the request.
	Next func(c fiber.Ctx) bool

	// ErrorHandler answers a refused request; err wraps session.ErrCSRF and
	// says why. Default: 403 with the plain text "Forbidden".
	ErrorHandler func(c fiber.Ctx, err error) error
}

// CSRF is the Fiber v3 middleware of session.CSRF: the same two layers (an
// Origin and Sec-Fetch-Site check, and session-bound tokens), with the
// request's own origin taken from v3's Scheme and Host, which honour the
// app's TrustProxy settings.
type CSRF struct {
	// CSRF is the core protection; its Token and Check serve any fasthttp
	// request.
	*session.CSRF

	next    func(c fiber.Ctx) bool
	onError func(c fiber.Ctx, err error) error
}

// NewCSRF returns the CSRF protection of m's sessions. Install its Handler
// after m's. A bad configuration is an error wrapping session.ErrConfig.
func NewCSRF[V, F any](m *Manager[V, F], cfg CSRFConfig) (*CSRF, error) {
	if cfg.CSRFConfig.Next != nil || cfg.CSRFConfig.ErrorHandler != nil {
		return nil, fmt.Errorf("%w: fiberv3: session.CSRFConfig's Next and ErrorHandler take a Fiber v2 context; set them on fiberv3.CSRFConfig", session.ErrConfig)
	}
	core, err := session.NewCSRF(m.Manager, cfg.CSRFConfig)
	if err != nil {
		return nil, err
	}
	p := &CSRF{CSRF: core, next: cfg.Next, onError: cfg.ErrorHandler}
	if p.onError == nil {
		p.onError = func(c fiber.Ctx, _ error) error {
			return c.Status(fiber.StatusForbidden).SendString("Forbidden")
		}
	}
	return p, nil
}

// Handler returns the Fiber v3 middleware: an unsafe request (anything but
// GET, HEAD and OPTIONS) that fails a check is answered by
// CSRFConfig.ErrorHandler and never reaches the next handler; a store
// failure while loading the session is returned, for the session
// middleware's error handler.
func (p *CSRF) Handler() fiber.Handler {
	return func(c fiber.Ctx) error {
		if p.next != nil && p.next(c) {
			return c.Next()
		}
		if err := p.Check(c.RequestCtx(), c.Scheme()+"://"+c.Host()); err != nil {
			if errors.Is(err, session.ErrCSRF) {
				return p.onError(c, err)
			}
			return err
		}
		return c.Next()
	}
}

// CSRFToken returns a token from the CSRF middleware serving c, for a form's
// hidden field or a fetch's header (see session.CSRF.Token). It fails with
// session.ErrNoCSRF when none serves the request.
func CSRFToken(c fiber.Ctx) (string, error) { return session.CSRFTokenFromRequest(c.RequestCtx()) }
