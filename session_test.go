package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

func TestLazyLoad(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.login("ada")
	gets := h.store.gets.Load()
	h.plain()
	if got := h.store.gets.Load() - gets; got != 0 {
		t.Fatalf("a request that never asked for its session read the store %d times", got)
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		s2, err := Get[string, string](c)
		if err != nil || s2 != s {
			t.Fatalf("second Get returned %p, %v; want the same session %p", s2, err, s)
		}
		return nil
	})
	if got := h.store.gets.Load() - gets; got != 1 {
		t.Fatalf("two Get calls in one request read the store %d times, want 1", got)
	}
}

func TestNewAndEmptyIsNotStored(t *testing.T) {
	for name, fn := range map[string]func(*sess){
		"untouched":        func(s *sess) {},
		"read":             func(s *sess) { s.Get("user"); s.GetFlash("x"); _ = s.ID() },
		"set then unset":   func(s *sess) { s.Set("a", "1"); s.Unset("a") },
		"set then clear":   func(s *sess) { s.Set("a", "1"); s.Clear() },
		"destroy unstored": func(s *sess) { s.Destroy() },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Config[string, string]{})
			resp := h.do(func(c *fiber.Ctx, s *sess) error { fn(s); return nil })
			if sc := setCookies(resp); len(sc) != 0 {
				t.Errorf("Set-Cookie %q for a new, empty session", sc)
			}
			if n := h.store.writes(); n != 0 {
				t.Errorf("%d store writes for a new, empty session", n)
			}
		})
	}
}

func TestSaveOnlyWhenDirty(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.login("ada")
	writes := h.store.writes()
	resp := h.do(func(c *fiber.Ctx, s *sess) error {
		if u, _ := s.Get("user"); u != "ada" {
			t.Errorf("user = %q", u)
		}
		if s.Dirty() {
			t.Error("a session only read is dirty")
		}
		return nil
	})
	if n := h.store.writes() - writes; n != 0 {
		t.Errorf("a read-only request wrote %d times", n)
	}
	if sc := setCookies(resp); len(sc) != 0 {
		t.Errorf("a read-only request re-sent the cookie: %q", sc)
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.Set("theme", "dark")
		if !s.Dirty() {
			t.Error("Set did not make the session dirty")
		}
		return nil
	})
	if n := h.store.sets.Load(); n == 0 {
		t.Fatal("a changed session was not written")
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		if v, _ := s.Get("theme"); v != "dark" {
			t.Errorf("theme = %q after a save", v)
		}
		return nil
	})
}

func TestValues(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.Set("b", "2")
		s.Set("a", "1")
		s.Set("c", "3")
		s.Set("a", "one")
		s.Unset("c")
		s.Flash("a", "a flash, not a value")
		return nil
	})
	h.do(func(c *fiber.Ctx, s *sess) error {
		if got := s.Keys(); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("Keys = %q", got)
		}
		if s.Len() != 2 || !s.Has("a") || s.Has("c") {
			t.Errorf("Len %d, Has(a) %v, Has(c) %v", s.Len(), s.Has("a"), s.Has("c"))
		}
		if v, ok := s.Get("a"); v != "one" || !ok {
			t.Errorf("Get(a) = %q, %v", v, ok)
		}
		if v, ok := s.Get("c"); ok {
			t.Errorf("Get(c) = %q after Unset", v)
		}
		if f, _ := s.GetFlash("a"); f != "a flash, not a value" {
			t.Errorf("flash a = %q: values and flash must be separate", f)
		}
		s.Clear()
		return nil
	})
	h.do(func(c *fiber.Ctx, s *sess) error {
		if s.Len() != 0 {
			t.Errorf("Clear left %q", s.Keys())
		}
		return nil
	})
}

