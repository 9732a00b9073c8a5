package fiberv3_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/gofiber/fiber/v3"

	"github.com/fibersession/session"
	"github.com/fibersession/session/fiberv3"
)

type User struct {
	ID   int64
	Name string
}

type Msg struct{ Level, Text string }

// browser sends requests to app with the cookie of the last response, like a
// browser on one site would.
type browser struct {
	app    *fiber.App
	cookie string
}

func (b *browser) do(method, path string) (status int, body string) {
	req := httptest.NewRequest(method, path, nil)
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	resp, err := b.app.Test(req)
	if err != nil {
		panic(err)
	}
	for _, c := range resp.Cookies() {
		b.cookie = c.Name + "=" + c.Value
		if c.MaxAge < 0 { // expired by Destroy
			b.cookie = ""
		}
	}
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

var key = []byte("an example key of at least 32 bytes!")

// A Fiber v3 app: a login that rotates the id and flashes a welcome across
// the redirect, and a logout that destroys the session and still says
// goodbye.
func Example() {
	app := fiber.New()
	app.Use(fiberv3.New(fiberv3.Config[User, Msg]{
		Config: session.Config[User, Msg]{ // the core's configuration and stores
			Secrets: [][]byte{key},
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
	}))

	app.Post("/login", func(c fiber.Ctx) error {
		s, err := fiberv3.Get[User, Msg](c) // loads lazily, once per request
		if err != nil {
			return err // the store is down: answered by Config.ErrorHandler
		}
		// ... check the password ...
		s.RegenerateID(true) // a new id after a privilege change
		s.Set("user", User{ID: 7, Name: "ada"})
		s.Flash("notice", Msg{"info", "Welcome back"})
		return c.Redirect().Status(fiber.StatusSeeOther).To("/")
	})
	app.Get("/", func(c fiber.Ctx) error {
		s, err := fiberv3.Get[User, Msg](c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		msg, _ := s.GetFlash("notice") // set by the previous request, gone after this one
		return c.SendString(fmt.Sprintf("user=%q flash=%q", u.Name, msg.Text))
	})
	app.Post("/logout", func(c fiber.Ctx) error {
		s, err := fiberv3.Get[User, Msg](c)
		if err != nil {
			return err
		}
		s.Destroy()                                  // record deleted, cookie expired
		s.Flash("notice", Msg{"info", "Signed out"}) // starts a new, empty session
		return c.Redirect().Status(fiber.StatusSeeOther).To("/")
	})

	b := &browser{app: app}
	status, _ := b.do(http.MethodPost, "/login")
	fmt.Println(status)
	fmt.Println(b.do(http.MethodGet, "/"))
	fmt.Println(b.do(http.MethodGet, "/"))
	b.do(http.MethodPost, "/logout")
	fmt.Println(b.do(http.MethodGet, "/"))
	// Output:
	// 303
	// 200 user="ada" flash="Welcome back"
	// 200 user="ada" flash=""
	// 200 user="" flash="Signed out"
}

// A Manager keeps the type arguments, so handlers call m.Get(c), reports a
// bad configuration as an error instead of a panic, and embeds the core
// *session.Manager (Close, FromRequestCtx).
func ExampleNewManager() {
	_, err := fiberv3.NewManager(fiberv3.Config[User, Msg]{
		Config: session.Config[User, Msg]{Secrets: [][]byte{[]byte("too short")}},
	})
	fmt.Println(errors.Is(err, session.ErrConfig))

	m, err := fiberv3.NewManager(fiberv3.Config[User, Msg]{
		Config: session.Config[User, Msg]{Secrets: [][]byte{key}},
		// Next and ErrorHandler take Fiber v3's context.
		Next: func(c fiber.Ctx) bool { return c.Path() == "/healthz" },
		ErrorHandler: func(c fiber.Ctx, err error) error {
			return c.Status(fiber.StatusServiceUnavailable).SendString("try again later")
		},
	})
	if err != nil {
		panic(err)
	}
	defer m.Close() // closes the store: here the default in-memory one

	app := fiber.New()
	app.Use(m.Handler())
	app.Post("/login", func(c fiber.Ctx) error {
		s, err := m.Get(c) // *session.Session[User, Msg]
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", User{ID: 7, Name: "ada"})
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Get("/", func(c fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString("hello " + u.Name)
	})
	app.Get("/healthz", func(c fiber.Ctx) error {
		_, err := m.Get(c) // skipped by Next: no session here
		return c.SendString(fmt.Sprint(errors.Is(err, session.ErrNoMiddleware)))
	})

	b := &browser{app: app}
	b.do(http.MethodPost, "/login")
	fmt.Println(b.do(http.MethodGet, "/"))
	fmt.Println(b.do(http.MethodGet, "/healthz"))
	// Output:
	// true
	// 200 hello ada
	// 200 true
}
