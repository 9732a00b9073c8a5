package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// csrfEnv is a Fiber app with the session middleware, the CSRF middleware
// and a few routes, over a counting store. Requests go to
// http://example.com unless a test says otherwise.
type csrfEnv struct {
	t     *testing.T
	m     *Manager[string, string]
	p     *CSRF
	app   *fiber.App
	store *countingStore

	mu      sync.Mutex
	refused []error // what the CSRF ErrorHandler got
	failed  []error // what the session ErrorHandler got
}

func newCSRFEnv(t *testing.T, cfg Config[string, string], ccfg CSRFConfig, fcfg ...fiber.Config) *csrfEnv {
	t.Helper()
	e := &csrfEnv{t: t, store: newCountingStore(t)}
	cfg.Store = e.store
	if cfg.Secrets == nil {
		cfg.Secrets = [][]byte{testKey}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.ErrorHandler = func(c *fiber.Ctx, err error) error {
		e.mu.Lock()
		e.failed = append(e.failed, err)
		e.mu.Unlock()
		return c.Status(http.StatusInternalServerError).SendString("Internal Server Error")
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ccfg.ErrorHandler == nil {
		ccfg.ErrorHandler = func(c *fiber.Ctx, err error) error {
			e.mu.Lock()
			e.refused = append(e.refused, err)
			e.mu.Unlock()
			return c.Status(http.StatusForbidden).SendString("Forbidden")
		}
	}
	p, err := NewCSRF(m, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	e.m, e.p = m, p
	e.app = fiber.New(fcfg...)
	e.app.Use(m.Handler(), p.Handler())
	sess := func(c *fiber.Ctx) *sess {
		s, err := m.Get(c)
		if err != nil {
			panic(err) // tests that make the store fail use other routes
		}
		return s
	}
	e.app.Get("/page", func(c *fiber.Ctx) error { return c.SendString("page") })
	e.app.Get("/form", func(c *fiber.Ctx) error {
		tok, err := CSRFToken(c)
		if err != nil {
			return err
		}
		return c.SendString(tok)
	})
	e.app.Get("/form2", func(c *fiber.Ctx) error {
		a, err := CSRFToken(c)
		if err != nil {
			return err
		}
		b, err := e.p.Token(c.Context())
		if err != nil {
			return err
		}
		return c.SendString(a + " " + b)
	})
	e.app.Get("/me", func(c *fiber.Ctx) error {
		s := sess(c)
		u, _ := s.Get("user")
		k, _ := s.Get("k")
		f, _ := s.GetFlash("f")
		return c.SendString(u + "|" + k + "|" + f)
	})
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		e.app.Add(method, "/set", func(c *fiber.Ctx) error {
			sess(c).Set("k", c.FormValue("v", "changed"))
			return c.SendString("ok")
		})
	}
	e.app.Post("/flash", func(c *fiber.Ctx) error { sess(c).Flash("f", "hello"); return c.SendString("ok") })
	e.app.Post("/noop", func(c *fiber.Ctx) error { return c.SendString("noop") })
	e.app.Post("/login", func(c *fiber.Ctx) error {
		s := sess(c)
		s.RegenerateID(true)
		s.Set("user", c.FormValue("name"))
		return c.SendString("ok")
	})
	e.app.Post("/rotate", func(c *fiber.Ctx) error {
		sess(c).RegenerateID(c.Query("delete") == "1")
		return c.SendString("ok")
	})
	e.app.Post("/logout", func(c *fiber.Ctx) error { sess(c).Destroy(); return c.SendString("ok") })
	return e
}

func (e *csrfEnv) lastRefusal() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.refused) == 0 {
		return nil
	}
	return e.refused[len(e.refused)-1]
}

