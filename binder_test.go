package session

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fibersession/session/stores/memory"
)

// binder is a Binder over a memory store that records what the middleware
// asks of it: the cookie it binds with, and every write.
type binder struct {
	*memory.Store
	mu     sync.Mutex
	binds  int
	cookie string // the attributes Bind got, as a Set-Cookie value
	calls  []string
}

func (b *binder) Bind(req *fasthttp.RequestCtx, cookie *fasthttp.Cookie) Store {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.binds++
	b.cookie = cookie.String()
	return &boundStore{b}
}

func (b *binder) log(format string, a ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, a...))
}

func (b *binder) take() (binds int, calls []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	binds, calls = b.binds, b.calls
	b.binds, b.calls = 0, nil
	return binds, calls
}

// boundStore has no compare-and-set, like the encrypted cookie store.
type boundStore struct{ b *binder }

func (s *boundStore) Get(ctx context.Context, id string) ([]byte, error) {
	return s.b.Store.Get(ctx, id)
}

func (s *boundStore) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	s.b.log("set %s", id)
	return s.b.Store.Set(ctx, id, data, ttl)
}

func (s *boundStore) Delete(ctx context.Context, id string) error {
	s.b.log("delete %s", id)
	return s.b.Store.Delete(ctx, id)
}

// TestBinder checks the middleware's side of the Binder contract: one Bind
// per request that loads its session, with the session cookie's attributes;
// no grace copy or deletion of a rotated-away id; and Vary on every response
// it wrote through the bound store.
func TestBinder(t *testing.T) {
	st := &binder{Store: memory.New(memory.Config{CleanupInterval: -1})}
	h := newHarness(t, Config[string, string]{Store: st, CookiePath: "/run", CookieDomain: "example.com", CookieSameSite: "Strict"})
	h.plain()
	if binds, _ := st.take(); binds != 0 {
		t.Errorf("a request that never loaded its session bound the store %d times", binds)
	}

	id := h.login("ada")
	binds, calls := st.take()
	if binds != 1 || strings.Join(calls, ",") != "set "+id {
		t.Errorf("login: %d binds, calls %q", binds, calls)
	}
	for _, want := range []string{"session=", "path=/run", "domain=example.com", "SameSite=Strict", "secure", "HttpOnly"} {
		if !strings.Contains(st.cookie, want) {
			t.Errorf("Bind got cookie %q, which lacks %q", st.cookie, want)
		}
	}

	// A read-only request writes nothing and says nothing about caching.
	resp := h.do(func(c *fiber.Ctx, s *sess) error {
		if u, _ := s.Get("user"); u != "ada" {
			t.Errorf("user %q through the bound store", u)
		}
		return nil
	})
	if binds, calls := st.take(); binds != 1 || len(calls) != 0 || resp.Header.Get("Vary") != "" {
		t.Errorf("read-only: %d binds, calls %q, Vary %q", binds, calls, resp.Header.Get("Vary"))
	}

	// A change under the same id sets no session cookie, but the bound store
	// wrote the response: it must not be cached.
	resp = h.do(func(c *fiber.Ctx, s *sess) error { s.Set("theme", "dark"); return nil })
	if _, calls := st.take(); strings.Join(calls, ",") != "set "+id || len(setCookies(resp)) != 0 {
		t.Errorf("change: calls %q, cookies %q", calls, setCookies(resp))
	}
	if v, cc := resp.Header.Get("Vary"), resp.Header.Get("Cache-Control"); v != "Cookie" || cc != `no-cache="Set-Cookie"` {
		t.Errorf("change through the bound store: Vary %q, Cache-Control %q", v, cc)
	}

	// Rotation writes the new id only, with or without deleteOld.
	for _, deleteOld := range []bool{false, true} {
		old := h.id()
		h.do(func(c *fiber.Ctx, s *sess) error { s.RegenerateID(deleteOld); return nil })
		if _, calls := st.take(); len(calls) != 1 || calls[0] != "set "+h.id() || h.id() == old {
			t.Errorf("RegenerateID(%v) from %s: calls %q, new id %s", deleteOld, old, calls, h.id())
		}
	}
}
