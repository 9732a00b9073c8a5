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
	"strconv"
	"strings"

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
	return routes(app, func(c *fiber.Ctx) (sess, error) {
		s, err := session.Get[Val, Msg](c)
		return oursSess{s}, err
	})
}

// oursSess is this module's session. It needs no Save: the middleware saves
// what changed, and a flash is consumed by reading it.
type oursSess struct{ s *session.Session[Val, Msg] }

func (o oursSess) get(key string) (Val, bool) { return o.s.Get(key) }
func (o oursSess) set(key string, v Val)      { o.s.Set(key, v) }
func (o oursSess) flash(m Msg)                { o.s.Flash("notice", m) }
func (o oursSess) takeFlash() (Msg, bool)     { return o.s.GetFlash("notice") }
func (o oursSess) rotate() error              { o.s.RegenerateID(true); return nil }
func (o oursSess) save() error                { return nil }

// FiberWith is Fiber v2's middleware/session with the configuration that
// config returns, which is called once per app; release, when not nil, is
// called when the app is done (Run's end). A Config without Storage gets
// Fiber's default memory storage, which FiberWith closes itself.
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
	return routes(newApp(), func(c *fiber.Ctx) (sess, error) {
		s, err := store.Get(c)
		return fiberSess{s}, err
	})
}

// fiberSess is Fiber's session, whose changes each route saves itself. It
// has no flash: a key is set, then read and deleted.
type fiberSess struct{ s *fsession.Session }

func (f fiberSess) get(key string) (Val, bool) { v, ok := f.s.Get(key).(Val); return v, ok }
func (f fiberSess) set(key string, v Val)      { f.s.Set(key, v) }
func (f fiberSess) flash(m Msg)                { f.s.Set("flash", m) }
func (f fiberSess) rotate() error              { return f.s.Regenerate() }
func (f fiberSess) save() error                { return f.s.Save() }

func (f fiberSess) takeFlash() (Msg, bool) {
	m, ok := f.s.Get("flash").(Msg)
	if ok {
		f.s.Delete("flash")
	}
	return m, ok
}

// sess is what the routes need of a session; each contender adapts its
// middleware's session to it, so that one set of routes serves them all.
type sess interface {
	get(key string) (Val, bool)
	set(key string, v Val)
	flash(m Msg)            // queue the message for the next request
	takeFlash() (Msg, bool) // the message an earlier request queued, consumed
	rotate() error          // a new id for the session
	save() error            // write the changes (a no-op for middleware that saves itself)
}

// routes serves the routes Contender lists on app with the session open
// returns. A request that changes nothing (GET /me, GET /show without a
// message) does not save, which is the cheapest correct use of Fiber's API.
func routes(app *fiber.App, open func(*fiber.Ctx) (sess, error)) fasthttp.RequestHandler {
	handle := func(fn func(c *fiber.Ctx, s sess) error) fiber.Handler {
		return func(c *fiber.Ctx) error {
			s, err := open(c)
			if err != nil {
				return err
			}
			return fn(c, s)
		}
	}
	app.Post("/login", handle(func(c *fiber.Ctx, s sess) error {
		s.set("user", ada)
		if err := s.save(); err != nil {
			return err
		}
		return c.SendString("ok")
	}))
	app.Get("/me", handle(func(c *fiber.Ctx, s sess) error {
		u, ok := s.get("user")
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		return c.SendString(u.Name)
	}))
	app.Post("/visit", handle(func(c *fiber.Ctx, s sess) error {
		if _, ok := s.get("user"); !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		n, _ := s.get("visits")
		n.ID++
		s.set("visits", n)
		if err := s.save(); err != nil {
			return err
		}
		return sendInt(c, n.ID)
	}))
	app.Post("/flash", handle(func(c *fiber.Ctx, s sess) error {
		s.flash(notice)
		if err := s.save(); err != nil {
			return err
		}
		return c.SendString("ok")
	}))
	app.Get("/show", handle(func(c *fiber.Ctx, s sess) error {
		m, ok := s.takeFlash()
		if !ok {
			return c.SendString("none")
		}
		if err := s.save(); err != nil {
			return err
		}
		return c.SendString(m.Text)
	}))
	app.Post("/rotate", handle(func(c *fiber.Ctx, s sess) error {
		u, ok := s.get("user")
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		if err := s.rotate(); err != nil {
			return err
		}
		if err := s.save(); err != nil {
			return err
		}
		return c.SendString(u.Name)
	}))
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
