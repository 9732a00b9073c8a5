package pgstore

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

type user struct{ Name string }

type msg struct{ Text string }

var secret = []byte("pgstore test secret of 32+ bytes!!")

// newApp serves, with sessions in st:
//
//	POST /login   new id, user "ada", flash "Welcome"   200 "ok"
//	GET  /        "user=<name> flash=<text>" (empty when none)
//	POST /logout  destroy, flash "Signed out"           200 "ok"
func newApp(t testing.TB, st session.Store, tweak func(*session.Config[user, msg])) *fiber.App {
	t.Helper()
	cfg := session.Config[user, msg]{
		Store:   st,
		Secrets: [][]byte{secret},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := session.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", user{"ada"})
		s.Flash("notice", msg{"Welcome"})
		return c.SendString("ok")
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		f, _ := s.GetFlash("notice")
		return c.SendString("user=" + u.Name + " flash=" + f.Text)
	})
	app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		s.Flash("notice", msg{"Signed out"})
		return c.SendString("ok")
	})
	return app
}

// client sends requests through app.Test and keeps the session cookie.
type client struct {
	t      *testing.T
	app    *fiber.App
	cookie string // "session=..." or ""
}

// do sends a request and returns the status, the body and how long it took.
func (c *client) do(method, path string) (int, string, time.Duration) {
	c.t.Helper()
	req, _ := http.NewRequest(method, "http://example.com"+path, nil)
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	start := time.Now()
	resp, err := c.app.Test(req, 30_000)
	took := time.Since(start)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.Name == "session" {
			c.cookie = ""
			if ck.Value != "" && ck.MaxAge >= 0 {
				c.cookie = "session=" + ck.Value
			}
		}
	}
	return resp.StatusCode, string(b), took
}

// expect sends a request and fails unless it answers 200 with body want.
func (c *client) expect(method, path, want string) {
	c.t.Helper()
	if st, body, _ := c.do(method, path); st != http.StatusOK || body != want {
		c.t.Fatalf("%s %s = %d %q, want 200 %q", method, path, st, body, want)
	}
}

// id returns the session id in the cookie.
func (c *client) id() string {
	id, _, _ := strings.Cut(strings.TrimPrefix(c.cookie, "session="), ".")
	return id
}

func rowExists(t *testing.T, pool *pgxpool.Pool, table, id string) bool {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()+" WHERE id = $1", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestMiddleware(t *testing.T) {
	pool := connect(t, dsn())
	table := tableName(t, pool)
	st := newStore(t, pool, Config{Table: table})
	c := &client{t: t, app: newApp(t, st, nil)}

	c.expect("GET", "/", "user= flash=")
	if c.cookie != "" {
		t.Fatal("an untouched session set a cookie")
	}
	c.expect("POST", "/login", "ok")
	id := c.id()
	if !rowExists(t, pool, table, id) {
		t.Fatalf("no row for the signed-in session %s", id)
	}
	c.expect("GET", "/", "user=ada flash=Welcome")
	c.expect("GET", "/", "user=ada flash=") // the flash was consumed

	c.expect("POST", "/logout", "ok")
	if rowExists(t, pool, table, id) {
		t.Error("the destroyed session's row is still there")
	}
	c.expect("GET", "/", "user= flash=Signed out")
	c.expect("GET", "/", "user= flash=")

	// A corrupt record under a real id gives a fresh session, not an error.
	c.cookie = ""
	c.expect("POST", "/login", "ok")
	id = c.id()
	tag, err := pool.Exec(context.Background(), "UPDATE "+pgx.Identifier{table}.Sanitize()+" SET data = $2 WHERE id = $1", id, []byte("\x00not a record\xff"))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("corrupting the record: %v, %d rows", err, tag.RowsAffected())
	}
	c.expect("GET", "/", "user= flash=")
}

// TestServerDown puts the pool behind a proxy and stops it: requests get the
// ErrorHandler's 500 within StoreTimeout, and succeed again once the proxy is
// back, with the same app, store and pool.
func TestServerDown(t *testing.T) {
	direct := connect(t, dsn())
	table := tableName(t, direct)
	pcfg, err := pgxpool.ParseConfig(dsn())
	if err != nil {
		t.Fatal(err)
	}
	proxy := storetest.NewProxy(t, net.JoinHostPort(pcfg.ConnConfig.Host, strconv.Itoa(int(pcfg.ConnConfig.Port))))
	host, port, _ := net.SplitHostPort(proxy.Addr())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.Host, pcfg.ConnConfig.Port = host, uint16(p)
	pcfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := newStore(t, pool, Config{Table: table})
	const storeTimeout = 2 * time.Second
	c := &client{t: t, app: newApp(t, st, func(cfg *session.Config[user, msg]) { cfg.StoreTimeout = storeTimeout })}

	c.expect("POST", "/login", "ok")
	c.expect("GET", "/", "user=ada flash=Welcome")

	proxy.Stop()
	for _, r := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/login"}, {"POST", "/logout"}} {
		saved := c.cookie
		st, body, took := c.do(r.method, r.path)
		if st != http.StatusInternalServerError || body != "Internal Server Error" {
			t.Errorf("%s %s with the database down = %d %q, want 500 %q", r.method, r.path, st, body, "Internal Server Error")
		}
		if took > storeTimeout+time.Second {
			t.Errorf("%s %s with the database down took %v, want at most %v", r.method, r.path, took, storeTimeout+time.Second)
		}
		c.cookie = saved // a failed request must not cost the session
	}

	proxy.Start()
	c.expect("GET", "/", "user=ada flash=")
	c.expect("POST", "/logout", "ok")
	c.expect("GET", "/", "user= flash=Signed out")
}

// TestSeveralInstances runs two apps, each with its own pool and store on
// one table, on two real listeners: a session signed in through one is read
// and signed out through the other.
func TestSeveralInstances(t *testing.T) {
	first := connect(t, dsn())
	table := tableName(t, first)
	second := connect(t, dsn())
	insecure := func(cfg *session.Config[user, msg]) { cfg.CookieInsecure = true } // plain-http loopback
	url1 := serve(t, newApp(t, newStore(t, first, Config{Table: table}), insecure))
	url2 := serve(t, newApp(t, newStore(t, second, Config{Table: table}), insecure))

	jar, _ := cookiejar.New(nil) // cookies ignore ports: both apps see the same one
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	expect := func(method, url, want string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(b) != want {
			t.Fatalf("%s %s = %d %q, want 200 %q", method, url, resp.StatusCode, b, want)
		}
	}

	expect("POST", url1+"/login", "ok")
	expect("GET", url2+"/", "user=ada flash=Welcome")
	expect("GET", url2+"/", "user=ada flash=")
	expect("GET", url1+"/", "user=ada flash=")
	expect("POST", url2+"/logout", "ok")
	expect("GET", url1+"/", "user= flash=Signed out")
	expect("GET", url2+"/", "user= flash=")
}

// serve runs app on a loopback listener until the test ends and returns its
// base URL.
func serve(t *testing.T, app *fiber.App) string {
	t.Helper()
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
