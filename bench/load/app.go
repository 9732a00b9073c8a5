package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/gofiber/fiber/v2/utils"
	fredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
	"github.com/fibersession/session/stores/redisstore"
	"github.com/fibersession/session/stores/rueidisstore"
)

// The app is the example's (_example/main.go) without its CSRF protection,
// which is not what is measured here, served by every variant:
//
//	GET  /         the page: the user, the counter, the previous request's flash
//	POST /login    form name=…: a new id (RegenerateID(true)), the user, the flash
//	               "Welcome, <name>"; 303 to /
//	POST /count    the counter plus one; 200 with the new value
//	POST /flash    the flash "Saved!"; 303 to /
//	POST /logout   Destroy, then the flash "Signed out"; 303 to /
//
// The baseline serves the same routes and pages without any session: its page
// shows a fixed user, and its /login sets a cookie as long as this library's,
// so that its requests carry a Cookie header of the same size.

// User is the signed-in user, kept under the value key "user".
type User struct {
	Name string `json:"name"` // as typed in the sign-in form
}

// Val is a session value: the user, or the counter (under "count").
type Val struct {
	User  *User `json:"user,omitempty"`  // under "user"
	Count int   `json:"count,omitempty"` // under "count"
}

// Msg is a flash message.
type Msg struct {
	Level string `json:"level"` // "info" or "error"
	Text  string `json:"text"`  // shown on the next page
}

// secret signs this library's cookies: a fixed key, so runs are alike.
var secret = []byte("load-test-secret-0123456789abcdef")

// variant is one server under test.
type variant struct {
	name     string // as in the table: "ours/memory"
	stateful bool   // false for the baseline: its pages do not depend on the session
	redis    bool   // needs Redis (SESSION_REDIS_ADDR)
	// build makes the app; release, called after the app is shut down, frees
	// its store (and deletes what it left in Redis).
	build func(redisAddr string) (app *fiber.App, release func(), err error)
}

// variants are run (and shown) in this order.
var variants = []variant{
	{name: "baseline", build: func(string) (*fiber.App, func(), error) { return baselineApp(), func() {}, nil }},
	{name: "ours/memory", stateful: true, build: func(string) (*fiber.App, func(), error) {
		return oursApp(memory.New(memory.Config{}), nil) // the middleware's default store
	}},
	{name: "ours/redis", stateful: true, redis: true, build: func(addr string) (*fiber.App, func(), error) {
		client, prefix, cleanup, err := redisClient(addr)
		if err != nil {
			return nil, nil, err
		}
		st, err := redisstore.New(context.Background(), client, redisstore.Config{Prefix: prefix})
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		return oursApp(st, cleanup)
	}},
	{name: "ours/rueidis", stateful: true, redis: true, build: func(addr string) (*fiber.App, func(), error) {
		_, prefix, cleanup, err := redisClient(addr) // a prefix, and the cleanup of its keys
		if err != nil {
			return nil, nil, err
		}
		cached, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}})
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		st, err := rueidisstore.New(context.Background(), cached, rueidisstore.Config{Prefix: prefix})
		if err != nil {
			cached.Close()
			cleanup()
			return nil, nil, err
		}
		return oursApp(st, func() { cached.Close(); cleanup() })
	}},
	{name: "fiber/memory", stateful: true, build: func(string) (*fiber.App, func(), error) {
		store := fsession.New(fsession.Config{}) // Fiber's default memory storage
		return fiberApp(store), func() { _ = store.Storage.Close() }, nil
	}},
	{name: "fiber/redis", stateful: true, redis: true, build: func(addr string) (*fiber.App, func(), error) {
		client, prefix, cleanup, err := redisClient(addr)
		if err != nil {
			return nil, nil, err
		}
		store := fsession.New(fsession.Config{
			Storage:      fredis.NewFromConnection(client),
			KeyGenerator: func() string { return prefix + utils.UUIDv4() },
		})
		return fiberApp(store), cleanup, nil
	}},
}

