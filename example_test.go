package session_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
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
	}
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

var key = []byte("an example key of at least 32 bytes!")

// A login that rotates the id and flashes a welcome across the redirect.
func Example() {
	app := fiber.New()
	app.Use(session.New(session.Config[User, Msg]{
		Secrets: [][]byte{key},
		Logger:  slog.New(slog.DiscardHandler),
	}))

	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := session.Get[User, Msg](c)
		if err != nil {
			return err
		}
		s.RegenerateID(true) // a new id after a privilege change
		s.Set("user", User{ID: 7, Name: "ada"})
		s.Flash("notice", Msg{"info", "Welcome back"})
		return c.Redirect("/", fiber.StatusSeeOther)
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := session.Get[User, Msg](c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		msg, _ := s.GetFlash("notice")
		return c.SendString(fmt.Sprintf("user=%q flash=%q", u.Name, msg.Text))
	})

	b := &browser{app: app}
	status, _ := b.do(http.MethodPost, "/login")
	fmt.Println(status)
	fmt.Println(b.do(http.MethodGet, "/"))
	fmt.Println(b.do(http.MethodGet, "/"))
	// Output:
	// 303
	// 200 user="ada" flash="Welcome back"
	// 200 user="ada" flash=""
}

// A logout that destroys the session and still says goodbye.
func ExampleSession_Destroy() {
	m, err := session.NewManager(session.Config[string, string]{Secrets: [][]byte{key}})
	if err != nil {
		panic(err)
	}
	app := fiber.New()
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Set("user", "ada")
		return nil
	})
	app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		s.Flash("notice", "Signed out")
		return nil
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		msg, _ := s.GetFlash("notice")
		return c.SendString(fmt.Sprintf("signed in: %v, flash: %q", s.Has("user"), msg))
	})

	b := &browser{app: app}
	b.do(http.MethodPost, "/login")
	fmt.Println(b.do(http.MethodGet, "/"))
	b.do(http.MethodPost, "/logout")
	fmt.Println(b.do(http.MethodGet, "/"))
	// Output:
	// 200 signed in: true, flash: ""
	// 200 signed in: false, flash: "Signed out"
}

// "Remember me": a longer idle timeout for this session only, kept in its
// record, with a persistent cookie.
func ExampleSession_SetIdleTimeout() {
	m, _ := session.NewManager(session.Config[string, string]{
		Secrets:         [][]byte{key},
		AbsoluteTimeout: 30 * 24 * time.Hour,
	})
	app := fiber.New()
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", "ada")
		if c.FormValue("remember") == "on" {
			s.SetIdleTimeout(30 * 24 * time.Hour)
		}
		return nil
	})
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("remember=on"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ := app.Test(req)
	fmt.Println(resp.Cookies()[0].MaxAge)
	// Output: 2592000
}
