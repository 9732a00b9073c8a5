package fiberv3

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v3"

	"github.com/fibersession/session"
)

// The v3 CSRF middleware refuses a cross-site form post (sign-in included)
// and a post without the page's token, and lets a same-origin post with the
// token through; the token changes at sign-in.
func TestCSRF(t *testing.T) {
	st := newFlakyStore(t)
	m := newTestManager(t, testConfig(st, nil))
	p, err := NewCSRF(m, CSRFConfig{})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	app.Use(m.Handler(), p.Handler())
	app.Get("/form", func(c fiber.Ctx) error {
		tok, err := CSRFToken(c)
		if err != nil {
			return err
		}
		return c.SendString(tok)
	})
	app.Post("/login", func(c fiber.Ctx) error {
		s, err := Get[string, string](c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", "ada")
		return c.SendString("signed in")
	})
	cookies := map[string]string{}
	post := func(token, fetchSite string) (int, string) {
		t.Helper()
		form := url.Values{"csrf_token": {token}}.Encode()
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", fetchSite)
		}
		return send(t, app, req, cookies)
	}
	get := func() string {
		t.Helper()
		_, body := send(t, app, httptest.NewRequest(http.MethodGet, "/form", nil), cookies)
		return body
	}

	tok := get()
	if st.sets.Load() != 0 {
		t.Errorf("showing the sign-in form wrote %d records", st.sets.Load())
	}
	if status, body := post(tok, "cross-site"); status != http.StatusForbidden || body != "Forbidden" {
		t.Errorf("cross-site sign-in: %d %q", status, body)
	}
	if status, _ := post("", "same-origin"); status != http.StatusForbidden {
		t.Errorf("sign-in without a token: %d", status)
	}
	if st.sets.Load() != 0 {
		t.Errorf("refused requests wrote %d records", st.sets.Load())
	}
	if status, body := post(tok, "same-origin"); status != http.StatusOK || body != "signed in" {
		t.Fatalf("same-origin sign-in with the token: %d %q", status, body)
	}
	if status, _ := post(tok, "same-origin"); status != http.StatusForbidden {
		t.Errorf("the pre-sign-in token still works after the rotation: %d", status)
	}
	if status, _ := post(get(), ""); status != http.StatusOK {
		t.Errorf("a post with a fresh token and neither Sec-Fetch-Site nor Origin: %d", status)
	}
}

// send runs req with the cookies and keeps the ones the response sets.
func send(t *testing.T, app *fiber.App, req *http.Request, cookies map[string]string) (int, string) {
	t.Helper()
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := app.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(cookies, c.Name)
		} else {
			cookies[c.Name] = c.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCSRFConfig(t *testing.T) {
	m := newTestManager(t, testConfig(newFlakyStore(t), nil))
	var cfg CSRFConfig
	cfg.CSRFConfig.TrustedOrigins = []string{"https://example.com/path"}
	if _, err := NewCSRF(m, cfg); !errors.Is(err, session.ErrConfig) {
		t.Errorf("a trusted origin with a path: %v", err)
	}
	app := fiber.New()
	app.Use(m.Handler())
	app.Get("/", func(c fiber.Ctx) error {
		_, err := CSRFToken(c)
		if !errors.Is(err, session.ErrNoCSRF) {
			t.Errorf("CSRFToken without the middleware: %v", err)
		}
		return nil
	})
	if _, err := app.Test(httptest.NewRequest(http.MethodGet, "/", nil)); err != nil {
		t.Fatal(err)
	}
}
