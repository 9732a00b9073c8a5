package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fibersession/session"
)

// client plays a browser: it keeps the session cookie that responses set,
// and drops it when a response expires it.
type client struct {
	t      *testing.T
	do     func(*http.Request) (*http.Response, error)
	cookie string // the session cookie's value; "" when there is none
}

func (c *client) send(method, path, form string) (*http.Response, string) {
	c.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(form))
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: c.cookie})
	}
	resp, err := c.do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, k := range resp.Cookies() {
		if k.Name == "session" {
			c.cookie = k.Value // "" when the response expires the cookie
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *client) state() State {
	c.t.Helper()
	_, b := c.send(http.MethodGet, "/api/state", "")
	var st State
	if err := json.Unmarshal([]byte(b), &st); err != nil {
		c.t.Fatalf("%v: %s", err, b)
	}
	return st
}

func newClient(t *testing.T) *client {
	app, err := newApp(session.Config[Val, Msg]{
		Secrets: [][]byte{[]byte("example test key, thirty-two bytes")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, do: func(r *http.Request) (*http.Response, error) { return app.Test(r, -1) }}
}

func TestLoginFlashLogout(t *testing.T) {
	c := newClient(t)
	if st := c.state(); st.User != nil || len(st.Flash) != 0 || len(st.Counts) != 0 {
		t.Fatalf("fresh state %+v", st)
	}
	if _, b := c.send(http.MethodPost, "/count/apples", ""); b != `{"key":"apples","value":1}` {
		t.Fatalf("count: %s", b)
	}
	before := c.cookie

	resp, _ := c.send(http.MethodPost, "/login", "name=ada")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	after := c.cookie
	if after == before {
		t.Error("login did not rotate the id")
	}
	_, page := c.send(http.MethodGet, "/", "")
	if !strings.Contains(page, "Signed in as <strong>ada</strong>") || !strings.Contains(page, "Welcome, ada") {
		t.Errorf("page after login:\n%s", page)
	}
	st := c.state()
	if st.User == nil || *st.User != "ada" || len(st.Flash) != 0 || st.Counts["apples"] != 1 {
		t.Errorf("state after the flash was shown: %+v", st)
	}
	// The pre-login cookie opens nothing.
	oc := &client{t: t, do: c.do, cookie: before}
	if st := oc.state(); st.User != nil || st.Counts["apples"] != 0 {
		t.Errorf("the pre-login cookie still works: %+v", st)
	}

	resp, _ = c.send(http.MethodPost, "/logout", "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	st = c.state()
	if st.User != nil || len(st.Flash) != 1 || st.Flash[0] != "Signed out" || len(st.Counts) != 0 {
		t.Errorf("state after logout: %+v", st)
	}
	if st := c.state(); len(st.Flash) != 0 {
		t.Errorf("flash shown twice: %+v", st)
	}
	// The logged-in cookie is dead too.
	oc.cookie = after
	if st := oc.state(); st.User != nil {
		t.Errorf("the logged-out cookie still works: %+v", st)
	}
}

func TestBadInput(t *testing.T) {
	c := newClient(t)
	for _, form := range []string{"", "name=", "name=" + strings.Repeat("x", 65)} {
		if resp, _ := c.send(http.MethodPost, "/login", form); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("login %q: %d", form, resp.StatusCode)
		}
	}
	if resp, _ := c.send(http.MethodPost, "/count/user", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("count/user: %d", resp.StatusCode)
	}
	if c.cookie != "" {
		t.Error("refused requests created a session")
	}
}
