package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// client plays a browser on one site: it keeps the cookies that responses
// set (the session's and the CSRF protection's), drops those a response
// expires, and sends the headers a current browser adds to a same-origin
// post.
type client struct {
	t       *testing.T
	do      func(*http.Request) (*http.Response, error)
	cookies map[string]string
	ua      string // the User-Agent of every request; "" for Go's
}

// cookie returns the session cookie's value; "" when there is none.
func (c *client) cookie() string { return c.cookies["session"] }

// send sends a request with the client's cookies and hdr; a form is sent
// urlencoded.
func (c *client) send(method, path, form string, hdr ...string) (*http.Response, string) {
	c.t.Helper()
	req := httptest.NewRequest(method, "http://example.com"+path, strings.NewReader(form))
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := c.do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, k := range resp.Cookies() {
		if k.Value == "" { // the response expires the cookie
			delete(c.cookies, k.Name)
		} else {
			c.cookies[k.Name] = k.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var hiddenToken = regexp.MustCompile(`<input type="hidden" name="csrf_token" value="([^"]+)">`)

// token loads the page and returns the token of its form.
func (c *client) token() string {
	c.t.Helper()
	_, page := c.send(http.MethodGet, "/", "")
	m := hiddenToken.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `<meta name="csrf-token" content="`+m[1]+`">`) {
		c.t.Fatalf("no token in the page:\n%s", page)
	}
	return m[1]
}

// post submits the page's form (form != "": the token in the hidden field)
// or calls fetch (the token in the header), as the page does.
func (c *client) post(path, form string) (*http.Response, string) {
	c.t.Helper()
	tok := c.token()
	if form == "" {
		return c.send(http.MethodPost, path, "", "X-CSRF-Token", tok, "Sec-Fetch-Site", "same-origin", "Origin", "http://example.com")
	}
	return c.send(http.MethodPost, path, form+"&csrf_token="+url.QueryEscape(tok), "Sec-Fetch-Site", "same-origin", "Origin", "http://example.com")
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

var deviceItem = regexp.MustCompile(`<li class="device">(.*)</li>`)

// devices loads the page and returns the items of its devices list.
func (c *client) devices() []string {
	c.t.Helper()
	_, page := c.send(http.MethodGet, "/", "")
	var items []string
	for _, m := range deviceItem.FindAllStringSubmatch(page, -1) {
		items = append(items, m[1])
	}
	return items
}

func newClient(t *testing.T) *client {
	app, err := newApp(session.Config[Val, Msg]{
		Secrets: [][]byte{[]byte("example test key, thirty-two bytes")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, cookies: map[string]string{}, do: func(r *http.Request) (*http.Response, error) { return app.Test(r, -1) }}
}

func TestLoginFlashLogout(t *testing.T) {
	c := newClient(t)
	if st := c.state(); st.User != nil || len(st.Flash) != 0 || len(st.Counts) != 0 {
		t.Fatalf("fresh state %+v", st)
	}
	if _, b := c.post("/count/apples", ""); b != `{"key":"apples","value":1}` {
		t.Fatalf("count: %s", b)
	}
	before := c.cookie()

	resp, _ := c.post("/login", "name=ada")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	after := c.cookie()
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
	oc := &client{t: t, do: c.do, cookies: map[string]string{"session": before}}
	if st := oc.state(); st.User != nil || st.Counts["apples"] != 0 {
		t.Errorf("the pre-login cookie still works: %+v", st)
	}

	resp, _ = c.post("/logout", "x=y")
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
	oc.cookies = map[string]string{"session": after}
	if st := oc.state(); st.User != nil {
		t.Errorf("the logged-out cookie still works: %+v", st)
	}
}

func TestBadInput(t *testing.T) {
	c := newClient(t)
	for _, form := range []string{"", "name=", "name=" + strings.Repeat("x", 65)} {
		if resp, _ := c.post("/login", "x=y&"+form); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("login %q: %d", form, resp.StatusCode)
		}
	}
	if resp, _ := c.post("/count/user", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("count/user: %d", resp.StatusCode)
	}
	if c.cookie() != "" {
		t.Error("refused requests created a session")
	}
}

// TestCrossSiteRefused: a page on another site can neither sign a visitor
// in (login CSRF), nor count, nor sign out; a post without the page's token
// fails too.
func TestCrossSiteRefused(t *testing.T) {
	crossSite := []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}
	visitor := newClient(t)
	tok := visitor.token()
	if resp, _ := visitor.send(http.MethodPost, "/login", "name=mallory&csrf_token="+url.QueryEscape(tok), crossSite...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %d", resp.StatusCode)
	}
	if visitor.cookie() != "" {
		t.Error("a cross-site login made a session")
	}

	c := newClient(t)
	if resp, _ := c.post("/login", "name=ada"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	tok = c.token()
	for name, tc := range map[string]struct {
		path, form string
		hdr        []string
	}{
		"cross-site form post":         {"/logout", "csrf_token=" + url.QueryEscape(tok), crossSite},
		"cross-site fetch":             {"/count/apples", "", append([]string{"X-CSRF-Token", tok}, crossSite...)},
		"same-site (a subdomain)":      {"/count/apples", "", []string{"X-CSRF-Token", tok, "Sec-Fetch-Site", "same-site", "Origin", "http://evil.example.com"}},
		"old browser, foreign Origin":  {"/count/apples", "", []string{"X-CSRF-Token", tok, "Origin", "https://evil.example"}},
		"same-origin without a token":  {"/count/apples", "", []string{"Sec-Fetch-Site", "same-origin"}},
		"no headers and no token":      {"/logout", "x=y", nil},
		"a token that is not the page": {"/count/apples", "", []string{"X-CSRF-Token", tok[:len(tok)-2] + "AA", "Sec-Fetch-Site", "same-origin"}},
	} {
		resp, body := c.send(http.MethodPost, tc.path, tc.form, tc.hdr...)
		if resp.StatusCode != http.StatusForbidden || body != "Forbidden" {
			t.Errorf("%s: %d %q", name, resp.StatusCode, body)
		}
	}
	if st := c.state(); st.User == nil || *st.User != "ada" || len(st.Counts) != 0 {
		t.Errorf("refused requests changed the session: %+v", st)
	}
}

// TestErrorPagesDoNotEcho sends requests that fail before or inside the
// app, each carrying a session cookie and a header with secret values, over
// a real connection: no answer may quote them. Fiber's default error
// handler would, for the requests fasthttp cannot parse: its error message
// holds the request's header bytes.
func TestErrorPagesDoNotEcho(t *testing.T) {
	app, err := newApp(session.Config[Val, Msg]{Secrets: [][]byte{[]byte("example test key, thirty-two bytes")}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = app.Listener(ln)
	}()
	defer func() {
		_ = app.Shutdown()
		<-done
	}()
	const cookie, header = "SecretCookieValue0123456789", "SecretHeaderValue0123456789"
	for _, tc := range []struct {
		name    string
		request string
		status  int
	}{
		{"a header line without a colon", "GET / HTTP/1.1\r\nHost: example.com\r\nCookie: session=" + cookie + "\r\nX-Token " + header + "\r\nConnection: close\r\n\r\n", http.StatusBadRequest},
		{"a NUL in a header value", "GET / HTTP/1.1\r\nHost: example.com\r\nCookie: session=" + cookie + "\r\nX-Token: " + header + "\x00\r\nContent-Length: -1\r\n\r\n", http.StatusBadRequest},
		{"a bad Content-Length", "POST /login HTTP/1.1\r\nHost: example.com\r\nCookie: session=" + cookie + "\r\nX-Token: " + header + "\r\nContent-Length: x\r\n\r\n", http.StatusBadRequest},
		{"headers larger than the read buffer", "GET / HTTP/1.1\r\nHost: example.com\r\nCookie: session=" + cookie + "\r\nX-Token: " + header + strings.Repeat("A", 8<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"a route that does not exist", "GET /nowhere/" + header + " HTTP/1.1\r\nHost: example.com\r\nCookie: session=" + cookie + "\r\n\r\n", http.StatusNotFound},
		{"a method the route does not take", "GET /login HTTP/1.1\r\nHost: example.com\r\nCookie: session=" + cookie + "\r\nX-Token: " + header + "\r\n\r\n", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (%q)", resp.StatusCode, tc.status, b)
			}
			for _, secret := range []string{cookie, header} {
				if strings.Contains(string(b), secret) {
					t.Errorf("the answer echoes the request: %q", b)
				}
			}
			if string(b) != http.StatusText(tc.status) {
				t.Errorf("body %q, want %q", b, http.StatusText(tc.status))
			}
		})
	}
}

// TestDevices: two browsers sign in as the same user; each lists both and
// marks itself, and one signs the other out.
func TestDevices(t *testing.T) {
	a := newClient(t)
	a.ua = "Browser A/1.0"
	b := &client{t: t, do: a.do, cookies: map[string]string{}, ua: `Browser <b>"B"</b> & co`}
	const escapedA, escapedB = "Browser A/1.0", "Browser &lt;b&gt;&#34;B&#34;&lt;/b&gt; &amp; co"
	for _, c := range []*client{a, b} {
		if resp, _ := c.post("/login", "name=ada"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
	}
	// mine: the one item with the client's own user agent is this device,
	// and the others are those of others.
	check := func(name string, c *client, mine string, others ...string) {
		t.Helper()
		items := c.devices()
		if len(items) != 1+len(others) {
			t.Fatalf("%s lists %d devices, want %d: %q", name, len(items), 1+len(others), items)
		}
		current := 0
		for _, it := range items {
			if strings.Contains(it, "this device") {
				current++
				if !strings.HasPrefix(it, mine+" at ") {
					t.Errorf("%s marks another device as this one: %q", name, it)
				}
			}
		}
		if current != 1 {
			t.Errorf("%s marks %d devices as this one: %q", name, current, items)
		}
		for _, ua := range others {
			found := false
			for _, it := range items {
				found = found || strings.HasPrefix(it, ua+" at ") && !strings.Contains(it, "this device")
			}
			if !found {
				t.Errorf("%s does not list %q: %q", name, ua, items)
			}
		}
	}
	check("A", a, escapedA, escapedB)
	check("B", b, escapedB, escapedA)
	if _, page := b.send(http.MethodGet, "/", ""); strings.Contains(page, b.ua) {
		t.Errorf("the user agent is not escaped:\n%s", page)
	}
	// The JSON API lists them too, unescaped.
	st := b.state()
	if len(st.Devices) != 2 || st.Devices[0].Current == st.Devices[1].Current {
		t.Fatalf("devices in the API: %+v", st.Devices)
	}
	for _, d := range st.Devices {
		if d.Current != (d.UserAgent == b.ua) || d.UserAgent != a.ua && d.UserAgent != b.ua || d.Created.IsZero() || d.LastSeen.IsZero() {
			t.Errorf("device in the API: %+v", d)
		}
	}

	resp, _ := a.post("/logout-others", "x=y")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign out of other devices: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := a.send(http.MethodGet, "/", "")
	if !strings.Contains(page, `<p class="flash">Signed out of 1 other device</p>`) || !strings.Contains(page, "Signed in as <strong>ada</strong>") {
		t.Errorf("page after signing out of other devices:\n%s", page)
	}
	if strings.Contains(page, `action="/logout-others"`) {
		t.Errorf("the page offers to sign out of other devices with none left:\n%s", page)
	}
	check("A", a, escapedA)
	_, page = b.send(http.MethodGet, "/", "")
	if strings.Contains(page, "Signed in as") || !strings.Contains(page, `action="/login"`) || len(deviceItem.FindAllString(page, -1)) != 0 {
		t.Errorf("B is still signed in:\n%s", page)
	}
	if st := b.state(); st.User != nil || len(st.Devices) != 0 {
		t.Errorf("B's state: %+v", st)
	}
	// Nothing left to sign out of.
	a.post("/logout-others", "x=y")
	if st := a.state(); len(st.Flash) != 1 || st.Flash[0] != "Signed out of 0 other devices" || len(st.Devices) != 1 {
		t.Errorf("state after a second sign-out of other devices: %+v", st)
	}
}
