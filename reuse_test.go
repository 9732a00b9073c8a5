package session_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
)

type user struct {
	ID   int64
	Name string
}

// reuseApp serves POST /login?name= and GET /me, behind an outer middleware
// that reads the session after the session middleware returned, and
// reports through check whether it was still the request's own.
func reuseApp(t *testing.T, check func(c *fiber.Ctx, s *session.Session[user, string])) *fiber.App {
	key := []byte("0123456789abcdef0123456789abcdef")
	m, err := session.NewManager(session.Config[user, string]{Secrets: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	if check != nil {
		app.Use(func(c *fiber.Ctx) error {
			err := c.Next()
			s, gerr := m.Get(c)
			if gerr != nil {
				t.Error(gerr)
				return err
			}
			check(c, s)
			return err
		})
	}
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Set("user", user{ID: 1, Name: c.Query("name")})
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString(u.Name)
	})
	return app
}

// A read-only request of a stored session allocates nothing: its Session
// comes from the manager's pool and goes back when the request ends, and its
// id from the cache of verified cookies. (That values are decoded once is
// TestDecodedValues's: sonic's decoding of this one allocates nothing.)
func TestReadOnlyRequestAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop objects at random")
	}
	cl := bench.NewClient(reuseApp(t, nil).Handler(), true)
	if st, body := cl.Do("POST", "/login?name=ada"); st != 200 || string(body) != "ok" {
		t.Fatalf("login: %d %q", st, body)
	}
	me := func() {
		if st, body := cl.Do("GET", "/me"); st != 200 || string(body) != "ada" {
			t.Fatalf("GET /me: %d %q", st, body)
		}
	}
	for range 3 {
		me()
	}
	if n := testing.AllocsPerRun(200, me); n != 0 {
		t.Errorf("a read-only request allocated %v times, want 0", n)
	}
}

// A session is reused only once its request has ended: an outer middleware
// still reads the request's own session after the session middleware
// returned, and an id the handler kept stays intact while later requests
// reuse the session objects.
func TestSessionReusedAfterRequestEnds(t *testing.T) {
	var mu sync.Mutex
	kept := map[string]string{} // user -> the id the outer middleware saw
	app := reuseApp(t, func(c *fiber.Ctx, s *session.Session[user, string]) {
		u, _ := s.Get("user")
		want := strings.Clone(c.Query("name")) // Fiber's strings share its buffers
		if want == "" {
			want = string(c.Request().Header.Peek("X-User"))
		}
		if u.Name != want {
			t.Errorf("after the session middleware returned, the outer one read user %q, want %q", u.Name, want)
		}
		mu.Lock()
		if c.Method() == "POST" {
			kept[want] = s.ID()
		} else if id := kept[want]; id != s.ID() {
			t.Errorf("%s: session id %q, want %q", want, s.ID(), id)
		}
		mu.Unlock()
	})
	const users, rounds = 8, 50
	cookies := make([]string, users)
	for i := range cookies {
		name := fmt.Sprint("user", i)
		resp, err := app.Test(httptestRequest("POST", "/login?name="+name, "", ""), -1)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("login %s: %v %v", name, resp, err)
		}
		cookies[i] = resp.Header.Get("Set-Cookie")
		cookies[i], _, _ = strings.Cut(cookies[i], ";")
	}
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("user", i)
			for range rounds {
				resp, err := app.Test(httptestRequest("GET", "/me", cookies[i], name), -1)
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("GET /me as %s: %v %v", name, resp, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i, c := range cookies {
		name := fmt.Sprint("user", i)
		if id, _, _ := strings.Cut(strings.TrimPrefix(c, "session="), "."); kept[name] != id {
			t.Errorf("%s: the id kept from the login request became %q, want %q", name, kept[name], id)
		}
	}
}

// httptestRequest returns a request with cookie (a "name=value" pair) and
// an X-User header, either left out when "".
func httptestRequest(method, target, cookie, user string) *http.Request {
	req := httptest.NewRequest(method, target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	return req
}
