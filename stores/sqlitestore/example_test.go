package sqlitestore_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/sqlitestore"
)

// Sessions in a SQLite file that survive a restart of a single-machine app.
// Open opens the file itself, so the store's Close closes it.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "sessions")
	defer os.RemoveAll(dir)
	store, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "sessions.db"), sqlitestore.Config{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	app := fiber.New()
	app.Use(session.New(session.Config[int, string]{
		Store:   store,
		Secrets: [][]byte{[]byte("an example key of at least 32 bytes!")},
	}))
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := session.Get[int, string](c)
		if err != nil {
			return err
		}
		n, _ := s.Get("visits")
		s.Set("visits", n+1)
		return c.SendString(fmt.Sprint("visit ", n+1))
	})

	var cookie string
	for range 2 {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", cookie)
		resp, _ := app.Test(req)
		if c := resp.Cookies(); len(c) > 0 {
			cookie = c[0].Name + "=" + c[0].Value
		}
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(string(body))
	}
	// Output:
	// visit 1
	// visit 2
}
