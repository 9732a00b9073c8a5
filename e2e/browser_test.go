// Package e2e drives the example app (../_example) in headless Chromium:
// the browser, not a test client, decides which cookies it keeps and sends,
// which headers a form post carries and what a script can read.
//
// The test builds the example with the go command, runs it on a free
// loopback port and drives it through http://localhost (browsers accept the
// example's Secure cookies over plain HTTP only from localhost). Chromium is
// $CHROMIUM, else /usr/bin/chromium (.ci/browser installs Debian's); without
// it the test skips, and with SESSION_REQUIRE_SERVERS=1 (as in CI) it fails.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The example's session cookie name (session.Config's default).
const sessionCookie = "session"

// pageState is what a page of the example shows, read from its DOM.
type pageState struct {
	URL     string   `json:"url"`
	Text    string   `json:"text"`    // document.body.innerText
	Flash   []string `json:"flash"`   // the text of each p.flash
	User    *string  `json:"user"`    // "Signed in as <strong>…</strong>"; nil when absent
	SignIn  bool     `json:"signIn"`  // the sign-in form, with its name field
	SignOut bool     `json:"signOut"` // the sign-out form, with its button
	Cookie  string   `json:"cookie"`  // document.cookie
}

const readPage = `(() => {
	const strong = document.querySelector("p > strong");
	return {
		url: location.href,
		text: document.body ? document.body.innerText.trim() : "",
		flash: Array.from(document.querySelectorAll("p.flash"), p => p.textContent),
		user: strong && strong.parentElement.textContent.startsWith("Signed in as") ? strong.textContent : null,
		signIn: !!document.querySelector('form[method="post"][action="/login"] input[name="name"]'),
		signOut: !!document.querySelector('form[method="post"][action="/logout"] button'),
		cookie: document.cookie,
	};
})()`

