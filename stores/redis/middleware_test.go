package redisstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	redisstore "github.com/fibersession/session/stores/redis"
)

var testSecret = []byte("redis store test key, 32 bytes!!")

// newApp returns a Fiber app with the session middleware on st:
//
//	POST /login   new id (old one deleted), user "ada", flash "Welcome back"
//	GET  /me      "<user>|<flash>", user "anon" when there is none
//	POST /visit   increments the value "visits" and answers it
//	POST /logout  destroys the session
func newApp(t testing.TB, st session.Store, cfg session.Config[string, string]) *fiber.App {
	t.Helper()
	cfg.Store = st
	cfg.Secrets = [][]byte{testSecret}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	m, err := session.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	get := m.Get
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", "ada")
		s.Flash("notice", "Welcome back")
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		u, ok := s.Get("user")
		if !ok {
			u = "anon"
		}
		f, _ := s.GetFlash("notice")
		return c.SendString(u + "|" + f)
	})
	app.Post("/visit", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		v, _ := s.Get("visits")
		n, _ := strconv.Atoi(v)
		n++
		s.Set("visits", strconv.Itoa(n))
		return c.SendString(strconv.Itoa(n))
	})
	app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		return c.SendString("bye")
	})
	return app
}

// testWriter sends the middleware's log to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// site is where browser keeps its cookies: https, so that the session's
// Secure cookie is kept and sent like a browser would.
var site, _ = url.Parse("https://example.com/")

// browser sends requests to a Fiber app through app.Test with a cookie jar.
type browser struct {
	t   testing.TB
	app *fiber.App
	jar *cookiejar.Jar
}

func newBrowser(t testing.TB, app *fiber.App) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, app: app, jar: jar}
}

// clearCookies empties the jar: a new visitor.
func (b *browser) clearCookies() { b.jar, _ = cookiejar.New(nil) }

// do sends a request and returns the status and body.
func (b *browser) do(method, path string) (int, string) {
	b.t.Helper()
	req := httptest.NewRequest(method, path, nil) // Host: example.com
	for _, c := range b.jar.Cookies(site) {
		req.AddCookie(c)
	}
	resp, err := b.app.Test(req, -1)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.jar.SetCookies(site, resp.Cookies())
	return resp.StatusCode, string(body)
}

// expect sends a request and fails the test unless it answers 200 want.
func (b *browser) expect(method, path, want string) {
	b.t.Helper()
	if st, body := b.do(method, path); st != 200 || body != want {
		b.t.Fatalf("%s %s = %d %q, want 200 %q", method, path, st, body, want)
	}
}

