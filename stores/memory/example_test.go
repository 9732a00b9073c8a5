package memory_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
)

// The memory store is the middleware's default; make one yourself to tune
// its cleanup, to count its records, or to share it between apps in one
// process: here an app that signs in and an admin app that sees the session.
func ExampleNew() {
	store := memory.New(memory.Config{CleanupInterval: 5 * time.Minute})
	defer store.Close() // stops the background cleanup

	cfg := session.Config[string, string]{
		Secrets: [][]byte{[]byte("an example key of at least 32 bytes!")},
		Store:   store,
	}
	site, admin := fiber.New(), fiber.New()
	site.Use(session.New(cfg))
	admin.Use(session.New(cfg))
	site.Post("/login", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err == nil {
			s.Set("user", "ada")
		}
		return err
	})
	admin.Get("/", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString(fmt.Sprintf("%d session(s); this one is %s's", store.Len(), u))
	})

	resp, _ := site.Test(httptest.NewRequest(http.MethodPost, "/login", nil))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", resp.Header.Get("Set-Cookie"))
	resp, _ = admin.Test(req)
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: 1 session(s); this one is ada's
}
