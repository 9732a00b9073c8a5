package cookiestore_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/cookiestore"
)

// The whole record travels in a second, encrypted cookie next to the
// session cookie: no server-side storage at all.
func ExampleNew() {
	store, err := cookiestore.New(cookiestore.Config{
		Keys: [][]byte{[]byte("a 32-byte AES-256 key, secret!!!")}, // the first encrypts, all decrypt
	})
	if err != nil {
		panic(err)
	}
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
	resp, err := app.Test(httptest.NewRequest(http.MethodPost, "/login", nil))
	if err != nil {
		panic(err)
	}
	for _, c := range resp.Cookies() {
		fmt.Println(c.Name, c.HttpOnly, c.Secure)
	}
	// Unordered output:
	// session true true
	// session_data true true
}
