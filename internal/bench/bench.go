// Package bench is the harness of the benchmarks that compare this session
// middleware with Fiber v2's built-in middleware/session and with no session
// at all. Every request goes through
// a real fiber.App handler chain with a reused fasthttp.RequestCtx, and the
// session cookie travels like a browser's: the Set-Cookie of one response is
// the Cookie header of the next request.
//
// The benchmarks are in bench/ (`go test ./bench -bench . -benchmem`, or
// `go run ./bench/table` for a Markdown table). It is internal: a harness
// that imports package testing is no package for users to import.
//
// Store modules benchmark through the same harness: they build contenders
// with OursWith (this middleware over their store) and FiberWith (Fiber's
// middleware over a matching fiber.Storage), run them with RunAll from a
// benchmark and check them with CheckAll from a test.
package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
)

// Val is the session value type: a user, or a counter in ID.
type Val struct {
	ID   int64  // the user's id, or the count
	Name string // the user's name
}

// Msg is the flash message type.
type Msg struct {
	Level string // "info"
	Text  string // "Saved!"
}

var (
	ada    = Val{ID: 7, Name: "ada"}
	notice = Msg{Level: "info", Text: "Saved!"}
	secret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
)

// Contender builds an app that serves the same routes in every contender:
//
//	POST /login   set "user"                           200 "ok"
//	GET  /me      read "user"                          200 name, 401 without a user
//	POST /visit   read "user", increment "visits"      200 the new count
//	POST /flash   queue the flash message "notice"     200 "ok"
//	GET  /show    read (and consume) the flash         200 its text, or "none"
//	POST /rotate  read "user", give the session a new id  200 name
type Contender struct {
	Name     string // in benchmark names and the table
	Stateful bool   // false for the baseline: it has no session to check
	// New builds the app; done releases its store.
	New func() (h fasthttp.RequestHandler, done func())
}

// Contenders are benchmarked in this order; the table's ratios are to "fiber".
var Contenders = []Contender{
	OursWith("ours", func() (session.Store, func()) {
		st := memory.New(memory.Config{}) // the middleware's default store
		return st, func() { _ = st.Close() }
	}),
	FiberWith("fiber", func() (fsession.Config, func()) { return fsession.Config{}, nil }),
	{"baseline", false, Baseline},
}

func newApp() *fiber.App { return fiber.New(fiber.Config{DisableStartupMessage: true}) }

// sendInt answers n without allocating.
func sendInt(c *fiber.Ctx, n int64) error {
	var buf [20]byte
	c.Response().SetBody(strconv.AppendInt(buf[:0], n, 10))
	return nil
}

// OursWith is this module's middleware over the store that store returns,
// which is called once per app; release, when not nil, is called when the
// app is done (Run's end).
func OursWith(name string, store func() (st session.Store, release func())) Contender {
	return Contender{Name: name, Stateful: true, New: func() (fasthttp.RequestHandler, func()) {
		st, release := store()
		if release == nil {
			release = func() {}
		}
		return ours(st), release
	}}
}

// ours serves the routes with this module's middleware over st.
func ours(st session.Store) fasthttp.RequestHandler {
	m, err := session.NewManager(session.Config[Val, Msg]{Store: st, Secrets: [][]byte{secret}})
	if err != nil {
		panic(err)
	}
	app := newApp()
	app.Use(m.Handler()) // what session.New(cfg) returns
	get := session.Get[Val, Msg]
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Set("user", ada)
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		u, ok := s.Get("user")
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		return c.SendString(u.Name)
	})
	app.Post("/visit", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		if _, ok := s.Get("user"); !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		n, _ := s.Get("visits")
		n.ID++
		s.Set("visits", n)
		return sendInt(c, n.ID)
	})
	app.Post("/flash", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Flash("notice", notice)
		return c.SendString("ok")
	})
	app.Get("/show", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		m, ok := s.GetFlash("notice")
		if !ok {
			return c.SendString("none")
		}
		return c.SendString(m.Text)
	})
	app.Post("/rotate", func(c *fiber.Ctx) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		u, ok := s.Get("user")
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		s.RegenerateID(true)
		return c.SendString(u.Name)
	})
	return app.Handler()
}

// FiberWith is Fiber v2's middleware/session with the configuration that
// config returns, which is called once per app; release, when not nil, is
// called when the app is done (Run's end). A Config without Storage gets
// Fiber's default memory storage, which FiberWith closes itself.
//
// Fiber v2 has no flash: a key is set, then read and deleted. A request that
// changes nothing (GET /me, GET /show without a message) does not Save, which
// is the cheapest correct use of Fiber's API.
func FiberWith(name string, config func() (cfg fsession.Config, release func())) Contender {
	return Contender{Name: name, Stateful: true, New: func() (fasthttp.RequestHandler, func()) {
		cfg, release := config()
		own := cfg.Storage == nil
		store := fsession.New(cfg)
		return fiberApp(store), func() {
			if own {
				_ = store.Storage.Close()
			}
			if release != nil {
				release()
			}
		}
	}}
}

