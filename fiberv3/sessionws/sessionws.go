// Package sessionws serves WebSocket routes of a Fiber v3 app
// (github.com/gofiber/contrib/v3/websocket) with the session of the upgrading
// request, from github.com/fibersession/session; it is the Fiber v3
// counterpart of github.com/fibersession/session/sessionws.
//
//	m, err := fiberv3.NewManager(fiberv3.Config[User, Msg]{...})
//	app.Use(m.Handler())
//	app.Get("/ws", sessionws.New(m.Manager, func(c *websocket.Conn, s *session.Session[User, Msg]) {
//		u, _ := s.Get("user") // the session the request's cookie names
//		...
//	}))
//
// The session is loaded before the upgrade, so a request without a live
// session is refused with an HTTP status, never upgraded. It is then
// detached from the request (see session.Manager.LoadRequest): it lives as
// long as the connection, Reload reads what HTTP requests wrote meanwhile,
// and Save merges with their saves. The session is saved once more when the
// handler returns. A WebSocket has no response to carry a cookie, so a Save
// after RegenerateID, or one that would start a new session, fails with an
// error wrapping session.ErrDetached and writes nothing; Destroy followed by
// Save ends the session for every later request.
package sessionws

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"

	"github.com/gofiber/contrib/v3/websocket"
	"github.com/gofiber/fiber/v3"

	"github.com/fibersession/session"
)

// Config configures New. The zero value works: every field has a default.
type Config struct {
	// Next, when it returns true, skips the handler for the request: it goes
	// on to the next handler of the route, and no session is loaded.
	Next func(c fiber.Ctx) bool

	// Unauthorized answers a WebSocket handshake whose request names no live
	// session: no cookie (or header), a cookie that does not verify, or one
	// whose session expired or was destroyed. The request is not upgraded.
	// Default: 401 Unauthorized.
	Unauthorized fiber.Handler

	// ErrorHandler answers a WebSocket handshake whose session could not be
	// loaded: the store failed (a *session.StoreError), or it cannot load
	// sessions without the request's response (session.ErrUnsupported, a
	// store that keeps sessions in the cookie). The request is not upgraded.
	// Default: log the error with slog.Default() and answer 500 with the
	// plain text "Internal Server Error" (no internals).
	ErrorHandler fiber.ErrorHandler

	// OnSave is called once per connection, after the handler returned and
	// the session was saved, with the error of that save: nil when it wrote
	// the changes or there were none. It is not called when the handler
	// panics (nothing is saved then, as in an HTTP request). Default: log a
	// non-nil error with slog.Default().
	OnSave func(err error)

	// WebSocket configures the upgrade and the connection: origins, buffer
	// sizes, subprotocols, compression, the panic handler. Its Next is ignored:
	// use this Config's Next. An empty Origins does not accept every origin, as
	// it does in contrib: it accepts a handshake without an Origin header (not a
	// browser) or whose Origin names the host the request was sent to, and
	// refuses any other with 403 Forbidden before the session is loaded. A
	// browser sends the session cookie with a handshake from a page of another
	// origin of the same site (a sibling subdomain; any site with
	// SameSite=None), and the cookie alone must not open a socket (cross-site
	// WebSocket hijacking). Set Origins to the origins that may connect, or to
	// []string{"*"} for any.
	WebSocket websocket.Config
}

// New returns a handler for a WebSocket route of m's sessions (with the
// fiberv3 middleware, m is its Manager's embedded core, m.Manager). For each
// request it:
//
//  1. answers a request that is not a WebSocket handshake with 426 Upgrade
//     Required (through the app's error handler, as contrib's websocket does
//     when the upgrade fails);
//  2. with Config.WebSocket.Origins empty, refuses a cross-origin handshake
//     with 403 Forbidden (see Config.WebSocket);
//  3. loads the session the request names, verified as the middleware does
//     (session.Manager.LoadRequest), and refuses the request with
//     Config.Unauthorized when there is none, or Config.ErrorHandler when
//     the store fails, without upgrading;
//  4. upgrades the connection and runs handler with it and the session;
//  5. when handler returns, saves the session (writing only what changed,
//     nothing when nothing did) and passes the result to Config.OnSave.
//     After a Save of handler's that failed, this one returns the same
//     error without writing (the failed write may yet land), unless handler
//     called Reload since.
//
// The session middleware (fiberv3.New) need not be on the route. The
// session belongs to handler's goroutine: like every session.Session, it is
// not safe for use by several goroutines at once, so a handler that reads
// and writes the socket from two goroutines must share it under a lock. A
// session is read once, at the handshake: call Reload to see what HTTP
// requests changed since (Stored is false after Reload when the session was
// destroyed or expired meanwhile), and Save to write before the connection
// ends. A Save that writes extends the session's idle expiry, and so does
// one after Touch; a connection that does neither for longer than the idle
// timeout outlives its session.
func New[V, F any](m *session.Manager[V, F], handler func(*websocket.Conn, *session.Session[V, F]), config ...Config) fiber.Handler {
	var cfg Config
	if len(config) > 0 {
		cfg = config[0]
	}
	if cfg.Unauthorized == nil {
		cfg.Unauthorized = func(c fiber.Ctx) error { return c.SendStatus(fiber.StatusUnauthorized) }
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = func(c fiber.Ctx, err error) error {
			slog.Default().Error("sessionws: loading the session failed", "err", err, "path", c.Path())
			return c.Status(fiber.StatusInternalServerError).SendString("Internal Server Error")
		}
	}
	if cfg.OnSave == nil {
		cfg.OnSave = func(err error) {
			if err != nil {
				slog.Default().Error("sessionws: saving the session failed", "err", err)
			}
		}
	}
	checkOrigin := len(cfg.WebSocket.Origins) == 0
	cfg.WebSocket.Next = nil

	return func(c fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		if !websocket.IsWebSocketUpgrade(c) {
			return fiber.ErrUpgradeRequired
		}
		if checkOrigin && !sameOrigin(c.Get(fiber.HeaderOrigin), c.RequestCtx().Host()) {
			return fiber.ErrForbidden
		}
		s, err := m.LoadRequest(c.RequestCtx())
		switch {
		case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrBadToken):
			return cfg.Unauthorized(c)
		case err != nil:
			return cfg.ErrorHandler(c, err)
		}
		// The upgrader is contrib's, made for this request so that the
		// connection's handler holds this request's session.
		return websocket.New(func(conn *websocket.Conn) {
			handler(conn, s)
			cfg.OnSave(s.Save())
		}, cfg.WebSocket)(c)
	}
}

// sameOrigin reports whether origin, a handshake's Origin header, is absent
// or names host, the host (and port) the request was sent to: the check the
// WebSocket library makes by default (github.com/fasthttp/websocket), which
// contrib replaces with its Origins list.
func sameOrigin(origin string, host []byte) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, string(host))
}