func TestFlash(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	see := func(want ...string) func(c *fiber.Ctx, s *sess) error {
		return func(c *fiber.Ctx, s *sess) error {
			for range 2 { // readable any number of times
				got := s.FlashKeys()
				if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("flash keys = %q, want %q", got, want)
				}
				for _, k := range want {
					if v, ok := s.GetFlash(k); !ok || v != "msg "+k {
						t.Errorf("GetFlash(%q) = %q, %v", k, v, ok)
					}
				}
			}
			return nil
		}
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.Flash("saved", "msg saved")
		s.Flash("n", "msg n")
		if _, ok := s.GetFlash("saved"); ok {
			t.Error("a flash is visible in the request that set it")
		}
		return nil
	})
	h.do(see("saved", "n"))
	h.do(see()) // consumed

	h.do(func(c *fiber.Ctx, s *sess) error { s.Flash("a", "msg a"); s.Flash("b", "msg b"); return nil })
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.KeepFlash("a")
		if got := s.Flashes(); len(got) != 2 || got["b"] != "msg b" {
			t.Errorf("Flashes = %v", got)
		}
		return nil
	})
	h.do(see("a"))
	h.do(see())

	h.do(func(c *fiber.Ctx, s *sess) error { s.Flash("a", "msg a"); return nil })
	h.do(func(c *fiber.Ctx, s *sess) error { s.KeepFlash(); s.Flash("b", "msg b"); return nil })
	h.do(see("a", "b"))
	h.do(see())
}

func TestFlashNotConsumedWithoutLoad(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.do(func(c *fiber.Ctx, s *sess) error { s.Flash("n", "hello"); return nil })
	h.plain()
	h.do(func(c *fiber.Ctx, s *sess) error {
		if v, _ := s.GetFlash("n"); v != "hello" {
			t.Errorf("a request that never loaded the session consumed its flash")
		}
		return nil
	})
}

func TestDestroy(t *testing.T) {
	h := newHarness(t, Config[string, string]{CookiePath: "/run", CookieDomain: "example.com"})
	id := h.login("ada")
	resp := h.do(func(c *fiber.Ctx, s *sess) error {
		s.Destroy()
		if !s.Destroyed() || s.Len() != 0 {
			t.Errorf("after Destroy: Destroyed %v, Len %d", s.Destroyed(), s.Len())
		}
		return nil
	})
	if _, ok := h.stored(id); ok {
		t.Error("Destroy left the record")
	}
	sc := strings.Join(setCookies(resp), "\n")
	for _, want := range []string{"session=;", "expires=Tue, 10 Nov 2009", "path=/run", "domain=example.com"} {
		if !strings.Contains(sc, want) {
			t.Errorf("expired cookie %q lacks %q", sc, want)
		}
	}
	if h.cookie() != "" {
		t.Error("the browser kept the cookie")
	}

	// Writes after Destroy start a new session under a new id.
	h.login("ada")
	old := h.id()
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.Destroy()
		s.Flash("n", "Signed out")
		if !s.Destroyed() {
			t.Error("Destroyed is false after a write")
		}
		if s.ID() == old {
			t.Error("the new session reuses the destroyed id")
		}
		return nil
	})
	if h.id() == "" || h.id() == old {
		t.Fatalf("cookie id %q after destroy+flash, old %q", h.id(), old)
	}
	if _, ok := h.stored(old); ok {
		t.Error("the destroyed record survived")
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		if v, _ := s.GetFlash("n"); v != "Signed out" || s.Has("user") {
			t.Errorf("after logout: flash %q, user %v", v, s.Has("user"))
		}
		return nil
	})
}

func TestRegenerateID(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	old := h.login("ada")
	oldCookie := h.cookie()
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.RegenerateID(true)
		if s.ID() == old || s.DeleteID() != old {
			t.Errorf("ID %q, DeleteID %q, old %q", s.ID(), s.DeleteID(), old)
		}
		if !s.Dirty() {
			t.Error("a rotated session is not dirty")
		}
		return nil
	})
	if h.id() == old {
		t.Fatal("the cookie still names the old id")
	}
	if _, ok := h.stored(old); ok {
		t.Error("RegenerateID(true) left the old record")
	}
	r, ok := h.stored(h.id())
	if !ok || len(r.vals) != 1 || string(r.vals[0].raw) != `"ada"` {
		t.Errorf("new record %v, %+v", ok, r.vals)
	}
	// The old cookie no longer works.
	jar := h.jar
	h.jar, _ = newJar()
	h.do(func(c *fiber.Ctx, s *sess) error {
		if s.Has("user") || s.ID() == old {
			t.Error("the old cookie still opens the session")
		}
		return nil
	}, "session="+oldCookie)
	h.jar = jar
}

