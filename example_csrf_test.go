package session_test

import (
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// A login form protected by a hidden token field, and a page whose script
// posts with fetch and the token in a header. A cross-site post is refused
// before the handler runs, login included.
func ExampleNewCSRF() {
	m, err := session.NewManager(session.Config[User, Msg]{
		Secrets: [][]byte{key},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	csrf, err := session.NewCSRF(m, session.CSRFConfig{})
	if err != nil {
		panic(err)
	}
	app := fiber.New()
	app.Use(m.Handler(), csrf.Handler()) // the CSRF middleware after the session's

	loginPage := template.Must(template.New("").Parse(`<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{.}}">
<input name="name"> <button>Sign in</button></form>`))
	app.Get("/login", func(c *fiber.Ctx) error {
		tok, err := session.CSRFToken(c) // no session is stored for this
		if err != nil {
			return err
		}
		c.Type("html")
		return loginPage.Execute(c.Response().BodyWriter(), tok)
	})
	app.Post("/login", func(c *fiber.Ctx) error { // reached only with a valid token
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true) // also replaces the token: the login page's no longer works
		s.Set("user", User{ID: 7, Name: c.FormValue("name")})
		return c.Redirect("/", fiber.StatusSeeOther)
	})

	homePage := template.Must(template.New("").Parse(`<meta name="csrf-token" content="{{.}}">
<button onclick="fetch('/api/like', {method: 'POST',
  headers: {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}})">Like</button>`))
	app.Get("/", func(c *fiber.Ctx) error {
		tok, err := session.CSRFToken(c)
		if err != nil {
			return err
		}
		c.Type("html")
		return homePage.Execute(c.Response().BodyWriter(), tok)
	})
	app.Post("/api/like", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString("liked by " + u.Name)
	})

	// A browser on example.com, and an attacker's page that posts to it.
	b := &cookieBrowser{app: app, cookies: map[string]string{}}
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	hidden := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	meta := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)

	_, page := b.do("GET", "/login", nil, nil)
	tok := hidden.FindStringSubmatch(page)[1]
	form := url.Values{"csrf_token": {tok}, "name": {"ada"}}

	status, body := b.do("POST", "/login", form, crossSite)
	fmt.Println("cross-site login:", status, body)
	status, _ = b.do("POST", "/login", url.Values{"name": {"ada"}}, sameOrigin)
	fmt.Println("login without the token:", status)
	status, _ = b.do("POST", "/login", form, sameOrigin)
	fmt.Println("login with the token:", status)

	_, page = b.do("GET", "/", nil, nil)
	status, body = b.do("POST", "/api/like", nil, map[string]string{
		"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": meta.FindStringSubmatch(page)[1]})
	fmt.Println("fetch with the header:", status, body)
	status, _ = b.do("POST", "/api/like", nil, map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": tok})
	fmt.Println("fetch with the login page's token:", status)
	status, _ = b.do("POST", "/api/like", nil, crossSite)
	fmt.Println("cross-site fetch:", status)
	// Output:
	// cross-site login: 403 Forbidden
	// login without the token: 403
	// login with the token: 303
	// fetch with the header: 200 liked by ada
	// fetch with the login page's token: 403
	// cross-site fetch: 403
}

// cookieBrowser sends requests to app with every cookie earlier responses
// set, like a browser on one site.
type cookieBrowser struct {
	app     *fiber.App
	cookies map[string]string
}

func (b *cookieBrowser) do(method, path string, form url.Values, hdr map[string]string) (status int, body string) {
	var r io.Reader
	if form != nil {
		r = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, "http://example.com"+path, r)
	req.RequestURI = req.URL.RequestURI() // a Host header, as browsers send
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := b.app.Test(req)
	if err != nil {
		panic(err)
	}
	for _, c := range resp.Cookies() {
		if c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}