// fiberApp serves the routes with Fiber's middleware/session store.
func fiberApp(store *fsession.Store) fasthttp.RequestHandler {
	store.RegisterType(Val{})
	store.RegisterType(Msg{})
	app := newApp()
	app.Post("/login", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		sess.Set("user", ada)
		if err := sess.Save(); err != nil {
			return err
		}
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		u, ok := sess.Get("user").(Val)
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		return c.SendString(u.Name)
	})
	app.Post("/visit", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		if _, ok := sess.Get("user").(Val); !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		n, _ := sess.Get("visits").(Val)
		n.ID++
		sess.Set("visits", n)
		if err := sess.Save(); err != nil {
			return err
		}
		return sendInt(c, n.ID)
	})
	app.Post("/flash", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		sess.Set("flash", notice)
		if err := sess.Save(); err != nil {
			return err
		}
		return c.SendString("ok")
	})
	app.Get("/show", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		m, ok := sess.Get("flash").(Msg)
		if !ok {
			return c.SendString("none")
		}
		sess.Delete("flash")
		if err := sess.Save(); err != nil {
			return err
		}
		return c.SendString(m.Text)
	})
	app.Post("/rotate", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		u, ok := sess.Get("user").(Val)
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		if err := sess.Regenerate(); err != nil {
			return err
		}
		if err := sess.Save(); err != nil {
			return err
		}
		return c.SendString(u.Name)
	})
	return app.Handler()
}

// Baseline serves the same routes and answers without any session. Its
// /login sets a cookie shaped like a session cookie, so that its requests
// carry the same Cookie header as the contenders' do.
func Baseline() (fasthttp.RequestHandler, func()) { return baseline(true) }

