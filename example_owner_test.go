package session_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// Sign-out everywhere: a sign-in ties the session to its user with
// SetOwner; "sign out of all other devices" is DestroyOthers, and a
// password reset ends every session of the user with DestroyOwner.
func ExampleManager_DestroyOwner() {
	m, _ := session.NewManager(session.Config[string, string]{
		Secrets: [][]byte{key},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	app := fiber.New()
	app.Use(m.Handler())
	app.Post("/login/:user", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		user := strings.Clone(c.Params("user"))
		s.RegenerateID(true)
		s.SetOwner(user)
		s.Set("user", user)
		return nil
	})
	app.Get("/devices", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		ds, err := s.Devices(c.UserContext())
		fmt.Fprintf(c, "%d devices:", len(ds))
		for _, d := range ds {
			if d.Current {
				fmt.Fprint(c, " this one,")
			}
		}
		return err
	})
	app.Post("/logout-others", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		n, err := s.DestroyOthers(c.UserContext())
		fmt.Fprintf(c, "signed out of %d other devices", n)
		return err
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString("user=" + u)
	})

	laptop, phone, tablet := &browser{app: app}, &browser{app: app}, &browser{app: app}
	laptop.do("POST", "/login/ada")
	phone.do("POST", "/login/ada")
	tablet.do("POST", "/login/ada")
	fmt.Println(laptop.do("GET", "/devices"))
	fmt.Println(laptop.do("POST", "/logout-others"))
	fmt.Println(phone.do("GET", "/"))

	n, _ := m.DestroyOwner(context.Background(), "ada") // after a password reset
	fmt.Println(n, "ended")
	fmt.Println(laptop.do("GET", "/"))
	// Output:
	// 200 3 devices: this one,
	// 200 signed out of 2 other devices
	// 200 user=
	// 1 ended
	// 200 user=
}

// A token carried by another transport (a job's payload, a native client's
// header; never a URL, which leaks) is verified as the cookie is, and the
// session it names is loaded, changed and saved without a request.
func ExampleManager_Load() {
	m, _ := session.NewManager(session.Config[string, string]{Secrets: [][]byte{key}})
	app := fiber.New()
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, _ := m.Get(c)
		s.Set("user", "ada")
		return c.SendString(s.SignedID()) // what the cookie carries
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, _ := m.Get(c)
		v, _ := s.Get("exported")
		return c.SendString("exported=" + v)
	})
	b := &browser{app: app}
	_, token := b.do("POST", "/login")

	// In a background job:
	s, err := m.Load(context.Background(), token)
	if err != nil {
		fmt.Println(err)
		return
	}
	u, _ := s.Get("user")
	s.Set("exported", "yes")
	fmt.Println(u, s.Save())

	_, err = m.Load(context.Background(), token+"x") // tampered
	fmt.Println(err)
	fmt.Println(b.do("GET", "/"))
	// Output:
	// ada <nil>
	// session: token does not verify
	// 200 exported=yes
}

// Administration: list the sessions of the store, count them, sign
// everyone out.
func ExampleManager_Sessions() {
	m, _ := session.NewManager(session.Config[string, string]{Secrets: [][]byte{key}})
	app := fiber.New()
	app.Use(m.Handler())
	app.Post("/", func(c *fiber.Ctx) error {
		s, _ := m.Get(c)
		s.SetOwner("ada")
		s.Set("k", "v")
		return nil
	})
	for range 3 {
		(&browser{app: app}).do("POST", "/")
	}
	ctx := context.Background()
	_ = m.Sessions(ctx, func(in session.Info) error {
		fmt.Println(in.Owner, in.Size > 0, in.Expires.After(in.LastSeen))
		return nil
	})
	n, _ := m.Count(ctx)
	fmt.Println(n, "sessions")
	_ = m.Clear(ctx)
	n, _ = m.Count(ctx)
	fmt.Println(n, "after Clear")
	// Output:
	// ada true true
	// ada true true
	// ada true true
	// 3 sessions
	// 0 after Clear
}