func TestBrowser(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		unavailable(t, "Chromium (run .ci/browser, or set CHROMIUM)", err)
	}

	start := time.Now()
	origin := startExample(t)
	t.Logf("the example listens at %s (built and started in %v)", origin, time.Since(start).Round(time.Millisecond))
	attacker := startAttacker(t)
	_, attackerPort, _ := net.SplitHostPort(attacker.Listener.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
	)
	ctx, cancel = chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		unavailable(t, "Chromium at "+chromium, err)
	}
	t.Logf("Chromium started (%v)", time.Since(start).Round(time.Millisecond))
	requests := watchRequests(ctx)

	b := &browser{t: t, ctx: ctx, origin: origin}

	// A new visitor sees the sign-in form and no flash.
	st := b.navigate(origin + "/")
	if !st.SignIn || st.SignOut || st.User != nil || len(st.Flash) != 0 {
		t.Fatalf("first visit: want the sign-in form and no flash, got %+v", st)
	}

	// Sign in through the form: the welcome flash is shown once.
	b.run(chromedp.SetValue(`input[name="name"]`, "ada", chromedp.ByQuery))
	st = b.submit(`form[action="/login"] button`, http.StatusOK)
	if st.User == nil || *st.User != "ada" || !st.SignOut || st.SignIn {
		t.Fatalf("after signing in: want %q signed in, got %+v", "ada", st)
	}
	if len(st.Flash) != 1 || st.Flash[0] != "Welcome, ada" {
		t.Errorf("after signing in: flash %q, want exactly [\"Welcome, ada\"]", st.Flash)
	}
	signedIn := b.sessionCookie()
	if signedIn == nil {
		t.Fatal("no session cookie after signing in")
	}
	if !signedIn.HTTPOnly || !signedIn.Secure || signedIn.SameSite != network.CookieSameSiteLax || signedIn.Path != "/" {
		t.Errorf("session cookie: HttpOnly %v, Secure %v, SameSite %q, Path %q; want HttpOnly, Secure, Lax, /",
			signedIn.HTTPOnly, signedIn.Secure, signedIn.SameSite, signedIn.Path)
	}

	// Reload: still signed in, the flash is gone.
	st = b.reload()
	if st.User == nil || *st.User != "ada" || len(st.Flash) != 0 {
		t.Errorf("after a reload: want %q signed in and no flash, got %+v", "ada", st)
	}

	// A script cannot read the session cookie (HttpOnly), though the
	// browser holds it.
	if strings.Contains(st.Cookie, sessionCookie+"=") || strings.Contains(st.Cookie, signedIn.Value) {
		t.Errorf("document.cookie shows the session cookie: %q", st.Cookie)
	}
	var viaScript string
	b.run(chromedp.Evaluate(`document.cookie.split("; ").filter(c => c.startsWith("`+sessionCookie+`=")).join("")`, &viaScript))
	if viaScript != "" {
		t.Errorf("a script read the session cookie: %q", viaScript)
	}

	// Cross-origin form posts are refused, even with the page's own token
	// copied into them and, from the same site (another port of
	// localhost), with the session cookie attached: only the CSRF check
	// stands between them and the session.
	var token string
	b.run(chromedp.Evaluate(`document.querySelector('meta[name="csrf-token"]').content`, &token))
	if token == "" {
		t.Fatal("the page has no CSRF token")
	}
	for _, tc := range []struct {
		name, host, site string
		cookieSent       bool
	}{
		{"same site, another port", "localhost", "same-site", true},
		{"another site", "127.0.0.1", "cross-site", false},
	} {
		for _, action := range []string{"/logout", "/login"} {
			evil := fmt.Sprintf("http://%s:%s/?%s", tc.host, attackerPort, url.Values{
				"action": {origin + action}, "token": {token}, "name": {"mallory"},
			}.Encode())
			b.navigate(evil)
			requests.reset()
			st := b.submit(`#attack`, http.StatusForbidden)
			if st.URL != origin+action || st.Text != "Forbidden" {
				t.Errorf("%s, post to %s: want the CSRF refusal at %s, got %+v", tc.name, action, origin+action, st)
			}
			req, ok := requests.find(http.MethodPost, origin+action)
			switch {
			case !ok:
				t.Errorf("%s, post to %s: the browser's request was not seen", tc.name, action)
			default:
				if req.site != tc.site || req.origin != "http://"+tc.host+":"+attackerPort {
					t.Errorf("%s, post to %s: Sec-Fetch-Site %q, Origin %q; want %q from the attacker's page",
						tc.name, action, req.site, req.origin, tc.site)
				}
				sent := strings.Contains(req.cookie, signedIn.Value)
				if sent != tc.cookieSent {
					t.Errorf("%s, post to %s: session cookie sent %v, want %v (SameSite=Lax); Cookie: %q",
						tc.name, action, sent, tc.cookieSent, req.cookie)
				}
				t.Logf("%s: a form on %s posted to %s (Sec-Fetch-Site %s, session cookie sent: %v): %d %s",
					tc.name, req.origin, action, req.site, sent, http.StatusForbidden, st.Text)
			}
		}
	}
	// The session is unchanged: same cookie, still ada, no flash.
	st = b.navigate(origin + "/")
	if st.User == nil || *st.User != "ada" || len(st.Flash) != 0 || strings.Contains(st.Text, "mallory") {
		t.Errorf("after the refused posts: want %q signed in and no flash, got %+v", "ada", st)
	}
	if c := b.sessionCookie(); c == nil || c.Value != signedIn.Value {
		t.Errorf("the refused posts changed the session cookie: %+v, was %q", c, signedIn.Value)
	}

	// Sign out: the sign-in form again, with the flash once.
	st = b.submit(`form[action="/logout"] button`, http.StatusOK)
	if !st.SignIn || st.SignOut || st.User != nil {
		t.Errorf("after signing out: want the sign-in form, got %+v", st)
	}
	if len(st.Flash) != 1 || st.Flash[0] != "Signed out" {
		t.Errorf("after signing out: flash %q, want exactly [\"Signed out\"]", st.Flash)
	}
	if c := b.sessionCookie(); c != nil && c.Value == signedIn.Value {
		t.Error("the browser still holds the signed-in session cookie after signing out")
	}
	st = b.reload()
	if !st.SignIn || st.User != nil || len(st.Flash) != 0 {
		t.Errorf("a reload after signing out: want the sign-in form and no flash, got %+v", st)
	}
}

// unavailable skips the test, or fails it with SESSION_REQUIRE_SERVERS=1:
// the project's rule for what a test needs from the machine.
func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("SESSION_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s is required (SESSION_REQUIRE_SERVERS=1) but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping (set SESSION_REQUIRE_SERVERS=1 to fail instead): %v", what, err)
}

// browser is one tab, with the assertions' helpers.
type browser struct {
	t      *testing.T
	ctx    context.Context
	origin string // the example's, "http://localhost:PORT"
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) read() pageState {
	b.t.Helper()
	var st pageState
	b.run(chromedp.Evaluate(readPage, &st))
	return st
}

// navigate loads u, which must answer 200, and reads the page.
func (b *browser) navigate(u string) pageState {
	b.t.Helper()
	return b.load(http.StatusOK, chromedp.Navigate(u))
}