func findVariant(name string) (variant, bool) {
	for _, v := range variants {
		if v.name == name {
			return v, true
		}
	}
	return variant{}, false
}

// redisClient returns a client of the Redis at addr (both contenders use the
// same options), a key prefix of its own, and cleanup, which deletes every key
// under the prefix and closes the client. It fails when Redis does not answer
// a PING within two seconds.
func redisClient(addr string) (c *redis.Client, prefix string, cleanup func(), err error) {
	c = redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, DialTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, "", nil, fmt.Errorf("%w: Redis at %s: %v", errNoRedis, addr, err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix = "sessionload:" + hex.EncodeToString(b) + ":"
	return c, prefix, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 1000 {
				c.Unlink(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			c.Unlink(ctx, keys...)
		}
		_ = c.Close()
	}, nil
}

// errNoRedis marks a Redis that does not answer: its variants are skipped.
var errNoRedis = errors.New("no Redis")

func newApp() *fiber.App { return fiber.New(fiber.Config{DisableStartupMessage: true}) }

func redirectHome(c *fiber.Ctx) error { return c.Redirect("/", fiber.StatusSeeOther) }

// formName is the login form's name, or "" when it is not 1 to 64 characters.
func formName(c *fiber.Ctx) string {
	name := strings.TrimSpace(c.FormValue("name"))
	if len(name) > 64 {
		return ""
	}
	return name
}

// oursApp serves the app with this library over st; release, when not nil,
// is called after the store is closed.
func oursApp(st session.Store, release func()) (*fiber.App, func(), error) {
	m, err := session.NewManager(session.Config[Val, Msg]{Secrets: [][]byte{secret}, Store: st})
	if err != nil {
		return nil, nil, err
	}
	app := newApp()
	app.Use(m.Handler())
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		var name string
		if v, ok := s.Get("user"); ok && v.User != nil {
			name = v.User.Name
		}
		n, _ := s.Get("count")
		msg, _ := s.GetFlash("notice")
		return page(c, name, n.Count, msg.Text)
	})
	app.Post("/login", func(c *fiber.Ctx) error {
		name := formName(c)
		if name == "" {
			return c.Status(fiber.StatusBadRequest).SendString("name: 1 to 64 characters")
		}
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", Val{User: &User{Name: name}})
		s.Flash("notice", Msg{"info", "Welcome, " + name})
		return redirectHome(c)
	})
	app.Post("/count", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		v, _ := s.Get("count")
		v.Count++
		s.Set("count", v)
		return sendInt(c, v.Count)
	})
	app.Post("/flash", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Flash("notice", Msg{"info", "Saved!"})
		return redirectHome(c)
	})
	app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		s.Flash("notice", Msg{"info", "Signed out"})
		return redirectHome(c)
	})
	return app, func() {
		_ = m.Close() // closes the memory store; the Redis client is release's
		if release != nil {
			release()
		}
	}, nil
}

