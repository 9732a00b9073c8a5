package session_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	fibersession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
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
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
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
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		s.Flash("notice", "Signed out")
		return c.Redirect("/", fiber.StatusSeeOther)
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
	app := fiber.New()
	app.Use(session.New(session.Config[string, string]{
		Secrets:         [][]byte{key},
		AbsoluteTimeout: 30 * 24 * time.Hour, // caps every idle timeout
	}))
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
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

// A Manager keeps the type arguments, so handlers call m.Get(c), and reports
// a bad configuration as an error instead of a panic.
func ExampleNewManager() {
	_, err := session.NewManager(session.Config[User, Msg]{Secrets: [][]byte{[]byte("too short")}})
	fmt.Println(errors.Is(err, session.ErrConfig))

	m, err := session.NewManager(session.Config[User, Msg]{
		Secrets:      [][]byte{key},
		IdleTimeout:  30 * time.Minute,
		StoreTimeout: time.Second,
	})
	if err != nil {
		panic(err)
	}
	defer m.Close() // closes the store: here the default in-memory one

	app := fiber.New()
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c) // *session.Session[User, Msg]
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", User{ID: 7, Name: "ada"})
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString("hello " + u.Name)
	})

	b := &browser{app: app}
	b.do(http.MethodPost, "/login")
	fmt.Println(b.do(http.MethodGet, "/"))
	// Output:
	// true
	// 200 hello ada
}

// A plain fasthttp server wraps its handler; the handler finds its session
// with FromRequestCtx, and the wrapper saves it.
func ExampleManager_FastHTTP() {
	m, err := session.NewManager(session.Config[int, string]{Secrets: [][]byte{key}})
	if err != nil {
		panic(err)
	}
	handler := m.FastHTTP(func(ctx *fasthttp.RequestCtx) {
		s, err := m.FromRequestCtx(ctx)
		if err != nil {
			ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
			return
		}
		n, _ := s.Get("visits")
		s.Set("visits", n+1)
		fmt.Fprintf(ctx, "visit %d", n+1)
	}, nil)
	// fasthttp.ListenAndServe(":8080", handler) would serve it; here two
	// requests go straight to the handler, the second with the first's cookie.
	var cookie fasthttp.Cookie // the session cookie of the last response
	for range 2 {
		var ctx fasthttp.RequestCtx
		if cookie.Key() != nil {
			ctx.Request.Header.SetCookieBytesKV(cookie.Key(), cookie.Value())
		}
		handler(&ctx)
		fmt.Println(string(ctx.Response.Body()))
		ctx.Response.Header.VisitAllCookie(func(_, v []byte) { _ = cookie.ParseBytes(v) })
	}
	// Output:
	// visit 1
	// visit 2
}

// Any fiber.Storage keeps sessions through FromStorage: Fiber's own memory
// storage here, or any gofiber/storage adapter (Redis, Postgres, ...).
// The prefix keeps this app's keys apart from others in the same storage.
// fiber.Storage has no compare-and-set, so concurrent saves of one session
// follow "the last save wins".
func ExampleFromStorage() {
	storage := fibersession.New().Storage // Fiber's default in-memory storage
	app := fiber.New()
	app.Use(session.New(session.Config[[]string, string]{
		Secrets: [][]byte{key},
		Store:   session.FromStorage(storage, "shop:sess:"),
	}))
	app.Post("/cart/:item", func(c *fiber.Ctx) error {
		s, err := session.Get[[]string, string](c)
		if err != nil {
			return err
		}
		cart, _ := s.Get("cart")
		s.Set("cart", append(cart, c.Params("item")))
		return c.SendString(strings.Join(cart, ",") + " + " + c.Params("item"))
	})

	b := &browser{app: app}
	b.do(http.MethodPost, "/cart/tea")
	fmt.Println(b.do(http.MethodPost, "/cart/milk"))
	// Output: 200 tea + milk
}

// A message that must survive one more request, such as a redirect through
// a page that does not show it, is kept with KeepFlash.
func ExampleSession_KeepFlash() {
	app := fiber.New()
	app.Use(session.New(session.Config[string, string]{Secrets: [][]byte{key}}))
	app.Post("/save", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		s.Flash("notice", "Saved!")
		return c.Redirect("/next", fiber.StatusSeeOther)
	})
	app.Get("/next", func(c *fiber.Ctx) error { // a hop that shows no messages
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		s.KeepFlash("notice")
		return c.Redirect("/", fiber.StatusSeeOther)
	})
	app.Get("/", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		return c.SendString(fmt.Sprint(s.Flashes()))
	})

	b := &browser{app: app}
	b.do(http.MethodPost, "/save")
	b.do(http.MethodGet, "/next")
	fmt.Println(b.do(http.MethodGet, "/"))
	fmt.Println(b.do(http.MethodGet, "/"))
	// Output:
	// 200 map[notice:Saved!]
	// 200 map[]
}

