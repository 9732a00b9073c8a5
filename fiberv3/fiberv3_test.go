package fiberv3

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
)

var testKey = []byte("fiberv3 test key of thirty-two b")

type sess = session.Session[string, string]

// errDown is the error of a flakyStore that is switched off.
var errDown = errors.New("dial tcp 127.0.0.1:6379: connection refused (internal detail)")

// flakyStore is the memory store behind a switch that makes every call fail.
// It offers only the three Store methods, so no capability of the memory
// store bypasses the switch.
type flakyStore struct {
	mem  *memory.Store
	down atomic.Bool
	sets atomic.Int64
}

func newFlakyStore(t *testing.T) *flakyStore {
	st := &flakyStore{mem: memory.New(memory.Config{CleanupInterval: -1})}
	t.Cleanup(func() { _ = st.mem.Close() })
	return st
}

func (s *flakyStore) Get(ctx context.Context, id string) ([]byte, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.mem.Get(ctx, id)
}

func (s *flakyStore) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	s.sets.Add(1)
	if s.down.Load() {
		return errDown
	}
	return s.mem.Set(ctx, id, data, ttl)
}

func (s *flakyStore) Delete(ctx context.Context, id string) error {
	if s.down.Load() {
		return errDown
	}
	return s.mem.Delete(ctx, id)
}

// has reports whether the store holds a record under id.
func (s *flakyStore) has(t *testing.T, id string) bool {
	t.Helper()
	_, err := s.mem.Get(context.Background(), id)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("memory Get: %v", err)
	}
	return err == nil
}

// testConfig is a valid configuration over st whose log goes to logs.
func testConfig(st session.Store, logs io.Writer) Config[string, string] {
	if logs == nil {
		logs = io.Discard
	}
	return Config[string, string]{Config: session.Config[string, string]{
		Store:   st,
		Secrets: [][]byte{testKey},
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
	}}
}

// newApp returns a Fiber v3 app with m's middleware and the routes of the
// v2 middleware's store tests (stores/storetest.NewApp):
//
//	POST /login    new id (old one deleted), user "ada", flash "Welcome back"  200 "ok"
//	GET  /         "user=<user> flash=<flash>"
//	POST /visit    increments "visits"                                        200 the new count
//	POST /logout   Destroy, then flash "Signed out"                           200 "ok"
//	POST /destroy  Destroy alone                                              200 "ok"
//	GET  /id       the session's id
func newApp(m *Manager[string, string]) *fiber.App {
	app := fiber.New()
	app.Use(m.Handler())
	on := func(f func(c fiber.Ctx, s *sess) string) fiber.Handler {
		return func(c fiber.Ctx) error {
			s, err := Get[string, string](c)
			if err != nil {
				return err
			}
			return c.SendString(f(c, s))
		}
	}
	app.Post("/login", on(func(_ fiber.Ctx, s *sess) string {
		s.RegenerateID(true)
		s.Set("user", "ada")
		s.Flash("notice", "Welcome back")
		return "ok"
	}))
	app.Get("/", on(func(_ fiber.Ctx, s *sess) string {
		u, _ := s.Get("user")
		f, _ := s.GetFlash("notice")
		return "user=" + u + " flash=" + f
	}))
	app.Post("/visit", on(func(_ fiber.Ctx, s *sess) string {
		v, _ := s.Get("visits")
		n, _ := strconv.Atoi(v)
		s.Set("visits", strconv.Itoa(n+1))
		return strconv.Itoa(n + 1)
	}))
	app.Post("/logout", on(func(_ fiber.Ctx, s *sess) string {
		s.Destroy()
		s.Flash("notice", "Signed out")
		return "ok"
	}))
	app.Post("/destroy", on(func(_ fiber.Ctx, s *sess) string {
		s.Destroy()
		return "ok"
	}))
	app.Get("/id", on(func(_ fiber.Ctx, s *sess) string { return s.ID() }))
	return app
}

