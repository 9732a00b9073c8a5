package mysqlstore

import (
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

type user struct{ Name string }

type msg struct{ Text string }

var secret = []byte("mysqlstore test secret of 32+ bytes!!")

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

func rowExists(t *testing.T, db *sql.DB, table, id string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM `"+table+"` WHERE id = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestMiddleware(t *testing.T) {
	db := connect(t, dsnConfig(t))
	table := tableName(t, db)
	st := newStore(t, db, Config{Table: table})
	c := &client{t: t, app: newApp(t, st, nil)}

	c.expect("GET", "/", "user= flash=")
	if c.cookie != "" {
		t.Fatal("an untouched session set a cookie")
	}
	c.expect("POST", "/login", "ok")
	id := c.id()
	if !rowExists(t, db, table, id) {
		t.Fatalf("no row for the signed-in session %s", id)
	}
	c.expect("GET", "/", "user=ada flash=Welcome")
	c.expect("GET", "/", "user=ada flash=") // the flash was consumed

	c.expect("POST", "/logout", "ok")
	if rowExists(t, db, table, id) {
		t.Error("the destroyed session's row is still there")
	}
	c.expect("GET", "/", "user= flash=Signed out")
	c.expect("GET", "/", "user= flash=")

	// A corrupt record under a real id gives a fresh session, not an error.
	c.cookie = ""
	c.expect("POST", "/login", "ok")
	id = c.id()
	res, err := db.Exec("UPDATE `"+table+"` SET data = ? WHERE id = ?", []byte("\x00not a record\xff"), id)
	if err != nil {
		t.Fatalf("corrupting the record: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("corrupting the record: %d rows", n)
	}
	c.expect("GET", "/", "user= flash=")
}

// TestServerDown puts the DB behind a proxy and stops it: requests get the
// ErrorHandler's 500 within StoreTimeout, and succeed again once the proxy is
// back, with the same app, store and DB.
func TestServerDown(t *testing.T) {
	cfg := dsnConfig(t)
	direct := connect(t, cfg)
	table := tableName(t, direct)
	proxy := storetest.NewProxy(t, cfg.Addr)
	cfg.Addr = proxy.Addr()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	db := connect(t, cfg)
	st := newStore(t, db, Config{Table: table})
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
