package redisstore_test

import (
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	redisstore "github.com/fibersession/session/stores/redis"
	"github.com/fibersession/session/stores/storetest"
)

// TestRedisDown puts the store's client behind a proxy, cuts Redis off, and
// checks that requests get the ErrorHandler's answer quickly, then that they
// work again once Redis is back, with the same app, store and client. The
// client has short timeouts, one retry and one dial attempt per connection,
// and honours contexts (ContextTimeoutEnabled) so that Config.StoreTimeout
// bounds every call.
func TestRedisDown(t *testing.T) {
	prefix := testPrefix(t, newClient(t))
	// fasthttp starts a goroutine of its own, for good, with the first
	// request it serves; have it running before counting.
	warm := fiber.New(fiber.Config{DisableStartupMessage: true})
	if resp, err := warm.Test(httptest.NewRequest("GET", "/", nil), -1); err == nil {
		resp.Body.Close()
	}
	goroutines := runtime.NumGoroutine()

	proxy := storetest.NewProxy(t, redisAddr)
	c := redis.NewClient(&redis.Options{
		Addr:                  proxy.Addr(),
		DialTimeout:           250 * time.Millisecond,
		ReadTimeout:           250 * time.Millisecond,
		WriteTimeout:          250 * time.Millisecond,
		MaxRetries:            1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	// Not CloseClient: the middleware would close the client after the
	// first request (see TestCloseClientThroughMiddleware).
	st := redisstore.New(c, redisstore.Config{Prefix: prefix})
	b := newBrowser(t, newApp(t, st, session.Config[string, string]{StoreTimeout: time.Second}))

	b.expect("POST", "/login", "ok")
	b.expect("GET", "/me", "ada|Welcome back")
	signedIn := b.cookie()

	proxy.Stop()
	const bound = 3 * time.Second
	for _, r := range []struct {
		name, method, path string
		cookie             bool
	}{
		{"read", "GET", "/me", true},               // GetTTL fails
		{"write", "POST", "/visit", true},          // GetTTL fails
		{"new session", "POST", "/login", false},   // CompareAndSet fails
		{"sign-out", "POST", "/logout", true},      // GetTTL fails
		{"read again", "GET", "/me", true},         // still down, still quick
		{"no session needed", "GET", "/me", false}, // no store call: still served
	} {
		b.clearCookies()
		if r.cookie {
			b.setCookie(signedIn)
		}
		start := time.Now()
		status, body := b.do(r.method, r.path)
		took := time.Since(start)
		want, wantBody := 500, "Internal Server Error"
		if r.name == "no session needed" {
			want, wantBody = 200, "anon|"
		}
		if status != want || body != wantBody {
			t.Errorf("%s with Redis down: %d %q, want %d %q", r.name, status, body, want, wantBody)
		}
		if took > bound {
			t.Errorf("%s with Redis down took %v, want under %v", r.name, took, bound)
		}
	}

	// Back up: the same app recovers on its own. go-redis may wait up to a
	// second before it dials again after a run of failed dials.
	proxy.Start()
	b.clearCookies()
	b.setCookie(signedIn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := b.do("GET", "/me")
		if status == 200 {
			if body != "ada|" {
				t.Fatalf("after Redis came back: %q, want the signed-in session %q", body, "ada|")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still fail 10s after Redis came back: %d %q", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.expect("POST", "/visit", "1")
	b.expect("POST", "/logout", "bye")

	// The store starts no goroutines of its own, and once the client is
	// closed its pool's goroutines (such as the one that redials after a
	// run of failed dials) end too.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before the client:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