// record returns the stored record under id.
func (e *csrfEnv) record(id string) (record[string, string], bool) {
	e.t.Helper()
	data, err := e.store.Store.Get(context.Background(), id)
	if errors.Is(err, ErrNotFound) {
		return record[string, string]{}, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var r record[string, string]
	if err := decodeRecord(data, &r); err != nil {
		e.t.Fatal(err)
	}
	return r, true
}

// putV1 stores a version 1 record with user=ada, as an older version of the
// library wrote it, and returns its id.
func (e *csrfEnv) putV1() string {
	e.t.Helper()
	now := time.Now()
	r := record[string, string]{created: ms(now), deadline: ms(now.Add(time.Hour)), written: ms(now), version: 1,
		vals: []entry[string]{{key: "user", raw: []byte(`"ada"`)}}}
	data, err := encodeRecord[string, string](JSON{}, &r)
	if err != nil || data[0] != 1 {
		e.t.Fatalf("%v %x", err, data)
	}
	id := newID()
	if err := e.store.Store.Set(context.Background(), id, data, time.Hour); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// csrfBrowser keeps cookies by name, like a browser on example.com.
type csrfBrowser struct {
	e   *csrfEnv
	jar map[string]string
}

func (e *csrfEnv) browser() *csrfBrowser { return &csrfBrowser{e: e, jar: map[string]string{}} }

// sameOrigin are the headers a current browser sends with a same-origin post.
var sameOriginHeaders = map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}

// do sends a request with the jar's cookies and hdr, and keeps the cookies
// the response sets (dropping expired ones).
func (b *csrfBrowser) do(method, target string, body io.Reader, contentType string, hdr map[string]string) (*http.Response, string) {
	b.e.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = "http://example.com" + target
	}
	req := httptest.NewRequest(method, target, body)
	req.RequestURI = req.URL.RequestURI() // the server takes the host from the Host header
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	for k, v := range b.jar {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := b.e.app.Test(req, -1)
	if err != nil {
		b.e.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Value == "" || c.MaxAge < 0 || !c.Expires.IsZero() && c.Expires.Before(time.Now()) {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c.Value
		}
	}
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// token asks the app for a token (GET /form).
func (b *csrfBrowser) token() string {
	b.e.t.Helper()
	resp, tok := b.do(http.MethodGet, "/form", nil, "", nil)
	if resp.StatusCode != 200 || len(tok) != maskedLen {
		b.e.t.Fatalf("GET /form: %d %q", resp.StatusCode, tok)
	}
	return tok
}

// post sends an urlencoded form post with the token in the form field (none
// when tok is "") and hdr.
func (b *csrfBrowser) post(path, tok string, hdr map[string]string) (*http.Response, string) {
	b.e.t.Helper()
	form := url.Values{"v": {"changed"}, "name": {"ada"}}
	if tok != "" {
		form.Set("csrf_token", tok)
	}
	return b.do(http.MethodPost, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", hdr)
}

// id returns the session id of the jar's session cookie.
func (b *csrfBrowser) id() string {
	v := b.jar["session"]
	if i := strings.IndexByte(v, '.'); i > 0 {
		return v[:i]
	}
	return ""
}

// me returns "user|k|flash" of the browser's session.
func (b *csrfBrowser) me() string {
	b.e.t.Helper()
	_, s := b.do(http.MethodGet, "/me", nil, "", nil)
	return s
}

// secretOf unmasks tok.
func secretOf(t *testing.T, tok string) []byte {
	t.Helper()
	var s [csrfLen]byte
	if !unmaskCSRF([]byte(tok), &s) {
		t.Fatalf("token %q does not unmask", tok)
	}
	return s[:]
}

// established returns a browser whose stored session has k=orig and its own
// CSRF secret, and a token for it.
func (e *csrfEnv) established() (*csrfBrowser, string) {
	e.t.Helper()
	b := e.browser()
	tok := b.token() // no session yet: the secret is in the CSRF cookie
	form := url.Values{"v": {"orig"}, "csrf_token": {tok}}
	if resp, _ := b.do(http.MethodPost, "/set", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", sameOriginHeaders); resp.StatusCode != 200 {
		e.t.Fatalf("establishing a session: %d", resp.StatusCode)
	}
	tok = b.token() // the session is stored now: it gets a secret of its own
	if r, _ := e.record(b.id()); r.csrf == nil || !bytes.Equal(r.csrf, secretOf(e.t, tok)) {
		e.t.Fatalf("the stored session has no secret of its own: %+v", r)
	}
	if _, ok := b.jar["__Host-csrf"]; ok {
		e.t.Fatal("the CSRF cookie outlived the session's own secret")
	}
	return b, tok
}

func TestCSRFOrigin(t *testing.T) {
	const (
		refused = iota
		cross   // refused by the origin layer, before the session is read
		missing // refused by the token layer: no token
		passes
	)
	for _, tc := range []struct {
		name           string
		method         string
		site, origin   string
		token, inField bool // send the token; in the form field, else in the header
		want           int
	}{
		{"cross-site form post", "POST", "cross-site", "http://evil.example", true, true, cross},
		{"cross-site fetch with the header", "POST", "cross-site", "http://evil.example", true, false, cross},
		{"same-site (a subdomain)", "POST", "same-site", "http://sub.example.com", true, true, cross},
		{"cross-site PUT", "PUT", "cross-site", "http://evil.example", true, false, cross},
		{"cross-site PATCH", "PATCH", "cross-site", "http://evil.example", true, false, cross},
		{"cross-site DELETE", "DELETE", "cross-site", "http://evil.example", true, false, cross},
		{"an unknown Sec-Fetch-Site", "POST", "same-origin, cross-site", "http://example.com", true, true, cross},
		{"no Sec-Fetch-Site, other Origin", "POST", "", "http://evil.example", true, true, cross},
		{"no Sec-Fetch-Site, Origin null", "POST", "", "null", true, true, cross},
		{"no Sec-Fetch-Site, Origin with https", "POST", "", "https://example.com", true, true, cross},
		{"no Sec-Fetch-Site, Origin with another port", "POST", "", "http://example.com:8080", true, true, cross},
		{"no Sec-Fetch-Site, Origin with a path", "POST", "", "http://example.com/x", true, true, cross},
		{"no Sec-Fetch-Site, a subdomain's Origin", "POST", "", "http://sub.example.com", true, true, cross},
		{"same-origin with the token", "POST", "same-origin", "http://example.com", true, true, passes},
		{"same-origin fetch with the header", "POST", "same-origin", "http://example.com", true, false, passes},
		{"same-origin DELETE", "DELETE", "same-origin", "http://example.com", true, false, passes},
		{"Sec-Fetch-Site none with the token", "POST", "none", "", true, true, passes},
		{"no Sec-Fetch-Site, own Origin", "POST", "", "http://example.com", true, true, passes},
		{"own Origin, other case, default port", "POST", "", "HTTP://Example.COM:80", true, true, passes},
		{"no headers (old browser, curl) with the token", "POST", "", "", true, true, passes},
		{"no headers (old browser, curl) without a token", "POST", "", "", false, true, missing},
		{"same-origin without a token", "POST", "same-origin", "http://example.com", false, true, missing},
		{"cross-site GET", "GET", "cross-site", "http://evil.example", false, true, passes},
		{"cross-site HEAD", "HEAD", "cross-site", "http://evil.example", false, true, passes},
		{"cross-site OPTIONS", "OPTIONS", "cross-site", "http://evil.example", false, true, passes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
			e.app.Add(http.MethodGet, "/set", func(c *fiber.Ctx) error { return c.SendString("ok") })
			e.app.Add(http.MethodHead, "/set", func(c *fiber.Ctx) error { return nil })
			e.app.Add(http.MethodOptions, "/set", func(c *fiber.Ctx) error { return nil })
			b, tok := e.established()
			hdr := map[string]string{}
			if tc.site != "" {
				hdr["Sec-Fetch-Site"] = tc.site
			}
			if tc.origin != "" {
				hdr["Origin"] = tc.origin
			}
			form := url.Values{"v": {"changed"}}
			if tc.token && tc.inField {
				form.Set("csrf_token", tok)
			}
			if tc.token && !tc.inField {
				hdr["X-CSRF-Token"] = tok
			}
			gets, writes := e.store.gets.Load(), e.store.writes()
			resp, body := b.do(tc.method, "/set", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", hdr)
			err := e.lastRefusal()
			if tc.want == passes {
				if resp.StatusCode == http.StatusForbidden || err != nil {
					t.Fatalf("refused: %d %v", resp.StatusCode, err)
				}
				if tc.method != "GET" && tc.method != "HEAD" && tc.method != "OPTIONS" && b.me() != "|changed|" {
					t.Errorf("the request passed but the session is %q", b.me())
				}
				if tc.method == "GET" && e.store.gets.Load() != gets {
					t.Error("a GET that asks for no token read the store")
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || body != "Forbidden" {
				t.Errorf("status %d %q, want 403", resp.StatusCode, body)
			}
			if !errors.Is(err, ErrCSRF) {
				t.Fatalf("the error handler got %v, want an ErrCSRF", err)
			}
			want := map[int]string{cross: "cross-origin", missing: "missing token"}[tc.want]
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if tc.want == cross && e.store.gets.Load() != gets {
				t.Error("the origin layer read the store")
			}
			if e.store.writes() != writes {
				t.Error("a refused request wrote to the store")
			}
			if got := b.me(); got != "|orig|" {
				t.Errorf("a refused request changed the session: %q", got)
			}
		})
	}
}

func TestCSRFDefaultErrorHandler(t *testing.T) {
	m, err := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewCSRF(m, CSRFConfig{})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	app.Use(m.Handler(), p.Handler())
	app.Post("/", func(c *fiber.Ctx) error { return c.SendString("unreachable") })
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {}} {
		req := httptest.NewRequest(http.MethodPost, "http://example.com/", nil)
		req.RequestURI = req.URL.RequestURI() // a Host header, as browsers send
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || string(b) != "Forbidden" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%v: %d %q %q", hdr, resp.StatusCode, b, resp.Header.Get("Content-Type"))
		}
	}
}

func TestCSRFTokenTransport(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	b, tok := e.established()
	_, otherTok := e.established()
	multi := func(field, value string) (io.Reader, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("v", "changed")
		if field != "" {
			_ = w.WriteField(field, value)
		}
		fw, _ := w.CreateFormFile("upload", "a.txt")
		_, _ = fw.Write([]byte("file body"))
		_ = w.Close()
		return &buf, w.FormDataContentType()
	}
	urlenc := func(field, value string) (io.Reader, string) {
		form := url.Values{"v": {"changed"}}
		if field != "" {
			form.Set(field, value)
		}
		return strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	wrongFirst := "x" // a token that differs from tok in its first character
	if tok[0] == 'x' {
		wrongFirst = "y"
	}
	flipped := []byte(tok)
	flipped[50] ^= 'A' ^ 'B'
	if flipped[50] == tok[50] {
		flipped[50] = 'C'
	}
	for _, tc := range []struct {
		name   string
		body   func(field, value string) (io.Reader, string)
		field  string // form field name ("" for none)
		value  string
		header string // X-CSRF-Token
		query  string
		want   string // "" passes, else the refusal's words
	}{
		{"header (fetch)", urlenc, "", "", tok, "", ""},
		{"urlencoded field", urlenc, "csrf_token", tok, "", "", ""},
		{"multipart field", multi, "csrf_token", tok, "", "", ""},
		{"header wins over the field", urlenc, "csrf_token", tok, wrongFirst + tok[1:], "", "wrong token"},
		{"wrong token (another session's)", urlenc, "csrf_token", otherTok, "", "", "wrong token"},
		{"a flipped character", urlenc, "csrf_token", string(flipped), "", "", "wrong token"},
		{"truncated", urlenc, "csrf_token", tok[:len(tok)-1], "", "", "wrong token"},
		{"one character more", urlenc, "csrf_token", tok + "A", "", "", "wrong token"},
		{"not base64url", urlenc, "csrf_token", strings.Repeat("!", maskedLen), "", "", "wrong token"},
		{"standard base64 padding", urlenc, "csrf_token", tok[:84] + "==", "", "", "wrong token"},
		{"the bare secret", urlenc, "csrf_token", enc.EncodeToString(secretOf(t, tok)), "", "", "wrong token"},
		{"the session cookie", urlenc, "csrf_token", b.jar["session"], "", "", "wrong token"},
		{"empty field", urlenc, "csrf_token", "", "", "", "missing token"},
		{"empty multipart field", multi, "csrf_token", "", "", "", "missing token"},
		{"field under another name", urlenc, "csrf", tok, "", "", "missing token"},
		{"only in the query string", urlenc, "", "", "", "?csrf_token=" + url.QueryEscape(tok), "missing token"},
		{"multipart without the field", multi, "", "", "", "", "missing token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := tc.body(tc.field, tc.value)
			hdr := map[string]string{"Sec-Fetch-Site": "same-origin"}
			if tc.header != "" {
				hdr["X-CSRF-Token"] = tc.header
			}
			e.mu.Lock()
			e.refused = nil
			e.mu.Unlock()
			resp, _ := b.do(http.MethodPost, "/set"+tc.query, body, ct, hdr)
			err := e.lastRefusal()
			if tc.want == "" {
				if resp.StatusCode != 200 || b.me() != "|changed|" {
					t.Errorf("refused: %d %v", resp.StatusCode, err)
				}
				form := url.Values{"v": {"orig"}, "csrf_token": {tok}}
				b.do(http.MethodPost, "/set", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", sameOriginHeaders)
				return
			}
			if resp.StatusCode != 403 || !errors.Is(err, ErrCSRF) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("status %d, error %v; want 403 and %q", resp.StatusCode, err, tc.want)
			}
			if got := b.me(); got != "|orig|" {
				t.Errorf("session changed: %q", got)
			}
		})
	}
}

func TestCSRFMaskedTokens(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	b, first := e.established()
	_, two := b.do(http.MethodGet, "/form2", nil, "", nil)
	toks := append(strings.Fields(two), first, b.token())
	seen := map[string]bool{}
	for _, tok := range toks {
		if seen[tok] || len(tok) != maskedLen {
			t.Fatalf("tokens repeat or have the wrong length: %q", toks)
		}
		seen[tok] = true
		if !bytes.Equal(secretOf(t, tok), secretOf(t, first)) {
			t.Error("tokens of one session unmask to different secrets")
		}
		if resp, _ := b.post("/set", tok, sameOriginHeaders); resp.StatusCode != 200 {
			t.Errorf("token %q refused", tok)
		}
	}
	// No token contains the secret in the clear.
	raw := enc.EncodeToString(secretOf(t, first))
	for _, tok := range toks {
		if strings.Contains(tok, raw[:16]) {
			t.Errorf("token %q shows the secret", tok)
		}
	}
}

func TestCSRFRotation(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		deleteOld  bool
	}{
		{"RegenerateID(true)", "/rotate?delete=1", true},
		{"RegenerateID(false)", "/rotate", false},
		{"login", "/login", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
			b, old := e.established()
			oldID, oldCookie := b.id(), b.jar["session"]
			if resp, _ := b.post(tc.path, old, sameOriginHeaders); resp.StatusCode != 200 {
				t.Fatalf("rotation refused: %d", resp.StatusCode)
			}
			if b.id() == oldID {
				t.Fatal("the id did not change")
			}
			// The new record has a new secret already, made with the rotation.
			r, _ := e.record(b.id())
			if r.csrf == nil || bytes.Equal(r.csrf, secretOf(t, old)) {
				t.Errorf("secret after rotation: %x", r.csrf)
			}
			resp, _ := b.post("/set", old, sameOriginHeaders)
			if err := e.lastRefusal(); resp.StatusCode != 403 || !strings.Contains(err.Error(), "wrong token") {
				t.Errorf("the old token after rotation: %d %v", resp.StatusCode, err)
			}
			writes := e.store.writes()
			tok := b.token()
			if e.store.writes() != writes {
				t.Error("the first token after a rotation cost a store write")
			}
			if tok == old || bytes.Equal(secretOf(t, tok), secretOf(t, old)) {
				t.Error("the token did not change")
			}
			if resp, _ := b.post("/set", tok, sameOriginHeaders); resp.StatusCode != 200 {
				t.Errorf("the new token refused: %d", resp.StatusCode)
			}
			// The grace copy of the old id holds no secret: a request in
			// flight with the old cookie and the old token is refused too.
			if g, ok := e.record(oldID); ok != !tc.deleteOld || ok && (!g.moved() || g.csrf != nil) {
				t.Errorf("old record: %v %+v", ok, g)
			}
			late := e.browser()
			late.jar["session"] = oldCookie
			if resp, _ := late.post("/set", old, sameOriginHeaders); resp.StatusCode != 403 {
				t.Errorf("the old cookie with the old token: %d", resp.StatusCode)
			}
		})
	}
	t.Run("a read-only copy's secret", func(t *testing.T) {
		// Grace copies are written without the secret; one that has it
		// anyway (written by hand, or by a future version) is read-only,
		// so its secret is not the session's.
		e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
		now := time.Now()
		secret := newCSRFSecret()
		r := record[string, string]{flags: flagMoved, created: ms(now), deadline: ms(now.Add(time.Hour)), written: ms(now), csrf: secret}
		data, _ := encodeRecord[string, string](JSON{}, &r)
		id := newID()
		_ = e.store.Store.Set(context.Background(), id, data, time.Minute)
		b := e.browser()
		b.jar["session"] = e.m.signer.sign(id)
		if resp, _ := b.post("/set", maskCSRF(secret), sameOriginHeaders); resp.StatusCode != 403 {
			t.Errorf("the secret of a read-only copy: %d", resp.StatusCode)
		}
	})
	t.Run("Destroy", func(t *testing.T) {
		e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
		b, old := e.established()
		if resp, _ := b.post("/logout", old, sameOriginHeaders); resp.StatusCode != 200 || b.jar["session"] != "" {
			t.Fatalf("logout: %d %q", resp.StatusCode, b.jar)
		}
		if resp, _ := b.post("/set", old, sameOriginHeaders); resp.StatusCode != 403 {
			t.Errorf("the token of a destroyed session: %d", resp.StatusCode)
		}
		tok := b.token()
		if bytes.Equal(secretOf(t, tok), secretOf(t, old)) {
			t.Error("the secret outlived Destroy")
		}
		if resp, _ := b.post("/set", tok, sameOriginHeaders); resp.StatusCode != 200 {
			t.Errorf("a new token after Destroy: %d", resp.StatusCode)
		}
	})
}

func TestCSRFLogin(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	b := e.browser()

	// Visitors who only look cost nothing; those who ask for a token cost
	// a cookie, and never a store write.
	if resp, _ := b.do(http.MethodGet, "/page", nil, "", nil); len(resp.Cookies()) != 0 {
		t.Errorf("a page without a form set %q", resp.Header.Values("Set-Cookie"))
	}
	resp, tok := b.do(http.MethodGet, "/form", nil, "", nil)
	sc := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"__Host-csrf=", "HttpOnly", "secure", "path=/", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("CSRF cookie %q lacks %q", sc, want)
		}
	}
	for _, not := range []string{"max-age", "expires", "domain", "session="} {
		if strings.Contains(strings.ToLower(sc), not) {
			t.Errorf("CSRF cookie %q has %q", sc, not)
		}
	}
	if resp.Header.Get("Vary") != "Cookie" {
		t.Errorf("Vary %q", resp.Header.Get("Vary"))
	}
	for range 3 {
		resp, again := b.do(http.MethodGet, "/form", nil, "", nil)
		if len(resp.Cookies()) != 0 || !bytes.Equal(secretOf(t, again), secretOf(t, tok)) {
			t.Errorf("a second visit changed the cookie: %q", resp.Header.Values("Set-Cookie"))
		}
	}
	// Two tokens in one response: one secret, one cookie.
	two := e.browser()
	resp, both := two.do(http.MethodGet, "/form2", nil, "", nil)
	if f := strings.Fields(both); len(f) != 2 || f[0] == f[1] || !bytes.Equal(secretOf(t, f[0]), secretOf(t, f[1])) || len(resp.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("two tokens for a visitor: %q, cookies %q", both, resp.Header.Values("Set-Cookie"))
	}
	if n := e.store.writes(); n != 0 {
		t.Fatalf("%d store writes for a visitor who only looked", n)
	}

	refusedWith := func(name string, b *csrfBrowser, tok string, hdr map[string]string, want string) {
		t.Helper()
		writes := e.store.writes()
		resp, _ := b.post("/login", tok, hdr)
		err := e.lastRefusal()
		if resp.StatusCode != 403 || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %d %v, want 403 with %q", name, resp.StatusCode, err, want)
		}
		if b.jar["session"] != "" || e.store.writes() != writes {
			t.Errorf("%s: a refused login made a session", name)
		}
	}
	copyOf := func(b *csrfBrowser) *csrfBrowser {
		c := e.browser()
		for k, v := range b.jar {
			c.jar[k] = v
		}
		return c
	}
	refusedWith("login CSRF (cross-site)", b, tok, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, "cross-origin")
	refusedWith("no token", b, "", sameOriginHeaders, "missing token")
	noCookie := copyOf(b)
	delete(noCookie.jar, "__Host-csrf")
	refusedWith("no CSRF cookie", noCookie, tok, sameOriginHeaders, "none was issued")
	tampered := copyOf(b)
	v := []byte(tampered.jar["__Host-csrf"])
	v[len(v)-2] ^= 1
	tampered.jar["__Host-csrf"] = string(v)
	refusedWith("tampered CSRF cookie", tampered, tok, sameOriginHeaders, "none was issued")
	// A session cookie value (signed with the same keys) is no CSRF cookie.
	sessionValue := e.m.signer.sign(enc.EncodeToString(secretOf(t, tok)))
	forged := copyOf(b)
	forged.jar["__Host-csrf"] = sessionValue
	refusedWith("a session cookie value as the CSRF cookie", forged, tok, sameOriginHeaders, "none was issued")
	// Another visitor's cookie with this visitor's token.
	stranger := e.browser()
	stranger.token()
	mixed := copyOf(b)
	mixed.jar["__Host-csrf"] = stranger.jar["__Host-csrf"]
	refusedWith("another visitor's CSRF cookie", mixed, tok, sameOriginHeaders, "wrong token")

	// And the other way round: the CSRF cookie's value is no session cookie.
	asSession := e.browser()
	asSession.jar["session"] = b.jar["__Host-csrf"]
	gets := e.store.gets.Load()
	if got := asSession.me(); got != "||" || e.store.gets.Load() != gets {
		t.Errorf("the CSRF cookie opened a session: %q", got)
	}

	// The real login.
	preLogin := tok
	if resp, _ := b.post("/login", tok, sameOriginHeaders); resp.StatusCode != 200 || b.jar["session"] == "" {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if got := b.me(); got != "ada||" {
		t.Errorf("after login: %q", got)
	}
	r, _ := e.record(b.id())
	if r.csrf == nil || bytes.Equal(r.csrf, secretOf(t, preLogin)) {
		t.Errorf("the session's secret after login: %x", r.csrf)
	}
	if resp, _ := b.post("/set", preLogin, sameOriginHeaders); resp.StatusCode != 403 {
		t.Errorf("the pre-login token after login: %d", resp.StatusCode)
	}
	resp, tok = b.do(http.MethodGet, "/form", nil, "", nil)
	if _, ok := b.jar["__Host-csrf"]; ok {
		t.Errorf("the CSRF cookie was not expired once the session had its own secret: %q", resp.Header.Values("Set-Cookie"))
	}
	if resp, _ := b.post("/set", tok, sameOriginHeaders); resp.StatusCode != 200 {
		t.Errorf("a token after login: %d", resp.StatusCode)
	}
}