func newTestManager(t *testing.T, cfg Config[string, string]) *Manager[string, string] {
	t.Helper()
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// browser sends requests to an app through app.Test and keeps the cookies,
// by name, as a browser would: a Set-Cookie with a value replaces one, one
// that expires it removes it.
type browser struct {
	t       *testing.T
	app     *fiber.App
	cookies map[string]string
	last    *http.Response
}

func newBrowser(t *testing.T, app *fiber.App) *browser {
	return &browser{t: t, app: app, cookies: map[string]string{}}
}

func (b *browser) do(method, path string) (int, string) {
	b.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := b.app.Test(req, fiber.TestConfig{Timeout: 30 * time.Second})
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || !c.Expires.IsZero() && c.Expires.Before(time.Now()) {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	b.last = resp
	return resp.StatusCode, string(body)
}

// expect sends a request and fails the test unless it answers 200 want.
func (b *browser) expect(method, path, want string) {
	b.t.Helper()
	if status, body := b.do(method, path); status != http.StatusOK || body != want {
		b.t.Fatalf("%s %s = %d %q, want 200 %q", method, path, status, body, want)
	}
}

// id returns the session id in the cookie "session", "" when there is none.
func (b *browser) id() string {
	id, _, _ := strings.Cut(b.cookies["session"], ".")
	return id
}

// setCookies returns the Set-Cookie headers of the last response.
func (b *browser) setCookies() []string { return b.last.Header.Values("Set-Cookie") }

// Sign-in rotates the id and deletes the old record, the flash survives one
// redirect, and sign-out deletes the record and makes a copy of the
// signed-in cookie worthless: with Destroy alone the cookie is expired, with
// a flash after Destroy a new session shows it once.
func TestSignInFlashSignOut(t *testing.T) {
	for _, tc := range []struct{ name, path, flash string }{
		{"Destroy", "/destroy", ""},
		{"WithFlash", "/logout", "Signed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFlakyStore(t)
			b := newBrowser(t, newApp(newTestManager(t, testConfig(st, nil))))
			b.expect("GET", "/", "user= flash=")
			if len(b.setCookies()) != 0 || st.sets.Load() != 0 {
				t.Fatalf("an unchanged new session was stored (%d writes) or set a cookie %q", st.sets.Load(), b.setCookies())
			}
			b.expect("POST", "/visit", "1")
			anon := b.id()
			if anon == "" || !st.has(t, anon) {
				t.Fatalf("a changed new session: cookie id %q, stored %v", anon, anon != "" && st.has(t, anon))
			}
			sc := strings.Join(b.setCookies(), "\n")
			for _, want := range []string{"HttpOnly", "secure", "SameSite=Lax", "path=/"} {
				if !strings.Contains(sc, want) {
					t.Errorf("the session cookie %q lacks %s", sc, want)
				}
			}

			b.expect("POST", "/login", "ok")
			signedIn, id := b.cookies["session"], b.id()
			if id == "" || id == anon {
				t.Fatalf("sign-in kept the id %q (before: %q)", id, anon)
			}
			if !st.has(t, id) || st.has(t, anon) {
				t.Fatalf("after sign-in: new id stored %v, old id stored %v; want true, false", st.has(t, id), st.has(t, anon))
			}
			b.expect("GET", "/", "user=ada flash=Welcome back")
			b.expect("GET", "/", "user=ada flash=") // shown once
			b.expect("POST", "/visit", "2")         // the values moved to the new id

			b.expect("POST", tc.path, "ok")
			if st.has(t, id) {
				t.Error("sign-out left the record")
			}
			if tc.flash == "" {
				if _, ok := b.cookies["session"]; ok {
					t.Errorf("Destroy left the cookie %q, want it expired (Set-Cookie %q)", b.cookies["session"], b.setCookies())
				}
			} else {
				if next := b.id(); next == "" || next == id {
					t.Fatalf("the flash after Destroy is under the id %q, want a new one", next)
				}
				b.expect("GET", "/", "user= flash="+tc.flash)
				b.expect("GET", "/", "user= flash=")
			}
			b.cookies["session"] = signedIn // a stolen copy of the signed-in cookie
			b.expect("GET", "/", "user= flash=")
			if _, got := b.do("GET", "/id"); got == id {
				t.Error("the signed-in cookie was accepted again")
			}
		})
	}
}

// A cookie that does not verify gives a fresh session under a new id: the
// data of the session it names is not shown, nothing is written, and no
// cookie names the old id.
func TestTamperedCookie(t *testing.T) {
	st := newFlakyStore(t)
	app := newApp(newTestManager(t, testConfig(st, nil)))
	login := newBrowser(t, app)
	login.expect("POST", "/login", "ok")
	valid, id := login.cookies["session"], login.id()
	other := func(s string) string { // a base64url character other than s
		if s == "A" {
			return "B"
		}
		return "A"
	}
	// sign signs id with key as the design specifies: id "."
	// base64url(HMAC-SHA256(key, cookieName "|" id)).
	sign := func(key []byte, id string) string {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte("session|" + id))
		return id + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	if sign(testKey, id) != valid {
		t.Fatalf("the test signs %q, the middleware %q", sign(testKey, id), valid)
	}
	wrongKey := sign([]byte("another key, also thirty-two b!!"), id)
	for name, cookie := range map[string]string{
		"tampered id":        other(valid[:1]) + valid[1:],
		"tampered signature": valid[:len(valid)-1] + other(valid[len(valid)-1:]),
		"id only":            id,
		"wrong key":          wrongKey,
		"client-chosen id":   strings.Repeat("a", len(id)),
		"garbage":            "not a cookie at all",
	} {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t, app)
			b.cookies["session"] = cookie
			sets := st.sets.Load()
			b.expect("GET", "/", "user= flash=")
			if len(b.setCookies()) != 0 {
				t.Errorf("a bad cookie got a Set-Cookie: %q", b.setCookies())
			}
			_, got := b.do("GET", "/id")
			if got == id || len(got) != len(id) {
				t.Errorf("fresh session id %q (the signed-in one: %q)", got, id)
			}
			if n := st.sets.Load() - sets; n != 0 {
				t.Errorf("%d store writes for a bad cookie", n)
			}
		})
	}
	login.expect("GET", "/", "user=ada flash=Welcome back") // the real one still works
}