// reload reloads the page, which must answer 200, and reads it.
func (b *browser) reload() pageState {
	b.t.Helper()
	return b.load(http.StatusOK, chromedp.Reload())
}

// submit clicks the button sel of a form and reads the page the post leads
// to (after redirects), which must answer status.
func (b *browser) submit(sel string, status int) pageState {
	b.t.Helper()
	b.run(chromedp.WaitVisible(sel, chromedp.ByQuery))
	return b.load(status, chromedp.Click(sel, chromedp.ByQuery))
}

func (b *browser) load(status int, action chromedp.Action) pageState {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, action)
	if err != nil {
		b.t.Fatal(err)
	}
	if resp == nil || int(resp.Status) != status {
		st := b.read()
		got := "no response"
		if resp != nil {
			got = strconv.Itoa(int(resp.Status)) + " from " + resp.URL
		}
		b.t.Fatalf("want %d, got %s: %+v", status, got, st)
	}
	return b.read()
}

// sessionCookie returns the browser's session cookie for the example, nil
// when it holds none.
func (b *browser) sessionCookie() *network.Cookie {
	b.t.Helper()
	var cookies []*network.Cookie
	b.run(chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{b.origin + "/"}).Do(ctx)
		return err
	}))
	for _, c := range cookies {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// sentRequest is what the browser sent in one request, as the network
// domain reports it.
type sentRequest struct {
	method, url          string
	site, origin, cookie string // Sec-Fetch-Site, Origin and Cookie
}

// requestLog collects the requests the tab sends.
type requestLog struct {
	mu   sync.Mutex
	reqs map[network.RequestID]*sentRequest
}

func watchRequests(ctx context.Context) *requestLog {
	l := &requestLog{reqs: map[network.RequestID]*sentRequest{}}
	chromedp.ListenTarget(ctx, func(ev interface{}) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			l.get(ev.RequestID).method, l.get(ev.RequestID).url = ev.Request.Method, ev.Request.URL
		case *network.EventRequestWillBeSentExtraInfo: // the headers as sent, cookies included
			r := l.get(ev.RequestID)
			for k, v := range ev.Headers {
				s, _ := v.(string)
				switch strings.ToLower(k) {
				case "sec-fetch-site":
					r.site = s
				case "origin":
					r.origin = s
				case "cookie":
					r.cookie = s
				}
			}
		}
	})
	return l
}

// get returns the entry of id, made on first use; l.mu is held.
func (l *requestLog) get(id network.RequestID) *sentRequest {
	r := l.reqs[id]
	if r == nil {
		r = new(sentRequest)
		l.reqs[id] = r
	}
	return r
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.reqs)
}

// find returns the request sent with method to u since the last reset.
func (l *requestLog) find(method, u string) (sentRequest, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.reqs {
		if r.method == method && r.url == u {
			return *r, true
		}
	}
	return sentRequest{}, false
}

// startExample builds ../_example, runs it on a free port with a random
// secret, and returns its origin, "http://localhost:PORT".
func startExample(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "_example", "main.go")); err != nil {
		t.Fatalf("the example app is not at %s: %v", filepath.Join(root, "_example"), err)
	}
	bin := filepath.Join(t.TempDir(), "example")
	build := exec.Command("go", "build", "-o", bin, "./_example")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./_example: %v\n%s", err, out)
	}

	port := freePort(t)
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	out := new(syncBuffer)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "SESSION_SECRET="+hex.EncodeToString(secret))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("the example's output:\n%s", out.String())
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			conn.Close()
			return "http://localhost:" + port
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("the example exited before listening on %s: %v\n%s", port, err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example does not listen on port %s: %v\n%s", port, err, out.String())
		}
	}
}

// freePort returns a TCP port that was free on loopback a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// attackPage is the attacker's page: a form that posts to the example's
// action with the victim's token copied in.
var attackPage = template.Must(template.New("attack").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>win a prize</title></head><body>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.Token}}">
<input type="hidden" name="name" value="{{.Name}}">
<button id="attack">Claim your prize</button>
</form>
</body></html>
`))

// startAttacker serves the attacker's page on another port of loopback,
// reached as http://localhost:PORT (the same site as the example, another
// origin) or http://127.0.0.1:PORT (another site).
func startAttacker(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		q := r.URL.Query()
		_ = attackPage.Execute(w, map[string]string{"Action": q.Get("action"), "Token": q.Get("token"), "Name": q.Get("name")})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// syncBuffer is a bytes.Buffer that a process's stdout and stderr can
// share with the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