// fiberApp serves the app with Fiber's middleware/session over store. Its
// flash is a value that the page reads, deletes and saves; a route saves
// only when it changed something, the cheapest correct use of its API.
func fiberApp(store *fsession.Store) *fiber.App {
	store.RegisterType(Msg{})
	app := newApp()
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := store.Get(c)
		if err != nil {
			return err
		}
		name, _ := s.Get("user").(string)
		n, _ := s.Get("count").(int)
		msg, ok := s.Get("flash").(Msg)
		if ok {
			s.Delete("flash")
			if err := s.Save(); err != nil {
				return err
			}
		}
		return page(c, name, n, msg.Text)
	})
	app.Post("/login", func(c *fiber.Ctx) error {
		name := formName(c)
		if name == "" {
			return c.Status(fiber.StatusBadRequest).SendString("name: 1 to 64 characters")
		}
		s, err := store.Get(c)
		if err != nil {
			return err
		}
		if err := s.Regenerate(); err != nil {
			return err
		}
		s.Set("user", name)
		s.Set("flash", Msg{"info", "Welcome, " + name})
		if err := s.Save(); err != nil {
			return err
		}
		return redirectHome(c)
	})
	app.Post("/count", func(c *fiber.Ctx) error {
		s, err := store.Get(c)
		if err != nil {
			return err
		}
		n, _ := s.Get("count").(int)
		n++
		s.Set("count", n)
		if err := s.Save(); err != nil {
			return err
		}
		return sendInt(c, n)
	})
	app.Post("/flash", func(c *fiber.Ctx) error {
		s, err := store.Get(c)
		if err != nil {
			return err
		}
		s.Set("flash", Msg{"info", "Saved!"})
		if err := s.Save(); err != nil {
			return err
		}
		return redirectHome(c)
	})
	app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := store.Get(c)
		if err != nil {
			return err
		}
		if err := s.Destroy(); err != nil {
			return err
		}
		// A new id for what follows, so the signed-out id is not written again.
		if err := s.Regenerate(); err != nil {
			return err
		}
		s.Set("flash", Msg{"info", "Signed out"})
		if err := s.Save(); err != nil {
			return err
		}
		return redirectHome(c)
	})
	return app
}

// baselineCookie is as long as this library's signed cookie value (43 + 1 + 43).
var baselineCookie = strings.Repeat("x", 87)

// baselineApp serves the routes without a session.
func baselineApp() *fiber.App {
	app := newApp()
	app.Get("/", func(c *fiber.Ctx) error { return page(c, "ada", 0, "") })
	app.Post("/login", func(c *fiber.Ctx) error {
		if formName(c) == "" {
			return c.Status(fiber.StatusBadRequest).SendString("name: 1 to 64 characters")
		}
		c.Cookie(&fiber.Cookie{Name: "session", Value: baselineCookie, HTTPOnly: true, Secure: true, SameSite: "Lax"})
		return redirectHome(c)
	})
	app.Post("/count", func(c *fiber.Ctx) error { return sendInt(c, 1) })
	app.Post("/flash", redirectHome)
	app.Post("/logout", redirectHome)
	return app
}

// sendInt answers n as text.
func sendInt(c *fiber.Ctx, n int) error {
	var buf [20]byte
	c.Response().SetBody(strconv.AppendInt(buf[:0], int64(n), 10))
	return nil
}

const (
	pageHead = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fibersession load</title></head><body>\n<h1>fibersession</h1>\n"
	pageIn   = "<form method=\"post\" action=\"/logout\"><button>Sign out</button></form>\n"
	pageOut  = "<form method=\"post\" action=\"/login\"><label>Name <input name=\"name\" required maxlength=\"64\"></label> <button>Sign in</button></form>\n"
	pageTail = "</span></p>\n<form method=\"post\" action=\"/count\"><button>Count</button></form>\n</body></html>\n"
)

// page writes the page: the flash message (if any), who is signed in (nobody
// when user is ""), the counter. Every variant writes it alike.
func page(c *fiber.Ctx, user string, count int, flash string) error {
	r := c.Response()
	r.Header.SetContentType(fiber.MIMETextHTMLCharsetUTF8)
	r.AppendBodyString(pageHead)
	if flash != "" {
		r.AppendBodyString(`<p class="flash">`)
		r.AppendBodyString(html.EscapeString(flash))
		r.AppendBodyString("</p>\n")
	}
	if user != "" {
		r.AppendBodyString(`<p>Signed in as <strong id="user">`)
		r.AppendBodyString(html.EscapeString(user))
		r.AppendBodyString("</strong>.</p>\n")
		r.AppendBodyString(pageIn)
	} else {
		r.AppendBodyString(pageOut)
	}
	var buf [20]byte
	r.AppendBodyString(`<p>Count: <span id="count">`)
	r.AppendBody(strconv.AppendInt(buf[:0], int64(count), 10))
	r.AppendBodyString(pageTail)
	return nil
}