func TestCSRFCookieSigning(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	id := newID()
	if _, _, ok := e.p.signer.verify([]byte(e.m.signer.sign(id))); ok {
		t.Error("a session cookie value verifies as a CSRF cookie")
	}
	if _, _, ok := e.m.signer.verify([]byte(e.p.signer.sign(id))); ok {
		t.Error("a CSRF cookie value verifies as a session cookie")
	}
	// Another manager with the same keys and another session cookie.
	m2, _ := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, CookieName: "other", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p2, err := NewCSRF(m2, CSRFConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := p2.signer.verify([]byte(e.p.signer.sign(id))); ok {
		t.Error("one manager's CSRF cookie verifies for another")
	}
}

// TestCSRFStoredWithoutSecret: a session stored before it had a secret (by
// an older version, as a version 1 record) accepts the CSRF cookie's token,
// and gets a secret of its own when a token is asked for.
func TestCSRFStoredWithoutSecret(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	b := e.browser()
	cookieTok := b.token() // as a visitor: the CSRF cookie
	id := e.putV1()
	b.jar["session"] = e.m.signer.sign(id)
	if got := b.me(); got != "ada||" {
		t.Fatalf("the version 1 record does not load: %q", got)
	}
	if resp, _ := b.post("/set", "", sameOriginHeaders); resp.StatusCode != 403 {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	if resp, _ := b.post("/set", cookieTok, sameOriginHeaders); resp.StatusCode != 200 {
		t.Errorf("the CSRF cookie's token for a session without a secret: %d", resp.StatusCode)
	}
	if r, _ := e.record(id); r.csrf != nil || find(r.vals, "user") < 0 {
		t.Errorf("after a post: %+v", r)
	}
	noCookie := e.browser()
	noCookie.jar["session"] = b.jar["session"]
	if resp, _ := noCookie.post("/set", cookieTok, sameOriginHeaders); resp.StatusCode != 403 {
		t.Errorf("a session without a secret and no CSRF cookie: %d", resp.StatusCode)
	}

	writes := e.store.writes()
	tok := b.token()
	if e.store.writes() != writes+1 {
		t.Errorf("giving the session a secret took %d writes, want 1", e.store.writes()-writes)
	}
	r, _ := e.record(id)
	if !bytes.Equal(r.csrf, secretOf(t, tok)) || find(r.vals, "user") < 0 {
		t.Errorf("after the first token: %+v", r)
	}
	if _, ok := b.jar["__Host-csrf"]; ok {
		t.Error("the CSRF cookie was not expired")
	}
	if resp, _ := b.post("/set", tok, sameOriginHeaders); resp.StatusCode != 200 {
		t.Errorf("the session's own token: %d", resp.StatusCode)
	}
	// The cookie's token no longer works, even with the cookie sent again.
	b.jar["__Host-csrf"] = e.p.signer.sign(enc.EncodeToString(secretOf(t, cookieTok)))
	if resp, _ := b.post("/set", cookieTok, sameOriginHeaders); resp.StatusCode != 403 {
		t.Errorf("the CSRF cookie's token once the session has its own: %d", resp.StatusCode)
	}
}

func TestCSRFTrustedOrigins(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{TrustedOrigins: []string{"https://app.example.org", "http://localhost:5173"}})
	b, tok := e.established()
	for _, tc := range []struct {
		site, origin string
		token        bool
		want         int
	}{
		{"cross-site", "https://app.example.org", true, 200},
		{"same-site", "https://APP.example.org:443", true, 200},
		{"", "https://app.example.org", true, 200},
		{"cross-site", "http://localhost:5173", true, 200},
		{"cross-site", "https://app.example.org", false, 403}, // trusted origins still need a token
		{"cross-site", "http://app.example.org", true, 403},
		{"cross-site", "https://app.example.org:8443", true, 403},
		{"cross-site", "http://localhost:5174", true, 403},
		{"cross-site", "", true, 403},
		{"", "https://evil.example.org", true, 403},
	} {
		hdr := map[string]string{}
		if tc.site != "" {
			hdr["Sec-Fetch-Site"] = tc.site
		}
		if tc.origin != "" {
			hdr["Origin"] = tc.origin
		}
		tk := ""
		if tc.token {
			tk = tok
		}
		if resp, _ := b.post("/set", tk, hdr); resp.StatusCode != tc.want {
			t.Errorf("%+v: %d", tc, resp.StatusCode)
		}
	}
}

// TestCSRFTrustedProxy: the request's own origin is what Fiber makes of
// X-Forwarded-Host and X-Forwarded-Proto, which it honours only from a
// trusted proxy when EnableTrustedProxyCheck is on.
func TestCSRFTrustedProxy(t *testing.T) {
	proxied := map[string]string{
		"Host":              "10.0.0.5:8080",
		"X-Forwarded-Host":  "app.example.com",
		"X-Forwarded-Proto": "https",
		"Origin":            "https://app.example.com",
	}
	for _, tc := range []struct {
		name    string
		proxies []string
		want    int
	}{
		{"trusted proxy (the test's remote address)", []string{"0.0.0.0"}, 200},
		{"trusted proxy range", []string{"0.0.0.0/0"}, 200},
		{"untrusted proxy", []string{"10.9.9.9"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{}, fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: tc.proxies})
			b := e.browser()
			tok := b.token()
			resp, _ := b.post("/set", tok, proxied)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d (%v)", resp.StatusCode, tc.want, e.lastRefusal())
			}
			if tc.want == 403 && !strings.Contains(e.lastRefusal().Error(), "cross-origin") {
				t.Errorf("refused for %v", e.lastRefusal())
			}
			// The backend's own address as Origin passes only when the
			// proxy's headers were ignored.
			direct := map[string]string{"Host": "10.0.0.5:8080", "X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https", "Origin": "http://10.0.0.5:8080"}
			if resp, _ := b.post("/set", tok, direct); (resp.StatusCode == 200) != (tc.want == 403) {
				t.Errorf("Origin of the backend's own address: %d %v", resp.StatusCode, e.lastRefusal())
			}
		})
	}
}

