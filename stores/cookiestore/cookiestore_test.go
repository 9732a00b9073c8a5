package cookiestore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
)

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
)

// app is a Fiber app whose routes drive a session kept in the cookie store.
type app struct {
	t       *testing.T
	fiber   *fiber.App
	cookies map[string]string
	handled error
}

func newApp(t *testing.T, keys ...[]byte) *app {
	st, err := New(Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, cookies: map[string]string{}}
	m, err := session.NewManager(session.Config[string, string]{
		Store:   st,
		Secrets: [][]byte{key1},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			a.handled = err
			return c.Status(500).SendString("Internal Server Error")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a.fiber = fiber.New(fiber.Config{ReadBufferSize: 16 << 10})
	a.fiber.Use(m.Handler())
	handle := func(fn func(s *session.Session[string, string], c *fiber.Ctx) string) fiber.Handler {
		return func(c *fiber.Ctx) error {
			s, err := m.Get(c)
			if err != nil {
				return err
			}
			return c.SendString(fn(s, c))
		}
	}
	a.fiber.Post("/login", handle(func(s *session.Session[string, string], c *fiber.Ctx) string {
		s.RegenerateID(true)
		s.Set("user", c.Query("name", "ada"))
		s.Flash("n", "Welcome")
		return ""
	}))
	a.fiber.Post("/rotate", handle(func(s *session.Session[string, string], c *fiber.Ctx) string {
		s.RegenerateID(false)
		return ""
	}))
	a.fiber.Post("/logout", handle(func(s *session.Session[string, string], c *fiber.Ctx) string {
		s.Destroy()
		s.Flash("n", "Signed out")
		return ""
	}))
	a.fiber.Post("/big", handle(func(s *session.Session[string, string], c *fiber.Ctx) string {
		s.Set("big", strings.Repeat("x", 5000))
		return ""
	}))
	a.fiber.Get("/", handle(func(s *session.Session[string, string], c *fiber.Ctx) string {
		u, _ := s.Get("user")
		f, _ := s.GetFlash("n")
		return u + "|" + f
	}))
	return a
}

func (a *app) do(method, path string) (*http.Response, string) {
	a.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range a.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := a.fiber.Test(req)
	if err != nil {
		a.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Value == "" {
			delete(a.cookies, c.Name)
		} else {
			a.cookies[c.Name] = c.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (a *app) get() string {
	a.t.Helper()
	_, b := a.do(http.MethodGet, "/")
	return b
}

func TestLoginFlashLogout(t *testing.T) {
	a := newApp(t, key1)
	a.do(http.MethodPost, "/login")
	if a.cookies["session_data"] == "" || a.cookies["session"] == "" {
		t.Fatalf("cookies after login: %v", a.cookies)
	}
	if got := a.get(); got != "ada|Welcome" {
		t.Errorf("after login: %q", got)
	}
	if got := a.get(); got != "ada|" {
		t.Errorf("flash shown twice: %q", got)
	}
	loggedIn := a.cookies["session_data"]
	resp, _ := a.do(http.MethodPost, "/logout")
	if v := resp.Header.Get("Vary"); v != "Cookie" {
		t.Errorf("Vary %q", v)
	}
	if got := a.get(); got != "|Signed out" {
		t.Errorf("after logout: %q", got)
	}
	if a.cookies["session_data"] == loggedIn {
		t.Error("the logged-in data cookie survived logout")
	}
}

func TestRotation(t *testing.T) {
	a := newApp(t, key1)
	a.do(http.MethodPost, "/login")
	before := a.cookies["session"]
	a.do(http.MethodPost, "/rotate") // the grace copy of the old id is not written
	if a.cookies["session"] == before {
		t.Fatal("no new id")
	}
	if got := a.get(); got != "ada|" {
		t.Errorf("after rotation: %q", got)
	}
}

func TestBadCookies(t *testing.T) {
	a := newApp(t, key1)
	a.do(http.MethodPost, "/login")
	a.get()
	good := a.cookies["session_data"]
	for name, v := range map[string]string{
		"tampered":  good[:20] + flip(good[20:21]) + good[21:],
		"truncated": good[:len(good)/2],
		"garbage":   "!!!",
		"empty":     "",
		"wrong key": func() string { b := newApp(t, key2); b.do(http.MethodPost, "/login"); return b.cookies["session_data"] }(),
		"oversized": strings.Repeat("A", 8000),
	} {
		a.cookies["session_data"] = v
		if got := a.get(); got != "|" {
			t.Errorf("%s: %q, want a fresh session", name, got)
		}
	}
	// Another session's data cookie does not open this session.
	b := newApp(t, key1)
	b.do(http.MethodPost, "/login?name=eve")
	a.cookies["session_data"] = b.cookies["session_data"]
	if got := a.get(); got != "|" {
		t.Errorf("a data cookie moved between sessions opened %q", got)
	}
}

func flip(c string) string {
	if c == "A" {
		return "B"
	}
	return "A"
}

func TestKeyRotation(t *testing.T) {
	a := newApp(t, key1)
	a.do(http.MethodPost, "/login")
	b := newApp(t, key2, key1)
	b.cookies = a.cookies
	if got := b.get(); got != "ada|Welcome" {
		t.Errorf("a cookie sealed with an older key: %q", got)
	}
}

func TestTooLarge(t *testing.T) {
	a := newApp(t, key1)
	a.do(http.MethodPost, "/login")
	before := a.cookies["session_data"]
	resp, _ := a.do(http.MethodPost, "/big")
	if resp.StatusCode != 500 || !errors.Is(a.handled, ErrTooLarge) {
		t.Errorf("status %d, error %v", resp.StatusCode, a.handled)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "session_data" {
			t.Errorf("an oversized cookie was emitted (%d bytes)", len(c.Value))
		}
	}
	if a.cookies["session_data"] != before {
		t.Error("the stored cookie changed")
	}
}

func TestOutsideRequest(t *testing.T) {
	st, _ := New(Config{Keys: [][]byte{key1}})
	if _, err := st.Get(context.Background(), "x"); !errors.Is(err, ErrNoRequest) {
		t.Errorf("Get: %v", err)
	}
	if err := st.Set(context.Background(), "x", []byte("y"), time.Minute); !errors.Is(err, ErrNoRequest) {
		t.Errorf("Set: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no key":       {},
		"bad key size": {Keys: [][]byte{[]byte("short")}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzOpen(f *testing.F) {
	st, _ := New(Config{Keys: [][]byte{key1}})
	f.Add([]byte(st.seal(strings.Repeat("a", 43), []byte("record"), time.Now().Add(time.Hour))))
	f.Add([]byte(""))
	f.Add([]byte("AAAA"))
	f.Fuzz(func(t *testing.T, value []byte) {
		s, ok := st.open(value)
		if !ok {
			return
		}
		again, ok := st.open([]byte(st.seal(s.id, s.data, s.expires)))
		if !ok || again.id != s.id || string(again.data) != string(s.data) || !again.expires.Equal(s.expires) {
			t.Fatalf("re-sealed %+v opens as %+v", s, again)
		}
	})
}

// TestCookieAttributes checks that the data cookie travels with the session
// cookie: it takes its Path, Domain, Secure and SameSite from the
// middleware's configuration, and is HttpOnly even when the session cookie
// is not.
func TestCookieAttributes(t *testing.T) {
	st, err := New(Config{Keys: [][]byte{key1}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(session.Config[string, string]{
		Store: st, Secrets: [][]byte{key1}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		CookiePath: "/app", CookieDomain: "example.com", CookieSameSite: "Strict", CookieScriptable: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	m.FastHTTP(func(ctx *fasthttp.RequestCtx) {
		if s, err := m.FromRequestCtx(ctx); err == nil {
			s.Set("user", "ada")
		}
	}, nil)(&ctx)
	data := string(ctx.Response.Header.PeekCookie("session_data"))
	for _, want := range []string{"path=/app", "domain=example.com", "SameSite=Strict", "secure", "HttpOnly", "max-age="} {
		if !strings.Contains(data, want) {
			t.Errorf("data cookie %q lacks %q", data, want)
		}
	}
}
