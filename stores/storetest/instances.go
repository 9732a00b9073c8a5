package storetest

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// RunSeveralInstances runs two apps (NewApp), each over a store of its own
// from newStore, on two loopback listeners, like two instances behind a
// load balancer. newStore must return stores of the same records (one
// server and database, table, bucket or prefix) through separate clients.
//
// One net/http client with a cookie jar talks to both (cookies do not
// depend on the port): a session started and signed in through the first
// is read, with its flash, through the second; signed out through the
// second, it is unknown to the first, even with a copy of the old cookie.
// The apps use CookieInsecure because the listeners speak plain http.
func RunSeveralInstances(t *testing.T, newStore func(t *testing.T) session.Store) {
	first, second := newStore(t), newStore(t)
	url1 := serve(t, NewApp(t, session.Config[string, string]{Store: first, CookieInsecure: true}))
	url2 := serve(t, NewApp(t, session.Config[string, string]{Store: second, CookieInsecure: true}))

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	site, _ := url.Parse(url1)
	cookie := func() string {
		for _, c := range jar.Cookies(site) {
			if c.Name == "session" {
				return c.Value
			}
		}
		return ""
	}
	expect := func(method, base, path, want string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s%s: %v", method, base, path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Fatalf("%s %s%s = %d %q, want 200 %q", method, base, path, resp.StatusCode, body, want)
		}
	}

	expect("POST", url1, "/visit", "1")
	anon := SessionID(cookie())
	expect("POST", url1, "/login", "ok")
	signedIn := cookie()
	if id := SessionID(signedIn); id == "" || id == anon {
		t.Fatalf("sign-in kept the id %q (before: %q)", id, anon)
	}
	expect("GET", url2, "/", "user=ada flash=Welcome back") // the first's session and flash
	expect("GET", url1, "/", "user=ada flash=")             // consumed through the second
	expect("GET", url2, "/", "user=ada flash=")
	expect("POST", url2, "/visit", "2")   // values from before the sign-in moved along
	wantRecord(t, second, anon, false)    // RegenerateID(true) through the first
	expect("POST", url2, "/logout", "ok") // Destroy and flash through the second
	wantRecord(t, first, SessionID(signedIn), false)
	if SessionID(cookie()) == SessionID(signedIn) {
		t.Error("sign-out through the second kept the signed-in cookie")
	}
	expect("GET", url1, "/", "user= flash=Signed out")
	expect("GET", url2, "/", "user= flash=")
	// Not just the cookie: the record is gone, so a copy of the old cookie
	// is worthless on the first instance too.
	jar.SetCookies(site, []*http.Cookie{{Name: "session", Value: signedIn, Path: "/"}})
	expect("GET", url1, "/", "user= flash=")
}

// serve runs app on a loopback listener until the test ends and returns its
// base URL.
func serve(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	t.Cleanup(func() {
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
