// Command fiberapp is the fixture of .ci/published: a small Fiber v2 app, as a
// user would write it, that signs in with github.com/fibersession/session.
// Its go.mod requires Fiber alone; the check adds the library the way a user
// does (go get github.com/fibersession/session@VERSION) and then asserts what
// that did to the app's module graph. It does not build before that.
package main

import (
	"errors"
	"log"
	"os"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// User is the signed-in user, kept in the session under "user".
type User struct {
	Name string
}

// newApp returns the app: GET / greets the user (or a guest) and shows a
// flash message once; POST /login signs in as the form's name.
func newApp(secret []byte, insecure bool) *fiber.App {
	app := fiber.New()
	app.Use(session.New(session.Config[User, string]{
		Secrets:        [][]byte{secret},
		CookieInsecure: insecure, // plain HTTP in tests
	}))

	app.Get("/", func(c *fiber.Ctx) error {
		s, err := session.Get[User, string](c)
		if err != nil {
			return err
		}
		greeting := "Hello, guest"
		if u, ok := s.Get("user"); ok {
			greeting = "Hello, " + u.Name
		}
		if notice, ok := s.GetFlash("notice"); ok {
			greeting += " (" + notice + ")"
		}
		return c.SendString(greeting)
	})

	app.Post("/login", func(c *fiber.Ctx) error {
		name := c.FormValue("name")
		if name == "" {
			return fiber.ErrBadRequest
		}
		s, err := session.Get[User, string](c)
		if err != nil {
			return err
		}
		s.RegenerateID(true) // a new id at sign-in; the old one is gone
		s.Set("user", User{Name: name})
		s.Flash("notice", "Signed in")
		return c.Redirect("/", fiber.StatusSeeOther)
	})
	return app
}

func main() {
	secret := []byte(os.Getenv("SESSION_SECRET"))
	if len(secret) < 32 {
		log.Fatal(errors.New("SESSION_SECRET: 32 bytes or more"))
	}
	log.Fatal(newApp(secret, false).Listen(":3000"))
}