func TestCSRFStoreDown(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	b, tok := e.established()
	e.store.fail.Store(true)
	for _, tc := range []struct {
		name string
		send func() *http.Response
	}{
		{"post", func() *http.Response { r, _ := b.post("/set", tok, sameOriginHeaders); return r }},
		{"token", func() *http.Response { r, _ := b.do(http.MethodGet, "/form", nil, "", nil); return r }},
	} {
		e.mu.Lock()
		e.failed, e.refused = nil, nil
		e.mu.Unlock()
		resp := tc.send()
		var se *StoreError
		e.mu.Lock()
		failed, refused := e.failed, e.refused
		e.mu.Unlock()
		if resp.StatusCode != 500 || len(refused) != 0 || len(failed) != 1 || !errors.As(failed[0], &se) {
			t.Errorf("%s: status %d, session error handler got %v, CSRF error handler %v", tc.name, resp.StatusCode, failed, refused)
		}
	}
	e.store.fail.Store(false)
	if got := b.me(); got != "|orig|" {
		t.Errorf("after the outage: %q", got)
	}
}

// TestCSRFFlashNotConsumed: the check reads the session, but does not
// consume flash messages for a handler that never asks for them, nor save
// anything for a refused request.
func TestCSRFFlashNotConsumed(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	b, tok := e.established()
	if resp, _ := b.post("/flash", tok, sameOriginHeaders); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	writes := e.store.writes()
	if resp, _ := b.post("/noop", tok, sameOriginHeaders); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if resp, _ := b.post("/noop", "", sameOriginHeaders); resp.StatusCode != 403 {
		t.Fatal(resp.StatusCode)
	}
	if e.store.writes() != writes {
		t.Error("checks wrote to the store")
	}
	if got := b.me(); got != "|orig|hello" {
		t.Errorf("the flash did not survive the checks: %q", got)
	}
	if got := b.me(); got != "|orig|" {
		t.Errorf("the flash was not consumed by the page that showed it: %q", got)
	}
	// A handler that uses the session after the check sees the flash.
	b.post("/flash", tok, sameOriginHeaders)
	e.app.Post("/readflash", func(c *fiber.Ctx) error {
		s, _ := e.m.Get(c)
		f, _ := s.GetFlash("f")
		return c.SendString(f)
	})
	if _, got := b.post("/readflash", tok, sameOriginHeaders); got != "hello" {
		t.Errorf("flash in a checked post: %q", got)
	}
	if got := b.me(); got != "|orig|" {
		t.Errorf("flash read by a checked post was not consumed: %q", got)
	}
}

