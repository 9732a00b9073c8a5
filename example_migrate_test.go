package session_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gofiber/fiber/v2"
	fibersession "github.com/gofiber/fiber/v2/middleware/session"

	"github.com/fibersession/session"
)

// Moving from Fiber's session middleware without signing everyone out: for a
// while, a small middleware after this one adopts a visitor's old Fiber
// session (same Storage as before) into a new typed one under a new id, and
// destroys the old one. Fiber's cookie is "session_id", this one "session",
// so the two never clash; remove the bridge once the old sessions have
// expired.
func Example_migrateFromFiber() {
	old := fibersession.New() // the app's existing store: same Config and Storage as before
	app := fiber.New()

	// Before the move: the old app signed ada in.
	app.Post("/old-login", func(c *fiber.Ctx) error {
		sess, err := old.Get(c)
		if err != nil {
			return err
		}
		sess.Set("name", "ada")
		return sess.Save()
	})

	// After the move.
	app.Use(session.New(session.Config[User, Msg]{Secrets: [][]byte{key}}))
	app.Use(func(c *fiber.Ctx) error { // the bridge
		if c.Cookies("session_id") == "" {
			return c.Next()
		}
		s, err := session.Get[User, Msg](c)
		if err != nil {
			return err
		}
		sess, err := old.Get(c)
		if err != nil {
			return err
		}
		if name, ok := sess.Get("name").(string); ok && !s.Has("user") {
			s.RegenerateID(true)
			s.Set("user", User{Name: name})
		}
		if err := sess.Destroy(); err != nil { // deletes the record, expires Fiber's cookie
			return err
		}
		return c.Next()
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := session.Get[User, Msg](c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString("user=" + u.Name)
	})

	jar := map[string]string{}
	do := func(method, path string) string {
		req := httptest.NewRequest(method, path, nil)
		for k, v := range jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := app.Test(req)
		if err != nil {
			panic(err)
		}
		for _, c := range resp.Cookies() {
			jar[c.Name] = c.Value
			if c.Value == "" {
				delete(jar, c.Name)
			}
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	do(http.MethodPost, "/old-login")
	fmt.Println(do(http.MethodGet, "/"), len(jar["session_id"]) > 0, len(jar["session"]) > 0)
	fmt.Println(do(http.MethodGet, "/"))
	// Output:
	// user=ada false true
	// user=ada
}