// Update is a read-modify-write: concurrent requests of one session that
// each add one to a counter add exactly as many, where Get then Set could
// lose some.
func ExampleSession_Update() {
	app := fiber.New()
	app.Use(session.New(session.Config[int, string]{Secrets: [][]byte{key}, CookieInsecure: true}))
	app.Post("/visit", func(c *fiber.Ctx) error {
		s, err := session.Get[int, string](c)
		if err != nil {
			return err
		}
		n := s.Update("visits", func(old int) int { return old + 1 })
		return c.SendString(fmt.Sprint(n))
	})

	b := &browser{app: app}
	b.do(http.MethodPost, "/visit") // starts the session
	var wg sync.WaitGroup
	for range 50 { // fifty requests at once, all with the same cookie
		wg.Add(1)
		go func() {
			defer wg.Done()
			(&browser{app: app, cookie: b.cookie}).do(http.MethodPost, "/visit")
		}()
	}
	wg.Wait()
	fmt.Println(b.do(http.MethodPost, "/visit"))
	// Output:
	// 200 52
}

// API clients without a cookie jar carry the same signed value in a header:
// the response names it in Config.Header, the client sends it back.
func ExampleConfig_header() {
	app := fiber.New()
	app.Use(session.New(session.Config[string, string]{
		Secrets: [][]byte{key},
		Header:  "X-Session",
	}))
	app.Post("/api/whoami", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		if name := c.Query("name"); name != "" {
			s.Set("user", name)
		}
		u, _ := s.Get("user")
		return c.JSON(fiber.Map{"user": u})
	})

	resp, _ := app.Test(httptest.NewRequest(http.MethodPost, "/api/whoami?name=ada", nil))
	token := resp.Header.Get("X-Session") // id "." signature
	req := httptest.NewRequest(http.MethodPost, "/api/whoami", nil)
	req.Header.Set("X-Session", token)
	resp, _ = app.Test(req)
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: {"user":"ada"}
}

// To rotate signing keys, put the new key first and keep the old one until
// its cookies have expired: a cookie signed with the old key still verifies
// and is re-issued signed with the new one.
func ExampleConfig_secrets() {
	oldKey := []byte("the key signing cookies last year")
	newKey := []byte("the key signing cookies from now!")
	store := memory.New(memory.Config{}) // shared by the app before and after

	serve := func(secrets ...[]byte) *fiber.App {
		app := fiber.New()
		app.Use(session.New(session.Config[string, string]{Secrets: secrets, Store: store}))
		app.All("/", func(c *fiber.Ctx) error {
			s, err := session.Get[string, string](c)
			if err != nil {
				return err
			}
			if c.Method() == http.MethodPost {
				s.Set("user", "ada")
			}
			u, _ := s.Get("user")
			return c.SendString("user=" + u)
		})
		return app
	}

	before := &browser{app: serve(oldKey)}
	before.do(http.MethodPost, "/")
	oldCookie := before.cookie

	after := &browser{app: serve(newKey, oldKey), cookie: oldCookie}
	fmt.Println(after.do(http.MethodGet, "/"))
	fmt.Println(after.cookie != oldCookie) // re-issued with the new key

	retired := &browser{app: serve(newKey), cookie: oldCookie}
	fmt.Println(retired.do(http.MethodGet, "/")) // the old key is gone
	// Output:
	// 200 user=ada
	// true
	// 200 user=
}

// Values have a concrete type. The JSON codec decodes into the static type
// of V, so with V = any a number stored on one request comes back as a
// float64 on the next, and a struct as a map[string]any (NewManager warns).
// Give V a struct with a field per thing the app keeps, and store it under
// one key: every request gets the same types back.
func ExampleConfig_typedValues() {
	type Data struct {
		UserID int64
		Cart   map[string]int
		Theme  string
	}
	app := fiber.New()
	app.Use(session.New(session.Config[Data, string]{Secrets: [][]byte{key}}))
	app.Post("/cart/:item", func(c *fiber.Ctx) error {
		s, err := session.Get[Data, string](c)
		if err != nil {
			return err
		}
		d, _ := s.Get("data")
		if d.Cart == nil {
			d.Cart = map[string]int{}
		}
		d.Cart[c.Params("item")]++
		s.Set("data", d) // store the change: an edit in place is not seen
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Get("/cart", func(c *fiber.Ctx) error {
		s, err := session.Get[Data, string](c)
		if err != nil {
			return err
		}
		d, _ := s.Get("data")
		return c.SendString(fmt.Sprintf("%d tea (%T)", d.Cart["tea"], d.Cart["tea"]))
	})

	b := &browser{app: app}
	b.do(http.MethodPost, "/cart/tea")
	b.do(http.MethodPost, "/cart/tea")
	fmt.Println(b.do(http.MethodGet, "/cart"))
	// Output: 200 2 tea (int)
}
