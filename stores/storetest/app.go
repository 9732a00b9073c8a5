package storetest

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// testSecret signs the cookies of the apps NewApp builds.
var testSecret = []byte("storetest: a 32-byte signing key")

// NewApp returns a Fiber app with the session middleware configured by cfg
// (cfg.Store is required; Secrets defaults to a test key and Logger to the
// test's log at level Warn). It serves:
//
//	POST /login    new id (old one deleted), user "ada", flash "Welcome back"  200 "ok"
//	GET  /         "user=<user> flash=<flash>", each empty when there is none
//	POST /visit    increments the value "visits"                               200 the new count
//	POST /logout   Destroy, then flash "Signed out"                            200 "ok"
//	POST /destroy  Destroy alone                                               200 "ok"
//	POST /key/:k   sets the value k to "v"                                     200 "ok"
//	GET  /keys     the values' keys, sorted, joined by ","
//
// A request whose store call fails gets the ErrorHandler's answer, by
// default 500 "Internal Server Error".
func NewApp(t testing.TB, cfg session.Config[string, string]) *fiber.App {
	t.Helper()
	if cfg.Store == nil {
		t.Fatal("storetest.NewApp: cfg.Store is nil")
	}
	m := newManager(t, cfg)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	// on answers 200 with what f returns for the request's session.
	on := func(f func(c *fiber.Ctx, s *session.Session[string, string]) string) fiber.Handler {
		return func(c *fiber.Ctx) error {
			s, err := m.Get(c)
			if err != nil {
				return err
			}
			return c.SendString(f(c, s))
		}
	}
	type sess = session.Session[string, string]
	app.Post("/login", on(func(_ *fiber.Ctx, s *sess) string {
		s.RegenerateID(true)
		s.Set("user", "ada")
		s.Flash("notice", "Welcome back")
		return "ok"
	}))
	app.Get("/", on(func(_ *fiber.Ctx, s *sess) string {
		u, _ := s.Get("user")
		f, _ := s.GetFlash("notice")
		return "user=" + u + " flash=" + f
	}))
	app.Post("/visit", on(func(_ *fiber.Ctx, s *sess) string {
		v, _ := s.Get("visits")
		n, _ := strconv.Atoi(v)
		s.Set("visits", strconv.Itoa(n+1))
		return strconv.Itoa(n + 1)
	}))
	app.Post("/logout", on(func(_ *fiber.Ctx, s *sess) string {
		s.Destroy()
		s.Flash("notice", "Signed out")
		return "ok"
	}))
	app.Post("/destroy", on(func(_ *fiber.Ctx, s *sess) string {
		s.Destroy()
		return "ok"
	}))
	app.Post("/key/:k", on(func(c *fiber.Ctx, s *sess) string {
		s.Set(strings.Clone(c.Params("k")), "v") // Params aliases the request buffer
		return "ok"
	}))
	app.Get("/keys", on(func(_ *fiber.Ctx, s *sess) string { return strings.Join(s.Keys(), ",") }))
	return app
}

// newManager returns a manager of cfg, whose Secrets default to a test key
// and Logger to the test's log at level Warn.
func newManager(t testing.TB, cfg session.Config[string, string]) *session.Manager[string, string] {
	t.Helper()
	if cfg.Secrets == nil {
		cfg.Secrets = [][]byte{testSecret}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	m, err := session.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// logWriter sends the middleware's log to the test's log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Browser sends requests to an app through app.Test and keeps the session
// cookie by hand, as a browser would: a Set-Cookie with a value replaces it,
// one that expires it removes it.
type Browser struct {
	t      testing.TB
	app    *fiber.App
	cookie string // the session cookie's value; "" when there is none
	sent   bool   // the last response set the session cookie
}

// NewBrowser returns a browser of app with no cookie.
func NewBrowser(t testing.TB, app *fiber.App) *Browser { return &Browser{t: t, app: app} }

// Do sends a request with the session cookie, keeps what the response sets,
// and returns the status and body. It fails the test if the app does not
// answer within 30 seconds.
func (b *Browser) Do(method, path string) (int, string) {
	b.t.Helper()
	req := httptest.NewRequest(method, path, nil) // Host: example.com
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: b.cookie})
	}
	resp, err := b.app.Test(req, 30_000)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	b.sent = false
	for _, c := range resp.Cookies() {
		if c.Name != "session" {
			continue
		}
		b.cookie, b.sent = c.Value, true
		if c.MaxAge < 0 || !c.Expires.IsZero() && c.Expires.Before(time.Now()) {
			b.cookie = ""
		}
	}
	return resp.StatusCode, string(body)
}

// Expect sends a request and fails the test unless it answers 200 want.
func (b *Browser) Expect(method, path, want string) {
	b.t.Helper()
	if status, body := b.Do(method, path); status != http.StatusOK || body != want {
		b.t.Fatalf("%s %s = %d %q, want 200 %q", method, path, status, body, want)
	}
}

// Cookie returns the session cookie's value, "" when there is none.
func (b *Browser) Cookie() string { return b.cookie }

// Sent reports whether the last response set the session cookie (a value or
// its expiry).
func (b *Browser) Sent() bool { return b.sent }

// SetCookie replaces the session cookie's value ("" removes it).
func (b *Browser) SetCookie(value string) { b.cookie = value }

// ID returns the session id in the cookie, "" when there is none.
func (b *Browser) ID() string { return SessionID(b.cookie) }

// SessionID returns the id in a signed cookie value "id.signature".
func SessionID(cookie string) string {
	id, _, _ := strings.Cut(cookie, ".")
	return id
}
