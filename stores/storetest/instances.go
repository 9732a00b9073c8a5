package storetest

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
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
// Then requests that read and set one value alternate between the two, and
// no update may be lost (see alternate). The apps use CookieInsecure
// because the listeners speak plain http.
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

	alternate(t, first, url1, url2)
}

// alternateRounds is how many requests alternate shows the two instances.
const alternateRounds = 200

// alternate sends POST /visit (a Get, then a Set of one more) through the
// two instances in turn, each request after the answer to the one before.
// No increment may be lost: every answer is one more than the last
// acknowledged count. On a store whose reads may be outdated (StaleReader),
// a request may instead be refused with a 500 (ErrStale: it read a count
// the other instance had already replaced), which writes nothing; such
// refusals are logged, and must stay rare.
func alternate(t *testing.T, st session.Store, urls ...string) {
	sr, ok := st.(session.StaleReader)
	stale := ok && sr.StaleReads()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	acked, refused := 0, 0
	for i := range alternateRounds {
		base := urls[i%len(urls)]
		resp, err := hc.Post(base+"/visit", "", nil)
		if err != nil {
			t.Fatalf("round %d: POST %s/visit: %v", i, base, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && string(body) == strconv.Itoa(acked+1):
			acked++
		case resp.StatusCode == http.StatusInternalServerError && stale && acked > 0:
			refused++
		default:
			t.Fatalf("round %d: POST %s/visit = %d %q after %d acknowledged increments (a lost or repeated update)", i, base, resp.StatusCode, body, acked)
		}
	}
	t.Logf("alternating requests: %d increments acknowledged, %d refused as read from an outdated record", acked, refused)
	if refused > alternateRounds/10 {
		t.Errorf("%d of %d alternating requests refused: the store's reads are outdated too often", refused, alternateRounds)
	}
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