// baseline is Baseline, with or without its look-alike cookie.
func baseline(cookie bool) (fasthttp.RequestHandler, func()) {
	app := newApp()
	app.Post("/login", func(c *fiber.Ctx) error {
		if cookie {
			c.Cookie(&fiber.Cookie{Name: "session", Value: strings.Repeat("x", 87), HTTPOnly: true, Secure: true})
		}
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error { return c.SendString(ada.Name) })
	app.Post("/visit", func(c *fiber.Ctx) error { return sendInt(c, 1) })
	app.Post("/flash", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Get("/show", func(c *fiber.Ctx) error { return c.SendString(notice.Text) })
	app.Post("/rotate", func(c *fiber.Ctx) error { return c.SendString(ada.Name) })
	return app.Handler(), func() {}
}

// Client drives a handler like a browser with a cookie jar for one site. It
// reuses one RequestCtx, so it allocates nothing itself.
type Client struct {
	Stateful bool // keeps the session cookie between requests
	h        fasthttp.RequestHandler
	ctx      fasthttp.RequestCtx
	jar      []byte // "name=value" of the cookie the site set; empty when none
	prev     []byte // scratch: the jar before a request
	num      []byte // scratch: a formatted number
	visits   int64  // the count /visit should answer next, minus one
}

var (
	hdrCookie  = []byte(fasthttp.HeaderCookie)
	remoteAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 54321}
)

// NewClient returns a client of h with an empty cookie jar.
func NewClient(h fasthttp.RequestHandler, stateful bool) *Client {
	cl := &Client{h: h, Stateful: stateful}
	var req fasthttp.Request
	cl.ctx.Init(&req, remoteAddr, nil)
	return cl
}

// Do sends one request with the jar's cookie, stores any cookie the response
// sets, and returns the status and body (valid until the next Do).
func (cl *Client) Do(method, path string) (int, []byte) {
	ctx := &cl.ctx
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost("example.com")
	if len(cl.jar) > 0 {
		ctx.Request.Header.SetBytesKV(hdrCookie, cl.jar)
	}
	cl.h(ctx)
	for _, v := range ctx.Response.Header.Cookies() {
		// The jar keeps one cookie: the site's session cookie. An empty value
		// (a deletion) empties it; attributes after ';' are not needed here.
		pair, _, _ := bytes.Cut(v, []byte{';'})
		if _, val, _ := bytes.Cut(pair, []byte{'='}); len(val) == 0 {
			cl.jar = cl.jar[:0]
		} else {
			cl.jar = append(cl.jar[:0], pair...)
		}
	}
	return ctx.Response.StatusCode(), ctx.Response.Body()
}

// SetCookie replaces the jar's cookie ("" empties it).
func (cl *Client) SetCookie(pair string) { cl.jar = append(cl.jar[:0], pair...) }

// expect sends a request and checks that it answered 200 with body want.
func (cl *Client) expect(method, path, want string) error {
	st, body := cl.Do(method, path)
	if st != fiber.StatusOK || string(body) != want {
		return fmt.Errorf("%s %s: got %d %q, want 200 %q", method, path, st, body, want)
	}
	return nil
}

func login(cl *Client) error {
	if err := cl.expect("POST", "/login", "ok"); err != nil {
		return err
	}
	if cl.Stateful && len(cl.jar) == 0 {
		return errors.New("login set no cookie")
	}
	return nil
}

// Scenario is one benchmark: Setup runs before the timer, Op once per
// iteration. Op verifies that the scenario really happened (the user was
// found, the flash arrived, the id changed) and returns an error if not.
type Scenario struct {
	Name  string              // in benchmark names and the table
	Setup func(*Client) error // before the timer; nil for none
	Op    func(*Client) error // once per iteration
}

// Scenarios are benchmarked in this order.
var Scenarios = []Scenario{
	{"NewSession", nil, func(cl *Client) error {
		cl.jar = cl.jar[:0] // a new visitor
		return login(cl)
	}},
	{"ReadOnly", login, func(cl *Client) error {
		return cl.expect("GET", "/me", ada.Name)
	}},
	{"OneKeyChanged", login, func(cl *Client) error {
		st, body := cl.Do("POST", "/visit")
		cl.visits++
		cl.num = strconv.AppendInt(cl.num[:0], cl.visits, 10)
		if st != fiber.StatusOK || cl.Stateful && !bytes.Equal(body, cl.num) {
			return fmt.Errorf("POST /visit: got %d %q, want 200 %q", st, body, cl.num)
		}
		return nil
	}},
	{"Flash", login, func(cl *Client) error { // two requests per op
		if err := cl.expect("POST", "/flash", "ok"); err != nil {
			return err
		}
		return cl.expect("GET", "/show", notice.Text)
	}},
	{"Rotate", login, func(cl *Client) error {
		cl.prev = append(cl.prev[:0], cl.jar...)
		if err := cl.expect("POST", "/rotate", ada.Name); err != nil {
			return err
		}
		if cl.Stateful && (len(cl.jar) == 0 || bytes.Equal(cl.jar, cl.prev)) {
			return fmt.Errorf("POST /rotate: cookie %q did not change", cl.jar)
		}
		return nil
	}},
}

// Run benchmarks scenario s against contender c.
func Run(b *testing.B, s Scenario, c Contender) {
	h, done := c.New()
	defer done()
	cl := NewClient(h, c.Stateful)
	if s.Setup != nil {
		if err := s.Setup(cl); err != nil {
			b.Fatalf("%s/%s setup: %v", s.Name, c.Name, err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.Op(cl); err != nil {
			b.Fatalf("%s/%s: %v", s.Name, c.Name, err)
		}
	}
}

// RunAll benchmarks every scenario against every contender, as
// sub-benchmarks named scenario/contender.
func RunAll(b *testing.B, contenders []Contender) {
	for _, s := range Scenarios {
		for _, c := range contenders {
			b.Run(s.Name+"/"+c.Name, func(b *testing.B) { Run(b, s, c) })
		}
	}
}

// after checks, for the contenders with a session, what the scenario's Op
// cannot check without extra requests in the timed loop.
var after = map[string]func(t testing.TB, cl *Client){
	"NewSession": func(t testing.TB, cl *Client) {
		if err := cl.expect("GET", "/me", ada.Name); err != nil {
			t.Errorf("the new session has no user: %v", err)
		}
	},
	"ReadOnly": func(t testing.TB, cl *Client) {
		cl.SetCookie("")
		if st, _ := cl.Do("GET", "/me"); st != fiber.StatusUnauthorized {
			t.Errorf("GET /me without a cookie: status %d, want 401", st)
		}
	},
	"Flash": func(t testing.TB, cl *Client) {
		if err := cl.expect("GET", "/show", "none"); err != nil {
			t.Errorf("the flash was not consumed: %v", err)
		}
	},
	"Rotate": func(t testing.TB, cl *Client) {
		cl.SetCookie(string(cl.prev))
		if st, _ := cl.Do("GET", "/me"); st != fiber.StatusUnauthorized {
			t.Errorf("GET /me with the rotated-away cookie: status %d, want 401", st)
		}
	},
}

// Check runs scenario s a few times against contender c, outside a
// benchmark, and fails t unless it does what it claims, including what Op
// cannot check inside the timed loop (for contenders with a session).
func Check(t testing.TB, s Scenario, c Contender) {
	t.Helper()
	h, done := c.New()
	defer done()
	cl := NewClient(h, c.Stateful)
	if s.Setup != nil {
		if err := s.Setup(cl); err != nil {
			t.Fatalf("%s/%s setup: %v", s.Name, c.Name, err)
		}
	}
	for i := range 3 {
		if err := s.Op(cl); err != nil {
			t.Fatalf("%s/%s op %d: %v", s.Name, c.Name, i, err)
		}
	}
	if check := after[s.Name]; check != nil && c.Stateful {
		check(t, cl)
	}
}

// CheckAll checks every scenario against every contender, as subtests
// named scenario/contender.
func CheckAll(t *testing.T, contenders []Contender) {
	for _, s := range Scenarios {
		for _, c := range contenders {
			t.Run(s.Name+"/"+c.Name, func(t *testing.T) { Check(t, s, c) })
		}
	}
}