// A store that is down reaches the ErrorHandler as a *session.StoreError,
// whether it fails the load (the handler returns Get's error) or the save.
func TestStoreDown(t *testing.T) {
	st := newFlakyStore(t)
	var handled []error
	cfg := testConfig(st, nil)
	cfg.ErrorHandler = func(c fiber.Ctx, err error) error {
		handled = append(handled, err)
		return c.Status(fiber.StatusServiceUnavailable).SendString("try again later")
	}
	b := newBrowser(t, newApp(newTestManager(t, cfg)))
	b.expect("POST", "/login", "ok")
	st.down.Store(true)

	for _, tc := range []struct{ method, path, op string }{
		{"GET", "/", "get"},       // the load fails: Get's error, returned by the handler
		{"POST", "/visit", "get"}, // likewise
	} {
		handled = nil
		status, body := b.do(tc.method, tc.path)
		var se *session.StoreError
		if status != fiber.StatusServiceUnavailable || body != "try again later" || len(handled) != 1 || !errors.As(handled[0], &se) || se.Op != tc.op || !errors.Is(se, errDown) {
			t.Errorf("%s %s with the store down: %d %q, ErrorHandler got %v; want 503 from the handler with a *StoreError (%s)", tc.method, tc.path, status, body, handled, tc.op)
		}
	}

	// A failed save: a new session (no cookie, no load) that sets a value.
	fresh := newBrowser(t, b.app)
	handled = nil
	status, _ := fresh.do("POST", "/visit")
	var se *session.StoreError
	if status != fiber.StatusServiceUnavailable || len(handled) != 1 || !errors.As(handled[0], &se) || se.Op != "set" {
		t.Errorf("failed save: status %d, ErrorHandler got %v; want 503 with a *StoreError (set)", status, handled)
	}

	st.down.Store(false)
	b.expect("GET", "/", "user=ada flash=Welcome back") // nothing was lost
}

// The default ErrorHandler logs the error and answers 500 "Internal Server
// Error" with no internals, dropping what the handler had written (the
// cookie of a session that was not saved, too).
func TestDefaultErrorHandler(t *testing.T) {
	st := newFlakyStore(t)
	var logs bytes.Buffer
	app := newApp(newTestManager(t, testConfig(st, &logs)))
	app.Post("/partial", func(c fiber.Ctx) error { // writes a response, then the save fails
		s, err := Get[string, string](c)
		if err != nil {
			return err
		}
		s.Set("user", "ada")
		c.Set("X-Internal", "handler detail")
		c.Cookie(&fiber.Cookie{Name: "other", Value: "x"})
		return c.Status(fiber.StatusCreated).SendString("created for ada")
	})
	b := newBrowser(t, app)
	st.down.Store(true)
	status, body := b.do("POST", "/partial")
	if status != fiber.StatusInternalServerError || body != "Internal Server Error" {
		t.Errorf("default answer: %d %q, want 500 %q", status, body, "Internal Server Error")
	}
	if sc := b.setCookies(); len(sc) != 0 || b.last.Header.Get("X-Internal") != "" {
		t.Errorf("the handler's response survived the error: Set-Cookie %q, X-Internal %q", sc, b.last.Header.Get("X-Internal"))
	}
	if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), "path=/partial") {
		t.Errorf("the error was not logged with its path: %q", logs.String())
	}

	// Without a Logger, the default handler logs to slog.Default().
	var def bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, nil)))
	cfg := testConfig(st, nil)
	cfg.Logger = nil
	b = newBrowser(t, newApp(newTestManager(t, cfg)))
	if status, _ := b.do("POST", "/visit"); status != fiber.StatusInternalServerError || !strings.Contains(def.String(), "connection refused") {
		t.Errorf("no Logger: status %d, slog.Default got %q", status, def.String())
	}
}

