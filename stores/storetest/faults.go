package storetest

import (
	"net/http"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// FaultOptions tunes RunFaults to a client.
type FaultOptions struct {
	// Reconnect is how long requests may still fail once the server is
	// back, for clients that wait before they dial again (go-redis after a
	// run of failed dials, a NATS connection between reconnect attempts).
	// Zero: the first request after the server is back must succeed.
	Reconnect time.Duration
}

// RunFaults checks the middleware (NewApp with StoreTimeout timeout) over a
// store that reaches its server at target through a Proxy: newStoreAt
// returns a store whose client dials addr, the proxy's address.
//
// With the proxy stopped, every request that needs the store (reading,
// writing, signing in and out, starting a session) gets the ErrorHandler's
// 500 "Internal Server Error" within timeout plus a second, not a hang or a
// panic, and leaves the browser's cookie alone; a request that needs no
// store call is still served. Once the proxy is back, requests succeed
// again (at once, or within FaultOptions.Reconnect), with the same app and
// store, and the session signed in before the fault is still there.
//
// At most one FaultOptions value may be passed.
func RunFaults(t *testing.T, newStoreAt func(t *testing.T, addr string) session.Store, target string, timeout time.Duration, opts ...FaultOptions) {
	if timeout <= 0 || len(opts) > 1 {
		t.Fatal("storetest.RunFaults: the timeout must be positive, and at most one FaultOptions value")
	}
	var o FaultOptions
	if len(opts) == 1 {
		o = opts[0]
	}
	proxy := NewProxy(t, target)
	st := newStoreAt(t, proxy.Addr())
	b := NewBrowser(t, NewApp(t, session.Config[string, string]{Store: st, StoreTimeout: timeout}))
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	signedIn := b.Cookie()

	proxy.Stop()
	const failed = "Internal Server Error"
	bound := timeout + time.Second
	for _, r := range []struct {
		name, method, path string
		cookie             bool // send the signed-in cookie
		status             int
		body               string
	}{
		{"read", "GET", "/", true, 500, failed},
		{"write", "POST", "/visit", true, 500, failed},
		{"sign-in", "POST", "/login", true, 500, failed},
		{"new session", "POST", "/login", false, 500, failed},
		{"sign-out", "POST", "/logout", true, 500, failed},
		{"read again", "GET", "/", true, 500, failed}, // still down, still quick
		{"no store call", "GET", "/", false, http.StatusOK, "user= flash="},
	} {
		cookie := ""
		if r.cookie {
			cookie = signedIn
		}
		b.SetCookie(cookie)
		start := time.Now()
		status, body := b.Do(r.method, r.path)
		took := time.Since(start)
		if status != r.status || body != r.body {
			t.Errorf("%s (%s %s) with the server down = %d %q, want %d %q", r.name, r.method, r.path, status, body, r.status, r.body)
		}
		if took > bound {
			t.Errorf("%s (%s %s) with the server down took %v, want at most %v", r.name, r.method, r.path, took, bound)
		}
		if b.Cookie() != cookie {
			t.Errorf("%s (%s %s) with the server down changed the cookie from %q to %q", r.name, r.method, r.path, cookie, b.Cookie())
		}
	}

	// Back up: the same app recovers on its own.
	proxy.Start()
	b.SetCookie(signedIn)
	for deadline := time.Now().Add(o.Reconnect); ; time.Sleep(50 * time.Millisecond) {
		status, body := b.Do("GET", "/")
		if status == http.StatusOK {
			if body != "user=ada flash=" {
				t.Fatalf("after the server came back: %q, want the signed-in session %q", body, "user=ada flash=")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still fail %v after the server came back: %d %q", o.Reconnect, status, body)
		}
	}
	b.Expect("POST", "/visit", "1")
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	b.Expect("POST", "/logout", "ok")
	b.Expect("GET", "/", "user= flash=Signed out")
}