func TestCSRFNextAndNoMiddleware(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{Next: func(c *fiber.Ctx) bool { return strings.HasPrefix(c.Path(), "/open") }})
	e.app.Post("/open", func(c *fiber.Ctx) error {
		_, err := CSRFToken(c)
		if !errors.Is(err, ErrNoCSRF) {
			t.Errorf("CSRFToken on a skipped route: %v", err)
		}
		return c.SendString("open")
	})
	b := e.browser()
	if resp, body := b.do(http.MethodPost, "/open", nil, "", map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != 200 || body != "open" {
		t.Errorf("a skipped route: %d %q", resp.StatusCode, body)
	}

	// Token for a request its manager does not serve.
	app := fiber.New()
	app.Use(e.p.Handler())
	app.Get("/", func(c *fiber.Ctx) error {
		_, err := CSRFToken(c)
		if !errors.Is(err, ErrNoMiddleware) {
			t.Errorf("Token without the session middleware: %v", err)
		}
		return nil
	})
	if _, err := app.Test(httptest.NewRequest(http.MethodGet, "/", nil)); err != nil {
		t.Fatal(err)
	}
}

// TestCSRFConcurrentFirstSecret runs three requests on one stored session
// without a secret, all loaded before any saves: c changes a value, a and b
// each make a first secret. Barriers order the saves c, a, b: a's merge adds
// its secret to c's record, b's keeps a's (the first saved wins), and c's
// value survives both.
func TestCSRFConcurrentFirstSecret(t *testing.T) {
	e := newCSRFEnv(t, Config[string, string]{}, CSRFConfig{})
	id := e.putV1()
	cookie := e.m.signer.sign(id)
	var loaded sync.WaitGroup
	loaded.Add(3)
	aDone, cDone := make(chan struct{}), make(chan struct{})
	wait := func(c *fiber.Ctx) {
		loaded.Done()
		loaded.Wait() // everybody has read the record
		switch c.Params("who") {
		case "a":
			<-cDone
		case "b":
			<-aDone
		}
	}
	e.app.Get("/race/:who", func(c *fiber.Ctx) error {
		tok, err := CSRFToken(c)
		if err != nil {
			return err
		}
		wait(c)
		return c.SendString(tok)
	})
	e.app.Post("/race/:who", func(c *fiber.Ctx) error {
		s, err := e.m.Get(c)
		if err != nil {
			return err
		}
		s.Set("k", "v")
		wait(c)
		return c.SendString("ok")
	})
	var wg sync.WaitGroup
	toks := map[string]string{}
	var mu sync.Mutex
	send := func(method, who string, done chan struct{}, hdr map[string]string) {
		defer wg.Done()
		if done != nil {
			defer close(done)
		}
		req := httptest.NewRequest(method, "http://example.com/race/"+who, nil)
		req.RequestURI = req.URL.RequestURI() // a Host header, as browsers send
		req.Header.Set("Cookie", "session="+cookie)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := e.app.Test(req, -1)
		if err != nil {
			t.Error(err)
			return
		}
		data, _ := io.ReadAll(resp.Body)
		mu.Lock()
		toks[who] = string(data)
		mu.Unlock()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", who, resp.StatusCode, data)
		}
	}
	// c's post needs a token before the race: the CSRF cookie's, which a
	// session without a secret accepts.
	v := e.browser()
	ctok := v.token()
	wg.Add(3)
	go send(http.MethodGet, "a", aDone, nil)
	go send(http.MethodGet, "b", nil, nil)
	go send(http.MethodPost, "c", cDone, map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": ctok, "Cookie": "session=" + cookie + "; __Host-csrf=" + v.jar["__Host-csrf"]})
	wg.Wait()
	if t.Failed() {
		return
	}
	r, _ := e.record(id)
	if !bytes.Equal(r.csrf, secretOf(t, toks["a"])) {
		t.Fatalf("stored secret %x, want the first saved (a's %x)", r.csrf, secretOf(t, toks["a"]))
	}
	if k, ok := decodeEntry[string](e.m, r.vals, "k", nil); !ok || k != "v" || find(r.vals, "user") < 0 {
		t.Errorf("values after the race: %+v", r.vals)
	}
	b := e.browser()
	b.jar["session"] = cookie
	if resp, _ := b.post("/set", toks["a"], sameOriginHeaders); resp.StatusCode != 200 {
		t.Errorf("the first saved token: %d", resp.StatusCode)
	}
	if resp, _ := b.post("/set", toks["b"], sameOriginHeaders); resp.StatusCode != 403 {
		t.Errorf("the token whose secret lost the race: %d", resp.StatusCode)
	}
}

