package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// cookieJar keeps the cookies an app sets, by name, for app.Test requests.
type cookieJar map[string]string

func (j cookieJar) do(t *testing.T, app *fiber.App, method, path string) string {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range j {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := app.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		j[c.Name] = c.Value
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, body(t, resp))
	}
	return body(t, resp)
}

func newTestManager[V, F any](t *testing.T, cookie string) *Manager[V, F] {
	t.Helper()
	m, err := NewManager(Config[V, F]{Secrets: [][]byte{testKey}, CookieName: cookie, CookieInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Two managers with different types serve one route: each keeps its own
// cookie and values, and Get finds each by its types.
func TestTwoManagersDifferentTypes(t *testing.T) {
	auth := newTestManager[string, string](t, "auth")
	cart := newTestManager[int, string](t, "cart")
	app := fiber.New()
	app.Use(auth.Handler(), cart.Handler())
	app.Get("/", func(c *fiber.Ctx) error {
		a, err := Get[string, string](c)
		if err != nil {
			return err
		}
		b, err := Get[int, string](c)
		if err != nil {
			return err
		}
		user, _ := a.Get("user")
		n, _ := b.Get("items")
		if c.Query("add") != "" {
			a.Set("user", "ada")
			b.Set("items", n+1)
		}
		return c.SendString(user + " " + string(rune('0'+n)))
	})
	jar := cookieJar{}
	if got := jar.do(t, app, "GET", "/?add=1"); got != " 0" {
		t.Errorf("first request: %q", got)
	}
	if jar["auth"] == "" || jar["cart"] == "" || jar["auth"] == jar["cart"] {
		t.Fatalf("cookies %v: want one of each, different", jar)
	}
	jar.do(t, app, "GET", "/?add=1")
	if got := jar.do(t, app, "GET", "/"); got != "ada 2" {
		t.Errorf("after two adds: %q, want %q", got, "ada 2")
	}
}

// Two managers with the same types: Get cannot choose and says so, naming
// both cookies; each Manager's Get works and their sessions stay apart.
func TestTwoManagersSameTypes(t *testing.T) {
	first := newTestManager[string, string](t, "first")
	second := newTestManager[string, string](t, "second")
	app := fiber.New()
	app.Use(first.Handler(), second.Handler())
	app.Get("/", func(c *fiber.Ctx) error {
		_, err := Get[string, string](c)
		if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), `"first"`) || !strings.Contains(err.Error(), `"second"`) {
			t.Errorf("Get with two managers of its types: %v", err)
		}
		if _, err := Get[int, int](c); !errors.Is(err, ErrNoMiddleware) {
			t.Errorf("Get with types no manager has: %v", err)
		}
		a, err := first.Get(c)
		if err != nil {
			return err
		}
		b, err := second.Get(c)
		if err != nil {
			return err
		}
		if a == b {
			t.Error("both managers returned the same session")
		}
		if v := c.Query("set"); v != "" {
			a.Set("k", "first-"+v)
			b.Set("k", "second-"+v)
		}
		x, _ := a.Get("k")
		y, _ := b.Get("k")
		return c.SendString(x + "," + y)
	})
	jar := cookieJar{}
	jar.do(t, app, "GET", "/?set=1")
	if got := jar.do(t, app, "GET", "/"); got != "first-1,second-1" {
		t.Errorf("got %q", got)
	}
	// Each cookie names its own manager's session only: swapped, neither
	// verifies (the signature covers the cookie name), so both start fresh.
	jar["first"], jar["second"] = jar["second"], jar["first"]
	if got := jar.do(t, app, "GET", "/"); got != "," {
		t.Errorf("swapped cookies: got %q, want two fresh sessions", got)
	}
}

// FastHTTP passes a failed save to its error handler, and answers a bare 500
// without one.
func TestFastHTTPErrorHandler(t *testing.T) {
	st := newCountingStore(t)
	m, err := NewManager(Config[string, string]{Store: st, Secrets: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	next := func(ctx *fasthttp.RequestCtx) {
		s, err := m.FromRequestCtx(ctx)
		if err != nil {
			t.Errorf("load: %v", err)
			return
		}
		s.Set("a", "b")
		ctx.SetBodyString("ok")
	}
	st.fail.Store(true)
	var handled error
	custom := m.FastHTTP(next, func(ctx *fasthttp.RequestCtx, err error) {
		handled = err
		ctx.Response.Reset()
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	})
	var ctx fasthttp.RequestCtx
	custom(&ctx)
	var se *StoreError
	if ctx.Response.StatusCode() != fasthttp.StatusServiceUnavailable || !errors.As(handled, &se) || se.Op != "set" {
		t.Errorf("custom handler: status %d, handled %v", ctx.Response.StatusCode(), handled)
	}
	var ctx2 fasthttp.RequestCtx
	m.FastHTTP(next, nil)(&ctx2)
	if ctx2.Response.StatusCode() != fasthttp.StatusInternalServerError || string(ctx2.Response.Body()) != "Internal Server Error" {
		t.Errorf("default: status %d, body %q", ctx2.Response.StatusCode(), ctx2.Response.Body())
	}
}