// An error of the chain that is not the session's goes to the app's error
// handler, not the session's, and the session is still saved.
func TestOtherErrorsPassThrough(t *testing.T) {
	st := newFlakyStore(t)
	cfg := testConfig(st, nil)
	cfg.ErrorHandler = func(c fiber.Ctx, err error) error {
		t.Errorf("the session's ErrorHandler got %v", err)
		return err
	}
	m := newTestManager(t, cfg)
	app := newApp(m)
	app.Post("/teapot", func(c fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Set("user", "teapot")
		return fiber.ErrTeapot
	})
	b := newBrowser(t, app)
	if status, _ := b.do("POST", "/teapot"); status != fiber.StatusTeapot {
		t.Errorf("status %d, want %d from the app's error handler", status, fiber.StatusTeapot)
	}
	b.expect("GET", "/", "user=teapot flash=")
}

// Next skips the middleware: the session is unavailable and nothing is
// written; other paths are served as usual.
func TestNext(t *testing.T) {
	st := newFlakyStore(t)
	cfg := testConfig(st, nil)
	var asked atomic.Int64
	cfg.Next = func(c fiber.Ctx) bool { asked.Add(1); return strings.HasPrefix(c.Path(), "/static") }
	m := newTestManager(t, cfg)
	app := newApp(m)
	var getErr, mgetErr error
	app.Get("/static/x", func(c fiber.Ctx) error {
		_, getErr = Get[string, string](c)
		_, mgetErr = m.Get(c)
		return c.SendString("static")
	})
	b := newBrowser(t, app)
	b.expect("POST", "/login", "ok")
	b.expect("GET", "/static/x", "static")
	if !errors.Is(getErr, session.ErrNoMiddleware) || !errors.Is(mgetErr, session.ErrNoMiddleware) {
		t.Errorf("skipped request: Get %v, Manager.Get %v; want ErrNoMiddleware", getErr, mgetErr)
	}
	if len(b.setCookies()) != 0 {
		t.Errorf("a skipped request set cookies: %q", b.setCookies())
	}
	if asked.Load() != 2 {
		t.Errorf("Next was called %d times for 2 requests", asked.Load())
	}
	b.expect("GET", "/", "user=ada flash=Welcome back")
}