func TestCSRFConfig(t *testing.T) {
	m, err := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, Header: "X-Session", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	insecure, _ := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, CookieInsecure: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for name, tc := range map[string]struct {
		m    *Manager[string, string]
		cfg  CSRFConfig
		want string
	}{
		"header name":             {m, CSRFConfig{HeaderName: "X CSRF"}, "HeaderName"},
		"reserved header":         {m, CSRFConfig{HeaderName: "Cookie"}, "HeaderName"},
		"the session's header":    {m, CSRFConfig{HeaderName: "x-session"}, "HeaderName"},
		"field name":              {m, CSRFConfig{FieldName: "a\x00b"}, "FieldName"},
		"cookie name":             {m, CSRFConfig{CookieName: "csrf;"}, "CookieName"},
		"the session's cookie":    {m, CSRFConfig{CookieName: "session"}, "CookieName"},
		"__Host- without Secure":  {insecure, CSRFConfig{CookieName: "__Host-csrf"}, "CookieName"},
		"__Secure- w/o Secure":    {insecure, CSRFConfig{CookieName: "__Secure-csrf"}, "CookieName"},
		"origin with a slash":     {m, CSRFConfig{TrustedOrigins: []string{"https://a.example", "https://b.example/"}}, "TrustedOrigins[1]"},
		"origin with a path":      {m, CSRFConfig{TrustedOrigins: []string{"https://a.example/app"}}, "TrustedOrigins[0]"},
		"origin without scheme":   {m, CSRFConfig{TrustedOrigins: []string{"a.example"}}, "TrustedOrigins[0]"},
		"origin without host":     {m, CSRFConfig{TrustedOrigins: []string{"https://"}}, "TrustedOrigins[0]"},
		"origin with a query":     {m, CSRFConfig{TrustedOrigins: []string{"https://a.example?"}}, "TrustedOrigins[0]"},
		"origin with a fragment":  {m, CSRFConfig{TrustedOrigins: []string{"https://a.example#x"}}, "TrustedOrigins[0]"},
		"origin with user info":   {m, CSRFConfig{TrustedOrigins: []string{"https://u@a.example"}}, "TrustedOrigins[0]"},
		"origin null":             {m, CSRFConfig{TrustedOrigins: []string{"null"}}, "TrustedOrigins[0]"},
		"origin, opaque":          {m, CSRFConfig{TrustedOrigins: []string{"https:a.example"}}, "TrustedOrigins[0]"},
		"origin, space":           {m, CSRFConfig{TrustedOrigins: []string{"https://a.example "}}, "TrustedOrigins[0]"},
		"no manager":              {nil, CSRFConfig{}, "Manager"},
		"empty trusted origin":    {m, CSRFConfig{TrustedOrigins: []string{""}}, "TrustedOrigins[0]"},
		"origin with a backslash": {m, CSRFConfig{TrustedOrigins: []string{`https://a.example\`}}, "TrustedOrigins[0]"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := NewCSRF(tc.m, tc.cfg)
			if p != nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, %v; want an ErrConfig naming %q", p, err, tc.want)
			}
		})
	}
	// Defaults of the cookie name follow the session cookie.
	for _, tc := range []struct {
		cfg  Config[string, string]
		want string
	}{
		{Config[string, string]{}, "__Host-csrf"},
		{Config[string, string]{CookieInsecure: true}, "csrf"},
		{Config[string, string]{CookiePath: "/app"}, "csrf"},
		{Config[string, string]{CookieDomain: "example.com"}, "csrf"},
	} {
		tc.cfg.Secrets = [][]byte{testKey}
		tc.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		m, err := NewManager(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewCSRF(m, CSRFConfig{TrustedOrigins: []string{"https://a.example:8443", "chrome-extension://abc"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(p.cookie.Key()); got != tc.want || !p.cookie.HTTPOnly() || string(p.cookie.Path()) != tc.cfg.CookiePath && tc.cfg.CookiePath != "" {
			t.Errorf("%+v: cookie %q", tc.cfg, p.cookie.String())
		}
	}
}

func TestCSRFMask(t *testing.T) {
	secret := newCSRFSecret()
	a, b := maskCSRF(secret), maskCSRF(secret)
	if a == b || len(a) != maskedLen {
		t.Fatalf("masked tokens %q %q", a, b)
	}
	for _, tok := range []string{a, b} {
		var got [csrfLen]byte
		if !unmaskCSRF([]byte(tok), &got) || !bytes.Equal(got[:], secret) {
			t.Errorf("%q does not unmask to the secret", tok)
		}
	}
}

// FuzzCSRFCheck sends arbitrary tokens and CSRF cookies through the
// fasthttp wrapper: never a panic, never a pass.
func FuzzCSRFCheck(f *testing.F) {
	f.Add("", "")
	f.Add(strings.Repeat("A", maskedLen), strings.Repeat("A", tokenLen))
	f.Add(maskCSRF(newCSRFSecret()), newID()+"."+newID())
	f.Add("\x00\xff", "a.b")
	m, err := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	p, err := NewCSRF(m, CSRFConfig{})
	if err != nil {
		f.Fatal(err)
	}
	h := m.FastHTTP(p.FastHTTP(func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("passed") }, nil), nil)
	f.Fuzz(func(t *testing.T, tok, cookie string) {
		ctx := newFastCtx(http.MethodPost, "/", map[string]string{"X-CSRF-Token": tok, "Sec-Fetch-Site": "same-origin"}, map[string]string{"__Host-csrf": cookie}, "")
		h(ctx)
		if ctx.Response.StatusCode() != 403 {
			t.Fatalf("token %q with cookie %q: %d %q", tok, cookie, ctx.Response.StatusCode(), ctx.Response.Body())
		}
	})
}

// newFastCtx returns a request to http://example.com+path from 127.0.0.1.
func newFastCtx(method, path string, hdr, cookies map[string]string, body string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI("http://example.com" + path)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for k, v := range cookies {
		req.Header.SetCookie(k, v)
	}
	req.SetBodyString(body)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
	return ctx
}

// responseCookies returns the values of the cookies a response sets.
func responseCookies(ctx *fasthttp.RequestCtx) map[string]string {
	out := map[string]string{}
	ctx.Response.Header.VisitAllCookie(func(k, v []byte) {
		var c fasthttp.Cookie
		if c.ParseBytes(v) == nil {
			out[string(k)] = string(c.Value())
		}
	})
	return out
}

func TestCSRFFastHTTP(t *testing.T) {
	store := newCountingStore(t)
	m, err := NewManager(Config[string, string]{Secrets: [][]byte{testKey}, Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewCSRF(m, CSRFConfig{})
	if err != nil {
		t.Fatal(err)
	}
	inner := func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/form":
			tok, err := p.Token(ctx)
			if err != nil {
				ctx.Error(err.Error(), 500)
				return
			}
			ctx.SetBodyString(tok)
		case "/set":
			s, err := m.FromRequestCtx(ctx)
			if err != nil {
				ctx.Error(err.Error(), 500)
				return
			}
			s.Set("k", "v")
			ctx.SetBodyString("ok")
		}
	}
	var refused error
	custom := m.FastHTTP(p.FastHTTP(inner, func(ctx *fasthttp.RequestCtx, err error) {
		refused = err
		ctx.SetStatusCode(http.StatusTeapot)
	}), nil)
	plain := m.FastHTTP(p.FastHTTP(inner, nil), nil)

	ctx := newFastCtx(http.MethodGet, "/form", nil, nil, "")
	plain(ctx)
	tok := string(ctx.Response.Body())
	cookie := responseCookies(ctx)["__Host-csrf"]
	if len(tok) != maskedLen || cookie == "" || store.writes() != 0 {
		t.Fatalf("GET /form: %q, cookie %q, %d writes", tok, cookie, store.writes())
	}
	cookies := map[string]string{"__Host-csrf": cookie}
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
		err  string
	}{
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": tok}, 200, ""},
		{"own Origin", map[string]string{"Origin": "http://example.com", "X-CSRF-Token": tok}, 200, ""},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": tok}, 418, "cross-origin"},
		{"https Origin on a plain connection", map[string]string{"Origin": "https://example.com", "X-CSRF-Token": tok}, 418, "cross-origin"},
		{"no token", map[string]string{"Sec-Fetch-Site": "same-origin"}, 418, "missing token"},
		{"wrong token", map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": maskCSRF(newCSRFSecret())}, 418, "wrong token"},
	} {
		refused = nil
		ctx := newFastCtx(http.MethodPost, "/set", tc.hdr, cookies, "")
		custom(ctx)
		if got := ctx.Response.StatusCode(); got != tc.want || tc.err != "" && (!errors.Is(refused, ErrCSRF) || !strings.Contains(refused.Error(), tc.err)) {
			t.Errorf("%s: %d %v", tc.name, got, refused)
		}
		if tc.want == 200 && responseCookies(ctx)["session"] == "" {
			t.Errorf("%s: no session", tc.name)
		}
		if tc.want != 200 && len(responseCookies(ctx)) != 0 {
			t.Errorf("%s: a refused request set cookies", tc.name)
		}
		// The default error handler: 403 "Forbidden".
		ctx = newFastCtx(http.MethodPost, "/set", tc.hdr, cookies, "")
		plain(ctx)
		if tc.want != 200 && (ctx.Response.StatusCode() != 403 || string(ctx.Response.Body()) != "Forbidden") {
			t.Errorf("%s, default error handler: %d %q", tc.name, ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	// A failed load goes to onError as a *StoreError; by default a 500.
	ctx = newFastCtx(http.MethodPost, "/set", map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": tok}, cookies, "")
	plain(ctx)
	session := responseCookies(ctx)["session"]
	if session == "" {
		t.Fatal("no session")
	}
	store.fail.Store(true)
	defer store.fail.Store(false)
	refused = nil
	hdr := map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": tok}
	ctx = newFastCtx(http.MethodPost, "/set", hdr, map[string]string{"session": session, "__Host-csrf": cookie}, "")
	custom(ctx)
	var se *StoreError
	if ctx.Response.StatusCode() != 418 || !errors.As(refused, &se) || errors.Is(refused, ErrCSRF) {
		t.Errorf("store down, custom handler: %d %v", ctx.Response.StatusCode(), refused)
	}
	ctx = newFastCtx(http.MethodPost, "/set", hdr, map[string]string{"session": session, "__Host-csrf": cookie}, "")
	plain(ctx)
	if ctx.Response.StatusCode() != 500 || string(ctx.Response.Body()) != "Internal Server Error" {
		t.Errorf("store down, default handler: %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}
