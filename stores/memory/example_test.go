package memory_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
)

// The memory store is the middleware's default; make one yourself to tune
// its cleanup, to share it between managers, or to count its records.
func ExampleNew() {
	store := memory.New(memory.Config{CleanupInterval: 5 * time.Minute})
	defer store.Close() // stops the background cleanup

	app := fiber.New()
	app.Use(session.New(session.Config[string, string]{
		Secrets: [][]byte{[]byte("an example key of at least 32 bytes!")},
		Store:   store,
	}))
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		s.Set("user", "ada")
		return nil
	})
	if _, err := app.Test(httptest.NewRequest(http.MethodPost, "/login", nil)); err != nil {
		panic(err)
	}
	fmt.Println(store.Len())
	// Output: 1
}