// The core manager is reachable through the embedded *session.Manager: its
// FromRequestCtx, and session.FromRequest, return the session Get returns.
func TestCoreManager(t *testing.T) {
	m := newTestManager(t, testConfig(newFlakyStore(t), nil))
	app := fiber.New()
	app.Use(m.Handler())
	app.Get("/", func(c fiber.Ctx) error {
		a, err := Get[string, string](c)
		if err != nil {
			return err
		}
		b, err1 := m.Get(c)
		x, err2 := m.Manager.FromRequestCtx(c.RequestCtx())
		y, err3 := session.FromRequest[string, string](c.RequestCtx())
		if err := errors.Join(err1, err2, err3); err != nil || a != b || a != x || a != y {
			t.Errorf("the four ways to a session disagree: %p %p %p %p (%v)", a, b, x, y, err)
		}
		return nil
	})
	newBrowser(t, app).expect("GET", "/", "")
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func newNamedManager[V, F any](t *testing.T, cookie string) *Manager[V, F] {
	t.Helper()
	m, err := NewManager(Config[V, F]{Config: session.Config[V, F]{
		Secrets: [][]byte{testKey}, CookieName: cookie, Logger: slog.New(slog.DiscardHandler),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// Two managers with different types on one route: each keeps its own cookie
// and values, and Get finds each by its types.
func TestTwoManagersDifferentTypes(t *testing.T) {
	auth := newNamedManager[string, string](t, "auth")
	cart := newNamedManager[int, string](t, "cart")
	app := fiber.New()
	app.Use(auth.Handler(), cart.Handler())
	app.Get("/", func(c fiber.Ctx) error {
		a, err := Get[string, string](c)
		if err != nil {
			return err
		}
		b, err := Get[int, string](c)
		if err != nil {
			return err
		}
		user, _ := a.Get("user")
		n, _ := b.Get("items")
		if c.Query("add") != "" {
			a.Set("user", "ada")
			b.Set("items", n+1)
		}
		return c.SendString(user + " " + strconv.Itoa(n))
	})
	b := newBrowser(t, app)
	b.expect("GET", "/?add=1", " 0")
	if b.cookies["auth"] == "" || b.cookies["cart"] == "" || b.cookies["auth"] == b.cookies["cart"] {
		t.Fatalf("cookies %v: want one of each, different", b.cookies)
	}
	b.expect("GET", "/?add=1", "ada 1")
	b.expect("GET", "/", "ada 2")
}

// Two managers with the same types on one route: Get cannot choose and says
// so (session.ErrAmbiguous, naming both cookies); each Manager's Get works
// and their sessions stay apart.
func TestTwoManagersSameTypes(t *testing.T) {
	first := newNamedManager[string, string](t, "first")
	second := newNamedManager[string, string](t, "second")
	app := fiber.New()
	app.Use(first.Handler(), second.Handler())
	app.Get("/", func(c fiber.Ctx) error {
		_, err := Get[string, string](c)
		if !errors.Is(err, session.ErrAmbiguous) || !strings.Contains(err.Error(), `"first"`) || !strings.Contains(err.Error(), `"second"`) {
			t.Errorf("Get with two managers of its types: %v", err)
		}
		if _, err := Get[int, int](c); !errors.Is(err, session.ErrNoMiddleware) {
			t.Errorf("Get with types no manager has: %v", err)
		}
		a, err := first.Get(c)
		if err != nil {
			return err
		}
		b, err := second.Get(c)
		if err != nil {
			return err
		}
		if a == b {
			t.Error("both managers returned the same session")
		}
		if v := c.Query("set"); v != "" {
			a.Set("k", "first-"+v)
			b.Set("k", "second-"+v)
		}
		x, _ := a.Get("k")
		y, _ := b.Get("k")
		return c.SendString(x + "," + y)
	})
	b := newBrowser(t, app)
	b.expect("GET", "/?set=1", "first-1,second-1")
	if b.cookies["first"] == "" || b.cookies["second"] == "" {
		t.Fatalf("cookies %v: want one of each", b.cookies)
	}
	b.expect("GET", "/", "first-1,second-1")
	// Swapped, neither cookie verifies (the signature covers the name).
	b.cookies["first"], b.cookies["second"] = b.cookies["second"], b.cookies["first"]
	b.expect("GET", "/", ",")
}

// A bad configuration is an error wrapping session.ErrConfig from
// NewManager, and a panic with that error from New. Fiber v2 hooks on the
// embedded session.Config are refused with a pointer to fiberv3.Config.
func TestBadConfig(t *testing.T) {
	v2next := testConfig(nil, nil)
	setV2Hook(&v2next.Config, "Next")
	v2err := testConfig(nil, nil)
	setV2Hook(&v2err.Config, "ErrorHandler")
	short := testConfig(nil, nil)
	short.Secrets = [][]byte{[]byte("short")}
	for name, tc := range map[string]struct {
		cfg  Config[string, string]
		want []string
	}{
		"v2 Next":         {v2next, []string{"session.Config.Next", "fiberv3.Config"}},
		"v2 ErrorHandler": {v2err, []string{"session.Config.ErrorHandler", "fiberv3.Config"}},
		"short secret":    {short, []string{"32 bytes"}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := NewManager(tc.cfg)
			if m != nil || !errors.Is(err, session.ErrConfig) {
				t.Fatalf("NewManager: %v, %v; want an error wrapping ErrConfig", m, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			defer func() {
				if p, _ := recover().(error); !errors.Is(p, session.ErrConfig) {
					t.Errorf("New panicked with %v, want the ErrConfig error", p)
				}
			}()
			New(tc.cfg)
			t.Error("New did not panic")
		})
	}
	// The zero configuration works (random key, memory store).
	m, err := NewManager(Config[string, string]{Config: session.Config[string, string]{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil || m == nil {
		t.Fatalf("zero config: %v", err)
	}
	_ = m.Close()
}

// setV2Hook sets the func field name of cfg (a Fiber v2 hook) to a function
// that fails if called, without naming Fiber v2's types: this module's tests
// import no Fiber v2 package.
func setV2Hook(cfg *session.Config[string, string], name string) {
	f := reflect.ValueOf(cfg).Elem().FieldByName(name)
	f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value { panic("a Fiber v2 hook was called") }))
}