func TestRegenerateIDGrace(t *testing.T) {
	h := newHarness(t, Config[string, string]{RotationGrace: 30 * time.Second})
	old := h.login("ada")
	oldCookie := h.cookie()
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.RegenerateID(false)
		if s.DeleteID() != "" {
			t.Errorf("DeleteID = %q without deleteOld", s.DeleteID())
		}
		s.Set("role", "admin")
		return nil
	})
	r, ok := h.stored(old)
	if !ok || !r.moved() {
		t.Fatalf("old record kept %v, moved %v", ok, r.moved())
	}
	if _, ttl, _ := h.store.Store.GetTTL(context.Background(), old); ttl > 30*time.Second {
		t.Errorf("old record TTL %s, want at most the grace", ttl)
	}
	// A late request with the old cookie reads the data but never writes the old id.
	late, _ := newJar()
	jar := h.jar
	h.jar = late
	h.do(func(c *fiber.Ctx, s *sess) error {
		if u, _ := s.Get("user"); u != "ada" {
			t.Errorf("late request sees user %q", u)
		}
		s.Set("late", "x")
		return nil
	}, "session="+oldCookie)
	h.jar = jar
	if r2, _ := h.stored(old); string(r2.vals[0].raw) != string(r.vals[0].raw) || len(r2.vals) != len(r.vals) || !r2.moved() {
		t.Error("a late request wrote the rotated-away id")
	}
}

func TestSetIdleTimeout(t *testing.T) {
	h := newHarness(t, Config[string, string]{IdleTimeout: time.Hour, AbsoluteTimeout: 90 * 24 * time.Hour})
	resp := h.do(func(c *fiber.Ctx, s *sess) error {
		s.Set("user", "ada")
		s.SetIdleTimeout(30 * 24 * time.Hour)
		return nil
	})
	if sc := strings.Join(setCookies(resp), ""); !strings.Contains(sc, "max-age=2592000") {
		t.Errorf("remember-me cookie %q has no 30-day Max-Age", sc)
	}
	if _, ttl, _ := h.store.Store.GetTTL(context.Background(), h.id()); ttl < 29*24*time.Hour {
		t.Errorf("store TTL %s, want the 30-day override", ttl)
	}
	// The override survives a later write.
	h.do(func(c *fiber.Ctx, s *sess) error { s.Set("x", "y"); return nil })
	if _, ttl, _ := h.store.Store.GetTTL(context.Background(), h.id()); ttl < 29*24*time.Hour {
		t.Errorf("after another request the store TTL is %s", ttl)
	}
	r, _ := h.stored(h.id())
	if r.idle != (30 * 24 * time.Hour).Milliseconds() {
		t.Errorf("record idle = %d", r.idle)
	}

	// Back to the default: the browser gets a browser-session cookie in place
	// of the persistent one, for the same id.
	id := h.id()
	resp = h.do(func(c *fiber.Ctx, s *sess) error { s.SetIdleTimeout(0); return nil })
	sc := setCookies(resp)
	if len(sc) != 1 || !strings.HasPrefix(sc[0], "session=") || strings.Contains(strings.ToLower(sc[0]), "max-age") || strings.Contains(strings.ToLower(sc[0]), "expires") || h.id() != id {
		t.Errorf("after SetIdleTimeout(0): Set-Cookie %q, want a browser-session cookie for the same id", sc)
	}
	if r, _ := h.stored(id); r.idle != 0 {
		t.Errorf("record idle = %d after SetIdleTimeout(0)", r.idle)
	}

	// Below one second: refused and logged, nothing changes.
	h.do(func(c *fiber.Ctx, s *sess) error { s.SetIdleTimeout(300 * time.Millisecond); return nil })
	if r, _ := h.stored(id); r.idle != 0 || !strings.Contains(h.logs.String(), "below one second refused") {
		t.Errorf("a 300ms idle timeout: record idle %d, logs %q", r.idle, h.logs.String())
	}

	// Longer than the absolute lifetime: warned once.
	for range 2 {
		h.do(func(c *fiber.Ctx, s *sess) error { s.SetIdleTimeout(100 * 24 * time.Hour); return nil })
	}
	if n := strings.Count(h.logs.String(), "longer than Config.AbsoluteTimeout"); n != 1 {
		t.Errorf("an idle timeout past the absolute one was warned %d times, want once", n)
	}
}

