package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

var testSecret = []byte("the fixture's secret, 32 bytes or more")

// TestHandler is the handler test of Fiber's documentation, on the app with
// the session middleware in place.
func TestHandler(t *testing.T) {
	app := newApp(testSecret, true)

	resp, err := app.Test(httptest.NewRequest("GET", "http://example.com/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != fiber.StatusOK {
		t.Errorf("status %d, want %d", resp.StatusCode, fiber.StatusOK)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "Hello, guest" {
		t.Errorf("body %q, want %q", body, "Hello, guest")
	}
	if c := resp.Header.Get("Set-Cookie"); c != "" {
		t.Errorf("a visit that stores nothing set a cookie: %q", c)
	}
}

// client sends requests to an app through app.Test, keeping cookies in a
// jar as a browser would.
type client struct {
	t   *testing.T
	app *fiber.App
	jar *cookiejar.Jar
}

var site = &url.URL{Scheme: "http", Host: "example.com", Path: "/"}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	for _, ck := range c.jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	resp, err := c.app.Test(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.jar.SetCookies(req.URL, resp.Cookies())
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(body)
}

func (c *client) get(path string) string {
	c.t.Helper()
	resp, body := c.do(httptest.NewRequest("GET", "http://example.com"+path, nil))
	if resp.StatusCode != fiber.StatusOK {
		c.t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	return body
}

func (c *client) login(name string) {
	c.t.Helper()
	req := httptest.NewRequest("POST", "http://example.com/login", strings.NewReader(url.Values{"name": {name}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ := c.do(req)
	if resp.StatusCode != fiber.StatusSeeOther || resp.Header.Get("Location") != "/" {
		c.t.Fatalf("POST /login: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// sessionCookie returns the one cookie the jar holds for the site.
func (c *client) sessionCookie() *http.Cookie {
	c.t.Helper()
	cookies := c.jar.Cookies(site)
	if len(cookies) != 1 {
		c.t.Fatalf("%d cookies for the site, want the session's", len(cookies))
	}
	return cookies[0]
}

// TestLogin signs in, sees the flash once, signs in again under a new id,
// and finds the old id gone.
func TestLogin(t *testing.T) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, app: newApp(testSecret, true), jar: jar}

	if got := c.get("/"); got != "Hello, guest" {
		t.Errorf("before signing in: %q", got)
	}
	c.login("ada")
	first := c.sessionCookie()
	if got, want := c.get("/"), "Hello, ada (Signed in)"; got != want {
		t.Errorf("after signing in: %q, want %q", got, want)
	}
	if got, want := c.get("/"), "Hello, ada"; got != want {
		t.Errorf("the next visit: %q, want %q (the flash once)", got, want)
	}

	c.login("grace")
	second := c.sessionCookie()
	if second.Value == first.Value {
		t.Errorf("signing in again kept the session id; want a new one")
	}
	if got, want := c.get("/"), "Hello, grace (Signed in)"; got != want {
		t.Errorf("after signing in again: %q, want %q", got, want)
	}

	// The old cookie, copied by hand: its session was deleted.
	req := httptest.NewRequest("GET", "http://example.com/", nil)
	req.Header.Set("Cookie", first.Name+"="+first.Value)
	resp, err := c.app.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != fiber.StatusOK || string(body) != "Hello, guest" {
		t.Errorf("the id before the second sign-in: %d %q, want 200 %q", resp.StatusCode, body, "Hello, guest")
	}
}
