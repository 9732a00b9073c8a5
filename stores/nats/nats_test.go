package natsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	natsstore "github.com/fibersession/session/stores/nats"
	"github.com/fibersession/session/stores/storetest"
)

var natsURL = storetest.Addr("SESSION_NATS_URL", "nats://127.0.0.1:4222")

// connect connects to url (skipping or failing the test when NATS is
// unreachable) and closes the connection when the test ends.
func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(2 * time.Second)}, opts...)...)
	if err != nil {
		storetest.Unavailable(t, "NATS at "+url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// bucket creates a key-value bucket with a unique name and the given TTL
// on nc's server, deleted when the test ends.
func bucket(t *testing.T, nc *nats.Conn, ttl time.Duration) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := "fibersession_test_" + randHex(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := natsstore.CreateBucket(ctx, js, name, ttl)
	if err != nil {
		storetest.Unavailable(t, "NATS JetStream at "+nc.ConnectedUrl(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, name); err != nil {
			t.Errorf("deleting bucket %s: %v", name, err)
		}
	})
	return js, kv
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func newStore(t *testing.T, kv jetstream.KeyValue, cfg natsstore.Config) *natsstore.Store {
	t.Helper()
	st, err := natsstore.New(context.Background(), kv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The suite's longest TTL is 30 days; the bucket must allow it.
const suiteBucketTTL = 31 * 24 * time.Hour

func TestConformance(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, suiteBucketTTL)
	// Expiries are kept in whole milliseconds, so a record may live up to
	// 1ms shorter than its TTL and GetTTL may read up to 1ms low.
	opts := storetest.Options{TTLGranularity: time.Millisecond}
	// The Close subtest is skipped: the store owns no resources (the
	// connection is the caller's), so it does not implement session.Closer.
	for _, tc := range []struct {
		name string
		cfg  natsstore.Config
	}{
		{"Default", natsstore.Config{}},
		// Every record over 1000 bytes is chunked: the 1 MiB value, the
		// shared-id writers' values, the large compare-and-set.
		{"SmallChunks", natsstore.Config{Prefix: "chunked.", ChunkSize: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t, kv, tc.cfg)
			storetest.Run(t, func(*testing.T) session.Store { return st }, opts)
		})
	}
}

// TestExpiredButStored pins the TTL mapping: a record past its own expiry is
// absent for the store while the bucket still holds it, and the bucket TTL
// removes it later.
func TestExpiredButStored(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Second)
	st := newStore(t, kv, natsstore.Config{})
	ctx := context.Background()
	const id = "expiring"
	if err := st.Set(ctx, id, []byte("short"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, id); err != nil || string(got) != "short" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := st.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after the record's ttl: %v, want ErrNotFound", err)
	}
	if _, err := kv.Get(ctx, id); err != nil {
		t.Fatalf("the bucket no longer holds the expired record (%v): the test cannot show the expiry check", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the bucket TTL (1s) did not remove the record within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTTLLongerThanBucket(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	st := newStore(t, kv, natsstore.Config{})
	ctx := context.Background()
	if err := st.Set(ctx, "fits", []byte("v"), time.Hour); err != nil {
		t.Fatalf("Set with the bucket's TTL: %v", err)
	}
	for name, op := range map[string]func() error{
		"Set": func() error { return st.Set(ctx, "long", []byte("v"), 2*time.Hour) },
		"CompareAndSet": func() error {
			_, err := st.CompareAndSet(ctx, "long", nil, []byte("v"), 2*time.Hour)
			return err
		},
		"Touch": func() error { return st.Touch(ctx, "fits", 2*time.Hour) },
	} {
		if err := op(); !errors.Is(err, natsstore.ErrTTLTooLong) {
			t.Errorf("%s with a ttl over the bucket's: %v, want ErrTTLTooLong", name, err)
		}
	}
	if _, err := st.Get(ctx, "long"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a refused write was stored: %v", err)
	}
}

func TestConfig(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	for _, tc := range []struct {
		cfg natsstore.Config
		ok  bool
	}{
		{natsstore.Config{}, true},
		{natsstore.Config{Prefix: "app.sessions."}, true},
		{natsstore.Config{Prefix: "a-b_c=d/e"}, true},
		{natsstore.Config{Prefix: ".leading"}, false},
		{natsstore.Config{Prefix: "double..dot"}, false},
		{natsstore.Config{Prefix: "wild*"}, false},
		{natsstore.Config{Prefix: "wild>"}, false},
		{natsstore.Config{Prefix: "with space"}, false},
		{natsstore.Config{ChunkSize: -1}, false},
	} {
		_, err := natsstore.New(context.Background(), kv, tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("New(%+v): error %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
	if _, err := natsstore.New(context.Background(), nil, natsstore.Config{}); err == nil {
		t.Error("New(nil KeyValue) succeeded")
	}
}

func TestPrefixIsolation(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	a := newStore(t, kv, natsstore.Config{Prefix: "a."})
	b := newStore(t, kv, natsstore.Config{Prefix: "b."})
	ctx := context.Background()
	const id = "same-id"
	if err := a.Set(ctx, id, []byte("from a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("store b sees store a's record: %v", err)
	}
	if ok, err := b.CompareAndSet(ctx, id, nil, []byte("from b"), time.Minute); err != nil || !ok {
		t.Fatalf("b.CompareAndSet(nil) = %v, %v", ok, err)
	}
	if err := b.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, id); err != nil || string(got) != "from a" {
		t.Fatalf("a.Get after b.Delete = %q, %v", got, err)
	}
	// Create over the purge marker Delete left.
	if ok, err := b.CompareAndSet(ctx, id, nil, []byte("again"), time.Minute); err != nil || !ok {
		t.Fatalf("b.CompareAndSet(nil) after b.Delete = %v, %v", ok, err)
	}
	if got, err := b.Get(ctx, id); err != nil || string(got) != "again" {
		t.Fatalf("b.Get = %q, %v", got, err)
	}
	if _, err := kv.Get(ctx, "a."+id); err != nil {
		t.Fatalf("key a.%s: %v", id, err)
	}
}

// TestChunkedContention runs compare-and-set retry loops on a record split
// into many chunks, then checks that no increment was lost and that only
// the final record's chunks are left in the bucket.
func TestChunkedContention(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	st := newStore(t, kv, natsstore.Config{ChunkSize: 4})
	ctx := context.Background()
	const id, workers, increments = "chunky", 4, 8
	if err := st.Set(ctx, id, []byte("#"), time.Hour); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range increments {
				for {
					cur, err := st.Get(ctx, id)
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					next := append(slices.Clip(cur), byte('a'+w))
					ok, err := st.CompareAndSet(ctx, id, cur, next, time.Hour)
					if err != nil {
						t.Errorf("CompareAndSet: %v", err)
						return
					}
					if ok {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	got, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		if n := strings.Count(string(got), string(rune('a'+w))); n != increments {
			t.Errorf("worker %d: %d of %d increments kept in %q", w, n, increments, got)
		}
	}
	// The first Set's chunks are replaced by the first CompareAndSet, which
	// purges them; every failed attempt purges its own.
	want := (len(got) + 3) / 4
	if n := countKeys(t, kv, id+".>"); n != want {
		t.Errorf("%d chunk keys in the bucket, want %d (the live record's)", n, want)
	}
	if err := st.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, kv, id+".>"); n != 0 {
		t.Errorf("%d chunk keys left after Delete", n)
	}
}

func countKeys(t *testing.T, kv jetstream.KeyValue, filter string) int {
	t.Helper()
	lister, err := kv.ListKeysFiltered(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	return n
}

// ------------------------------------------------------------- middleware

var secret = []byte("0123456789abcdef0123456789abcdef")

var site, _ = url.Parse("https://example.com/")

// app is a Fiber app with the session middleware and a cookie jar.
type app struct {
	t   *testing.T
	app *fiber.App
	jar *cookiejar.Jar
}

func newApp(t *testing.T, store session.Store, timeout time.Duration) *app {
	t.Helper()
	m, err := session.NewManager(session.Config[string, string]{
		Store:        store,
		Secrets:      [][]byte{secret},
		StoreTimeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, app: fiber.New(), jar: must(cookiejar.New(nil))}
	a.app.Use(m.Handler())
	a.app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("user", "ada")
		s.Flash("notice", "Welcome back")
		return c.SendString("signed in")
	})
	a.app.Get("/", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		user, _ := s.Get("user")
		notice, _ := s.GetFlash("notice")
		return c.SendString("user=" + user + " notice=" + notice)
	})
	a.app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		s.Flash("notice", "Signed out")
		return c.SendString("signed out")
	})
	a.app.Post("/key/:k", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Set(c.Params("k"), "v")
		return nil
	})
	return a
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// do sends a request with the jar's cookies, keeps the response's cookies
// and returns the status and body.
func (a *app) do(method, path string) (int, string) {
	a.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for _, c := range a.jar.Cookies(site) {
		req.AddCookie(c)
	}
	resp, err := a.app.Test(req, -1)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	a.jar.SetCookies(site, resp.Cookies())
	return resp.StatusCode, string(b)
}

// id returns the session id the jar's cookie names, or "".
func (a *app) id() string {
	for _, c := range a.jar.Cookies(site) {
		if c.Name == "session" {
			id, _, _ := strings.Cut(c.Value, ".")
			return id
		}
	}
	return ""
}

func (a *app) want(method, path string, status int, body string) {
	a.t.Helper()
	if gotStatus, gotBody := a.do(method, path); gotStatus != status || gotBody != body {
		a.t.Errorf("%s %s = %d %q, want %d %q", method, path, gotStatus, gotBody, status, body)
	}
}

func TestMiddleware(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, 8*24*time.Hour)
	st := newStore(t, kv, natsstore.Config{Prefix: "web."})
	ctx := context.Background()

	t.Run("SignInFlashSignOut", func(t *testing.T) {
		a := newApp(t, st, 0)
		a.want("GET", "/", 200, "user= notice=")
		if a.id() != "" {
			t.Fatal("an untouched session set a cookie")
		}
		a.want("POST", "/login", 200, "signed in")
		id := a.id()
		if id == "" {
			t.Fatal("no session cookie after login")
		}
		if _, err := kv.Get(ctx, "web."+id); err != nil {
			t.Fatalf("the session is not in the bucket under its prefixed id: %v", err)
		}
		a.want("GET", "/", 200, "user=ada notice=Welcome back")
		a.want("GET", "/", 200, "user=ada notice=")
		a.want("POST", "/logout", 200, "signed out")
		if _, err := st.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("the signed-out session is still stored: %v", err)
		}
		if a.id() == id {
			t.Error("the signed-out id is still in the cookie")
		}
		a.want("GET", "/", 200, "user= notice=Signed out")
		a.want("GET", "/", 200, "user= notice=")
	})

	t.Run("CorruptRecord", func(t *testing.T) {
		for name, corrupt := range map[string]func(id string) error{
			// Bytes the store did not write: no expiry header.
			"RawValue": func(id string) error {
				_, err := kv.Put(ctx, "web."+id, []byte("garbage"))
				return err
			},
			// A well-framed value whose record does not decode.
			"Record": func(id string) error {
				return st.Set(ctx, id, []byte("\x00not a session record"), time.Hour)
			},
		} {
			t.Run(name, func(t *testing.T) {
				a := newApp(t, st, 0)
				a.want("POST", "/login", 200, "signed in")
				id := a.id()
				if err := corrupt(id); err != nil {
					t.Fatal(err)
				}
				a.want("GET", "/", 200, "user= notice=")
				// The fresh session works as usual.
				a.want("POST", "/login", 200, "signed in")
				a.want("GET", "/", 200, "user=ada notice=Welcome back")
			})
		}
	})

	// Concurrent requests that change different keys of one session all
	// persist through compare-and-set: every lost race means another save
	// won, and a save retries up to the core's maxTries (32) times.
	t.Run("ConcurrentKeys", func(t *testing.T) {
		a := newApp(t, st, 0)
		a.want("POST", "/login", 200, "signed in")
		cookies := a.jar.Cookies(site)
		const n = 16
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req := httptest.NewRequest("POST", fmt.Sprintf("/key/k%d", i), nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				resp, err := a.app.Test(req, -1)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
				} else if resp.StatusCode != 200 {
					t.Errorf("request %d: status %d", i, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		a.app.Get("/keys", func(c *fiber.Ctx) error {
			s, err := session.Get[string, string](c)
			if err != nil {
				return err
			}
			return c.SendString(strings.Join(s.Keys(), ","))
		})
		_, body := a.do("GET", "/keys")
		if keys := strings.Split(body, ","); len(keys) != n+1 {
			t.Errorf("%d keys persisted (%s), want %d", len(keys), body, n+1)
		}
	})
}

// ------------------------------------------------------------------ fault

// TestServerDown puts NATS behind a proxy, stops the proxy, and expects the
// ErrorHandler's 500 within a bound instead of a hang or a panic; once the
// proxy is back, the same app and store serve requests again.
func TestServerDown(t *testing.T) {
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	direct := connect(t, natsURL)
	_, kv := bucket(t, direct, 8*24*time.Hour)

	for _, tc := range []struct {
		name string
		opts []nats.Option
		fast bool // once the client knows it is disconnected, requests fail at once
	}{
		// Requests made while disconnected wait in the reconnect buffer
		// until StoreTimeout.
		{"ReconnectBuffer", nil, false},
		// Requests made while disconnected fail at once.
		{"NoReconnectBuffer", []nats.Option{nats.ReconnectBufSize(-1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := storetest.NewProxy(t, u.Host)
			nc := connect(t, "nats://"+proxy.Addr(), append([]nats.Option{
				nats.MaxReconnects(-1),
				nats.ReconnectWait(100 * time.Millisecond),
				nats.IgnoreDiscoveredServers(), // reconnect through the proxy only
			}, tc.opts...)...)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			pkv, err := js.KeyValue(ctx, kv.Bucket())
			if err != nil {
				t.Fatal(err)
			}
			const timeout = 2 * time.Second
			a := newApp(t, newStore(t, pkv, natsstore.Config{}), timeout)
			a.want("POST", "/login", 200, "signed in")
			a.want("GET", "/", 200, "user=ada notice=Welcome back")

			proxy.Stop()
			for _, r := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/login"}} {
				start := time.Now()
				a.want(r.method, r.path, 500, "Internal Server Error")
				if d := time.Since(start); d > timeout+time.Second {
					t.Errorf("%s %s with NATS down took %v, want at most StoreTimeout (%v) and a little", r.method, r.path, d, timeout)
				}
			}
			if tc.fast {
				if nc.Status() != nats.RECONNECTING {
					t.Fatalf("client status %v with the proxy stopped, want RECONNECTING", nc.Status())
				}
				start := time.Now()
				a.want("GET", "/", 500, "Internal Server Error")
				if d := time.Since(start); d > timeout/4 {
					t.Errorf("a request while reconnecting without a buffer took %v, want an immediate failure", d)
				}
			}

			proxy.Start()
			deadline := time.Now().Add(10 * time.Second)
			for {
				status, body := a.do("GET", "/")
				if status == 200 {
					if body != "user=ada notice=" {
						t.Errorf("after reconnecting: %q, want the signed-in session", body)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no successful request within 10s of NATS coming back: %d %q", status, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			a.want("POST", "/login", 200, "signed in")
			a.want("GET", "/", 200, "user=ada notice=Welcome back")
		})
	}
}