// A Secure cookie sent over plain HTTP to a host other than localhost is
// dropped by browsers: warned once per manager. TLS, a proxy that says https
// and localhost are not warned.
func TestPlainHTTPWarning(t *testing.T) {
	for _, tc := range []struct {
		name, host, header string
		insecure, warn     bool
	}{
		{name: "plain http", host: "example.com", warn: true},
		{name: "plain http with port", host: "example.com:8080", warn: true},
		{name: "forwarded proto", host: "example.com", header: "X-Forwarded-Proto: https"},
		{name: "forwarded", host: "example.com", header: "Forwarded: for=192.0.2.1;proto=https"},
		{name: "localhost", host: "localhost:3000"},
		{name: "loopback v4", host: "127.0.0.1:3000"},
		{name: "loopback v6", host: "[::1]:3000"},
		{name: "insecure cookie", host: "example.com", insecure: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config[string, string]{CookieInsecure: tc.insecure})
			for range 2 {
				req := httptest.NewRequest(http.MethodPost, "/run/x", nil)
				req.Host = tc.host
				if k, v, ok := strings.Cut(tc.header, ": "); ok {
					req.Header.Set(k, v)
				}
				h.fn["x"] = func(c *fiber.Ctx, s *sess) error { s.Set("user", "ada"); return nil }
				resp, err := h.app.Test(req)
				if err != nil {
					t.Fatal(err)
				}
				if len(setCookies(resp)) != 1 {
					t.Fatalf("err %v, cookies %q", err, setCookies(resp))
				}
			}
			n := strings.Count(h.logs.String(), "over plain HTTP")
			if want := map[bool]int{true: 1, false: 0}[tc.warn]; n != want {
				t.Errorf("warned %d times, want %d; logs %q", n, want, h.logs.String())
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	h := newHarness(t, Config[string, string]{IdleTimeout: time.Hour, AbsoluteTimeout: 2 * time.Hour})
	id := h.login("ada")
	if _, ttl, _ := h.store.Store.GetTTL(context.Background(), id); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("store TTL %s, want the idle timeout", ttl)
	}
	// Near the absolute deadline the TTL is what is left of the lifetime.
	h.advance(90 * time.Minute)
	h.do(func(c *fiber.Ctx, s *sess) error { s.Set("x", "1"); return nil })
	if _, ttl, _ := h.store.Store.GetTTL(context.Background(), id); ttl > 31*time.Minute || ttl < 29*time.Minute {
		t.Errorf("store TTL %s, want the 30 minutes left of the absolute lifetime", ttl)
	}
	// Past the absolute deadline: a fresh session with a new id.
	h.advance(31 * time.Minute)
	h.do(func(c *fiber.Ctx, s *sess) error {
		if s.Has("user") {
			t.Error("a session past its absolute lifetime still has its data")
		}
		s.Set("y", "1")
		return nil
	})
	if h.id() == id {
		t.Error("an expired session's id was reused")
	}
	// RegenerateID starts a new absolute lifetime.
	h.advance(90 * time.Minute)
	h.do(func(c *fiber.Ctx, s *sess) error { s.RegenerateID(true); return nil })
	h.advance(60 * time.Minute)
	h.do(func(c *fiber.Ctx, s *sess) error {
		if !s.Has("y") {
			t.Error("RegenerateID did not renew the absolute lifetime")
		}
		return nil
	})
}

// withoutCAS is a store with the Toucher and TTLGetter of st but without its
// compare-and-set.
type withoutCAS struct {
	Store
	Toucher
	TTLGetter
}

func TestTouchThrottled(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cas             bool
		touches, writes int64 // by the extension
	}{
		// A store without compare-and-set extends with a TTL-only touch.
		{"Touch", false, 1, 0},
		// One with it rewrites the record conditionally, so that a request
		// that read the session before it moved cannot extend the old id.
		{"CompareAndSet", true, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Real time: the memory store's TTLs run on the wall clock.
			st := newCountingStore(t)
			cfg := Config[string, string]{IdleTimeout: 4 * time.Second, TouchInterval: time.Second, CookiePersistent: true, Store: st}
			if !tc.cas {
				cfg.Store = withoutCAS{st, st, st}
			}
			h := newHarness(t, cfg)
			id := h.login("ada")
			read := func(c *fiber.Ctx, s *sess) error { s.Get("user"); return nil }
			for range 2 {
				if sc := setCookies(h.do(read)); len(sc) != 0 {
					t.Errorf("cookie re-sent without a change: %q", sc)
				}
			}
			if n := st.touches.Load() + st.sets.Load(); n != 1 {
				t.Fatalf("%d writes for one login and two immediate reads", n)
			}
			time.Sleep(1200 * time.Millisecond) // let the stored expiry fall a touch interval behind
			if sc := strings.Join(setCookies(h.do(read)), ""); !strings.Contains(sc, "max-age=4;") {
				t.Errorf("touch of a persistent cookie sent %q, want Max-Age 4", sc)
			}
			h.do(read)
			if st.touches.Load() != tc.touches || st.sets.Load() != 1+tc.writes {
				t.Errorf("touches %d, writes %d after the login's; want %d and %d", st.touches.Load(), st.sets.Load()-1, tc.touches, tc.writes)
			}
			if _, ttl, _ := st.Store.GetTTL(context.Background(), id); ttl < 3900*time.Millisecond {
				t.Errorf("extended TTL %s, want about the 4s idle timeout", ttl)
			}
		})
	}
}