// cookie returns the session cookie's value, "" when there is none.
func (b *browser) cookie() string {
	for _, c := range b.jar.Cookies(site) {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(v string) {
	b.jar.SetCookies(site, []*http.Cookie{{Name: "session", Value: v, Path: "/", Secure: true}})
}

// sessionID returns the id in a signed cookie value "id.signature".
func sessionID(cookie string) string {
	id, _, _ := strings.Cut(cookie, ".")
	return id
}

func TestMiddleware(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := redisstore.New(c, redisstore.Config{Prefix: testPrefix(t, c)})
	b := newBrowser(t, newApp(t, st, session.Config[string, string]{}))

	b.expect("GET", "/me", "anon|")
	if b.cookie() != "" {
		t.Fatal("an unchanged new session set a cookie")
	}
	b.expect("POST", "/visit", "1")
	anon := b.cookie()
	if anon == "" || c.Exists(ctx, st.Key(sessionID(anon))).Val() != 1 {
		t.Fatalf("no record for the anonymous session (cookie %q)", anon)
	}

	b.expect("POST", "/login", "ok")
	user := b.cookie()
	if user == anon || user == "" {
		t.Fatalf("login kept the id: %q", user)
	}
	if n := c.Exists(ctx, st.Key(sessionID(anon))).Val(); n != 0 {
		t.Error("RegenerateID(true) left the old record in Redis")
	}
	b.expect("GET", "/me", "ada|Welcome back")
	b.expect("GET", "/me", "ada|")  // the flash was consumed
	b.expect("POST", "/visit", "2") // the values moved to the new id

	b.expect("POST", "/logout", "bye")
	if b.cookie() != "" {
		t.Error("logout did not expire the cookie")
	}
	if n := c.Exists(ctx, st.Key(sessionID(user))).Val(); n != 0 {
		t.Error("Destroy left the record in Redis")
	}
	b.setCookie(user) // a stolen copy of the signed-in cookie
	b.expect("GET", "/me", "anon|")
}

// TestCorruptRecord: garbage under a real session id gives a fresh session,
// not an error, and the next write replaces it under a new id.
func TestCorruptRecord(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := redisstore.New(c, redisstore.Config{Prefix: testPrefix(t, c)})
	for _, tc := range []struct {
		name string
		data string
	}{
		{"Garbage", "\x00\xffnot a session record"},
		{"Empty", ""},
		{"Truncated", ""}, // filled in below: the real record cut in half
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, newApp(t, st, session.Config[string, string]{}))
			b.expect("POST", "/login", "ok")
			id := sessionID(b.cookie())
			key := st.Key(id)
			data := tc.data
			if tc.name == "Truncated" {
				real, err := c.Get(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				data = real[:len(real)/2]
			}
			if err := c.Set(ctx, key, data, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			b.expect("GET", "/me", "anon|")
			b.expect("POST", "/visit", "1")
			if sessionID(b.cookie()) == id {
				t.Error("the fresh session reused the id of the corrupt record")
			}
		})
	}
}

// TestTwoInstances runs two Fiber apps on two loopback listeners with one
// Redis behind them and a separate go-redis client each, like two instances
// behind a load balancer. One net/http client with a cookie jar talks to
// both: cookies do not depend on the port, so what the first sets, the
// second receives. The managers use CookieInsecure because the listeners
// speak plain http (a jar does not send Secure cookies over http).
func TestTwoInstances(t *testing.T) {
	ctx := context.Background()
	admin := newClient(t)
	prefix := testPrefix(t, admin)
	serve := func() string {
		st := redisstore.New(newClient(t), redisstore.Config{Prefix: prefix})
		app := newApp(t, st, session.Config[string, string]{CookieInsecure: true})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- app.Listener(ln) }()
		t.Cleanup(func() {
			if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("listener: %v", err)
			}
		})
		return "http://" + ln.Addr().String()
	}
	first, second := serve(), serve()

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	send := func(method, base, path, want string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("%s %s%s = %d %q, want 200 %q", method, base, path, resp.StatusCode, body, want)
		}
	}
	cookie := func() string {
		u, _ := url.Parse(first)
		for _, c := range jar.Cookies(u) {
			if c.Name == "session" {
				return c.Value
			}
		}
		return ""
	}

	send("POST", first, "/visit", "1")
	anon := cookie()
	send("POST", first, "/login", "ok")
	signedIn := cookie()
	if signedIn == anon {
		t.Fatal("login did not rotate the id")
	}
	send("GET", second, "/me", "ada|Welcome back")            // the second sees the first's session and flash
	send("GET", first, "/me", "ada|")                         // the flash was consumed through the second
	send("POST", second, "/visit", "2")                       // values written before the login moved along
	if admin.Exists(ctx, prefix+sessionID(anon)).Val() != 0 { // RegenerateID(true)
		t.Error("the pre-login record is still in Redis")
	}

	send("POST", second, "/logout", "bye")
	if cookie() != "" {
		t.Error("logout through the second did not expire the cookie")
	}
	send("GET", first, "/me", "anon|")
	// Not just the cookie: the record is gone, so the old cookie is worthless
	// on the first instance too.
	u, _ := url.Parse(first)
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: signedIn, Path: "/"}})
	send("GET", first, "/me", "anon|")
}

// TestCloseClientThroughMiddleware: a store with CloseClient keeps its
// client open across requests, and Manager.Close closes it.
//
// It fails while the session middleware keeps its *Manager (which has a
// Close method) as a fasthttp user value: fasthttp's userData.Reset calls
// Close on every io.Closer user value at the end of each request, so
// Manager.Close, and with it the store's Close, runs after every request.
func TestCloseClientThroughMiddleware(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = c.Close() })
	ping(t, c)
	st := redisstore.New(c, redisstore.Config{Prefix: testPrefix(t, newClient(t)), CloseClient: true})
	m, err := session.NewManager(session.Config[string, string]{Store: st, Secrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
	for i := range 3 {
		resp, err := app.Test(httptest.NewRequest("GET", "/", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("after request %d the store's client answers Ping with %v; the middleware closed the store", i+1, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("after Manager.Close the client answers Ping with %v, want redis.ErrClosed", err)
	}
}