func TestSaveAndReload(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.login("ada")
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.Set("a", "1")
		if err := s.Save(); err != nil {
			t.Fatal(err)
		}
		if s.Dirty() {
			t.Error("dirty right after Save")
		}
		if r, _ := h.stored(s.ID()); find(r.vals, "a") < 0 {
			t.Error("Save did not write")
		}
		s.Set("b", "2")
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		if s.Has("b") || !s.Has("a") || !s.Has("user") {
			t.Errorf("after Reload keys = %q", s.Keys())
		}
		return nil
	})
	h.do(func(c *fiber.Ctx, s *sess) error {
		if s.Has("b") || !s.Has("a") {
			t.Errorf("keys = %q", s.Keys())
		}
		return nil
	})
}

func TestUndecodableRecord(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	id := h.login("ada")
	if err := h.store.Store.Set(context.Background(), id, []byte("garbage"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 2 { // never an error loop
		resp := h.do(func(c *fiber.Ctx, s *sess) error {
			if s.Has("user") || s.ID() == id {
				t.Error("an undecodable record did not give a fresh session")
			}
			return c.SendString("fine")
		})
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	if !strings.Contains(h.logs.String(), "does not decode") {
		t.Errorf("nothing logged: %s", h.logs)
	}
	// A value whose type changed is absent, not a panic.
	h.do(func(c *fiber.Ctx, s *sess) error { s.Set("n", "x"); return nil })
	r, _ := h.stored(h.id())
	r.vals[0].raw = []byte("{not json")
	data, _ := encodeRecord[string, string](JSON{}, &r)
	h.store.Store.Set(context.Background(), h.id(), data, time.Hour)
	h.do(func(c *fiber.Ctx, s *sess) error {
		if v, ok := s.Get("n"); ok {
			t.Errorf("undecodable value read as %q", v)
		}
		return nil
	})
}

func newJar() (*cookiejar.Jar, error) { return cookiejar.New(nil) }

// A save whose record would outgrow MaxRecordSize fails with ErrTooLarge
// and changes nothing stored.
func TestMaxRecordSize(t *testing.T) {
	h := newHarness(t, Config[string, string]{MaxRecordSize: 1000})
	id := h.login("ada")
	before, _ := h.store.Store.Get(context.Background(), id)
	var saveErr error
	resp := h.do(func(c *fiber.Ctx, s *sess) error {
		s.Set("big", strings.Repeat("x", 1000))
		saveErr = s.Save()
		return saveErr
	})
	if !errors.Is(saveErr, ErrTooLarge) || resp.StatusCode != 500 {
		t.Errorf("Save = %v, status %d; want ErrTooLarge and 500", saveErr, resp.StatusCode)
	}
	if after, _ := h.store.Store.Get(context.Background(), id); string(after) != string(before) {
		t.Error("the failed save changed the stored record")
	}
	h.do(func(c *fiber.Ctx, s *sess) error { s.Set("small", strings.Repeat("x", 800)); return nil })
	if r, _ := h.stored(id); find(r.vals, "small") < 0 {
		t.Error("a record under the limit was not stored")
	}
	if _, err := NewManager(Config[string, string]{MaxRecordSize: -1, Secrets: [][]byte{testKey}}); !errors.Is(err, ErrConfig) {
		t.Errorf("a negative MaxRecordSize: %v, want ErrConfig", err)
	}
}
