package storetest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// The concurrency section of RunMiddleware: interleavings of two requests
// of one session, driven step by step with gates inside the handlers (no
// sleeps), and contention of many requests of one session. Both need a
// store with compare-and-set; without it they are skipped.

// stepApp is a Fiber app with the session middleware whose route /step/:name
// runs the step registered under name.
type stepApp struct {
	m     *session.Manager[string, string]
	app   *fiber.App
	mu    sync.Mutex
	steps map[string]func(c *fiber.Ctx, s *session.Session[string, string]) string
}

func newStepApp(t *testing.T, cfg session.Config[string, string]) *stepApp {
	m := newManager(t, cfg)
	a := &stepApp{m: m, app: fiber.New(fiber.Config{DisableStartupMessage: true})}
	a.steps = map[string]func(*fiber.Ctx, *session.Session[string, string]) string{}
	a.app.Use(m.Handler())
	a.app.All("/step/:name", func(c *fiber.Ctx) error {
		a.mu.Lock()
		f := a.steps[c.Params("name")]
		a.mu.Unlock()
		if f == nil {
			return c.SendStatus(http.StatusNotFound)
		}
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		return c.SendString(f(c, s))
	})
	return a
}

// step registers f under name and returns its path.
func (a *stepApp) step(name string, f func(c *fiber.Ctx, s *session.Session[string, string]) string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.steps[name] = f
	return "/step/" + name
}

// gate stops a handler until the test opens it: the handler calls pass,
// which reports that it got there and waits; the test calls reached, does
// what it wants in between, then open.
type gate struct{ at, open chan struct{} }

func newGate() gate { return gate{make(chan struct{}), make(chan struct{})} }

func (g gate) pass()    { close(g.at); <-g.open }
func (g gate) reached() { <-g.at }
func (g gate) release() { close(g.open) }

// async sends b's request in the background; wait returns its answer.
func async(b *Browser, method, path string) (wait func() (int, string)) {
	done := make(chan struct{})
	var status int
	var body string
	go func() {
		defer close(done)
		status, body = b.Do(method, path)
	}()
	return func() (int, string) { <-done; return status, body }
}

// testRaces drives each interleaving of two requests A and B of one signed-in
// session where B finishes while A, which read the session first, waits.
func testRaces(t *testing.T, newStore func(t *testing.T) session.Store, o MiddlewareOptions) {
	type sess = session.Session[string, string]
	keys := func(_ *fiber.Ctx, s *sess) string { return strings.Join(s.Keys(), ",") }
	// setup signs a browser in with the values user and base, and returns
	// the app, the store, the browser and a second browser with its cookie.
	setup := func(t *testing.T) (*stepApp, session.Store, *Browser, *Browser) {
		st := newStore(t)
		need[session.CompareAndSetter](t, st)
		a := newStepApp(t, session.Config[string, string]{Store: st, CookieInsecure: true})
		a.step("keys", keys)
		b := NewBrowser(t, a.app)
		b.Expect("POST", a.step("login", func(_ *fiber.Ctx, s *sess) string {
			s.RegenerateID(true)
			s.Set("user", "ada")
			s.Set("base", "1")
			return "ok"
		}), "ok")
		other := NewBrowser(t, a.app)
		other.SetCookie(b.Cookie())
		return a, st, b, other
	}
	// slow returns a step that reads the session, waits at g, then does f.
	slow := func(g gate, f func(s *sess)) func(*fiber.Ctx, *sess) string {
		return func(_ *fiber.Ctx, s *sess) string {
			s.Get("user")
			g.pass()
			f(s)
			return "ok"
		}
	}

	for _, deleteOld := range []bool{true, false} {
		suffix := "/deleteOld=" + strconv.FormatBool(deleteOld)

		// Sign-out wins over a rotation that read the session before it.
		t.Run("DestroyThenRotate"+suffix, func(t *testing.T) {
			a, st, b, other := setup(t)
			old := b.ID()
			g := newGate()
			wait := async(b, "POST", a.step("rotate", slow(g, func(s *sess) {
				s.RegenerateID(deleteOld)
				s.Set("after", "1")
			})))
			g.reached()
			other.Expect("POST", a.step("destroy", func(_ *fiber.Ctx, s *sess) string { s.Destroy(); return "ok" }), "ok")
			g.release()
			if status, body := wait(); status != http.StatusOK || body != "ok" {
				t.Fatalf("the rotating request answered %d %q", status, body)
			}
			if b.Sent() {
				t.Errorf("the rotating request sent the cookie %q for a destroyed session", b.Cookie())
			}
			o.wantStored(t, st, old, false)
			b.Expect("GET", "/step/keys", "") // the old cookie: a new session
		})

		// A change saved by another request before the rotation's save moves
		// with the session; the old id keeps it in its grace copy.
		t.Run("WriteThenRotate"+suffix, func(t *testing.T) {
			a, st, b, other := setup(t)
			oldCookie := b.Cookie()
			g := newGate()
			wait := async(b, "POST", a.step("rotate", slow(g, func(s *sess) {
				s.RegenerateID(deleteOld)
				s.Set("a", "1")
			})))
			g.reached()
			other.Expect("POST", a.step("setb", func(_ *fiber.Ctx, s *sess) string { s.Set("b", "1"); return "ok" }), "ok")
			g.release()
			if status, _ := wait(); status != http.StatusOK || !b.Sent() || b.Cookie() == oldCookie {
				t.Fatalf("the rotation answered %d with cookie sent %v", status, b.Sent())
			}
			b.Expect("GET", "/step/keys", "a,b,base,user")
			o.wantStored(t, st, SessionID(oldCookie), !deleteOld)
			other.SetCookie(oldCookie)
			if deleteOld {
				other.Expect("GET", "/step/keys", "")
			} else {
				other.Expect("GET", "/step/keys", "b,base,user") // the grace copy, read-only
			}
			if other.Sent() {
				t.Errorf("a request with the old cookie got the cookie %q", other.Cookie())
			}
		})

		// A rotation that read the session before another request rotated
		// it does not move it again.
		t.Run("RotateThenRotate"+suffix, func(t *testing.T) {
			a, st, b, other := setup(t)
			old := b.ID()
			g := newGate()
			wait := async(other, "POST", a.step("rotate", slow(g, func(s *sess) {
				s.RegenerateID(deleteOld)
				s.Set("late", "1")
			})))
			g.reached()
			b.Expect("POST", a.step("rotate2", func(_ *fiber.Ctx, s *sess) string { s.RegenerateID(deleteOld); return "ok" }), "ok")
			first := b.ID()
			g.release()
			if status, _ := wait(); status != http.StatusOK {
				t.Fatalf("the late rotation answered %d", status)
			}
			if other.Sent() {
				t.Errorf("the late rotation sent the cookie %q", other.Cookie())
			}
			b.Expect("GET", "/step/keys", "base,user")
			o.wantStored(t, st, first, true)
			o.wantStored(t, st, old, !deleteOld)
		})

		// A change saved with the old cookie after the rotation saved is
		// dropped: the old id is read-only for its grace, or gone.
		t.Run("RotateThenWrite"+suffix, func(t *testing.T) {
			a, st, b, other := setup(t)
			old := b.ID()
			g := newGate()
			wait := async(other, "POST", a.step("late", slow(g, func(s *sess) { s.Set("late", "1") })))
			g.reached()
			b.Expect("POST", a.step("rotate", func(_ *fiber.Ctx, s *sess) string { s.RegenerateID(deleteOld); return "ok" }), "ok")
			before, _ := st.Get(ctx, old)
			g.release()
			if status, _ := wait(); status != http.StatusOK {
				t.Fatalf("the late write answered %d", status)
			}
			if other.Sent() {
				t.Errorf("the late write sent the cookie %q", other.Cookie())
			}
			b.Expect("GET", "/step/keys", "base,user")
			if after, _ := st.Get(ctx, old); string(after) != string(before) {
				t.Errorf("the late write changed the old id's record")
			}
			o.wantStored(t, st, old, !deleteOld)
		})
	}

	// A write that read the session before another request destroyed it
	// does not bring it back.
	t.Run("DestroyThenWrite", func(t *testing.T) {
		a, st, b, other := setup(t)
		old := b.ID()
		g := newGate()
		wait := async(b, "POST", a.step("late", slow(g, func(s *sess) { s.Set("late", "1") })))
		g.reached()
		other.Expect("POST", a.step("destroy", func(_ *fiber.Ctx, s *sess) string { s.Destroy(); return "ok" }), "ok")
		g.release()
		if status, _ := wait(); status != http.StatusOK || b.Sent() {
			t.Fatalf("the late write answered %d, cookie sent %v", status, b.Sent())
		}
		o.wantStored(t, st, old, false)
	})

	// The grace copy is read-only: a request with the old cookie can neither
	// rotate it again nor change or extend it, and gets no cookie.
	t.Run("GraceCopyReadOnly", func(t *testing.T) {
		a, st, b, other := setup(t)
		old := b.ID()
		b.Expect("POST", a.step("rotate", func(_ *fiber.Ctx, s *sess) string { s.RegenerateID(false); return "ok" }), "ok")
		before, err := st.Get(ctx, old)
		if err != nil {
			t.Fatalf("no grace copy: %v", err)
		}
		other.Expect("POST", a.step("again", func(_ *fiber.Ctx, s *sess) string {
			s.RegenerateID(false)
			s.Set("x", "1")
			s.SetIdleTimeout(time.Hour)
			return "ok"
		}), "ok")
		if other.Sent() {
			t.Errorf("a request on the grace copy got the cookie %q", other.Cookie())
		}
		if after, _ := st.Get(ctx, old); string(after) != string(before) {
			t.Error("a request on the grace copy changed it")
		}
		other.Expect("GET", "/step/keys", "base,user")
		b.Expect("GET", "/step/keys", "base,user")
	})
}

// testContention sends many concurrent requests of one session: each sets
// its own key, or adds one to a counter with Update; through one app (one
// process) and through two apps over the same store (two processes).
func testContention(t *testing.T, newStore func(t *testing.T) session.Store) {
	type sess = session.Session[string, string]
	const n = 100
	for _, apps := range []int{1, 2} {
		t.Run("Apps="+strconv.Itoa(apps), func(t *testing.T) {
			st := newStore(t)
			need[session.CompareAndSetter](t, st)
			var as []*stepApp
			for range apps {
				a := newStepApp(t, session.Config[string, string]{Store: st, CookieInsecure: true})
				a.step("set", func(c *fiber.Ctx, s *sess) string { s.Set(strings.Clone(c.Query("k")), "v"); return "ok" })
				a.step("inc", func(_ *fiber.Ctx, s *sess) string {
					v := s.Update("count", func(old string) string {
						n, _ := strconv.Atoi(old)
						return strconv.Itoa(n + 1)
					})
					return v
				})
				a.step("get", func(_ *fiber.Ctx, s *sess) string {
					c, _ := s.Get("count")
					return strings.Join(s.Keys(), ",") + " count=" + c
				})
				as = append(as, a)
			}
			for _, a := range as {
				a.step("login", func(_ *fiber.Ctx, s *sess) string { s.Set("user", "ada"); return "ok" })
			}
			b := NewBrowser(t, as[0].app)
			b.Expect("POST", "/step/login", "ok")
			cookie := b.Cookie()

			// send sends n concurrent requests, the i-th to path with {i}
			// replaced by i and the cookie cookies(i).
			send := func(path string, cookies func(i int) string) time.Duration {
				start := time.Now()
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						p := strings.ReplaceAll(path, "{i}", strconv.Itoa(i))
						req := httptest.NewRequest("POST", p, nil)
						req.AddCookie(&http.Cookie{Name: "session", Value: cookies(i)})
						resp, err := as[i%apps].app.Test(req, 30_000)
						if err != nil {
							t.Errorf("POST %s: %v", p, err)
							return
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							t.Errorf("POST %s: status %d", p, resp.StatusCode)
						}
					}()
				}
				wg.Wait()
				return time.Since(start)
			}
			one := func(int) string { return cookie }
			took := send("/step/set?k=k{i}", one)
			inc := send("/step/inc", one)
			want := []string{"count", "user"}
			for i := range n {
				want = append(want, "k"+strconv.Itoa(i))
			}
			slices.Sort(want)
			b.Expect("GET", "/step/get", strings.Join(want, ",")+" count="+strconv.Itoa(n))

			// The same number of writes, each to a session of its own: what
			// the contention costs.
			own := make([]string, n)
			for i := range own {
				ob := NewBrowser(t, as[i%apps].app)
				ob.Expect("POST", "/step/login", "ok")
				own[i] = ob.Cookie()
			}
			apart := send("/step/set?k=k", func(i int) string { return own[i] })
			t.Logf("%d concurrent writes through %d app(s): one session, disjoint keys %v, increments %v; %d sessions, one write each %v",
				n, apps, took.Round(time.Millisecond), inc.Round(time.Millisecond), n, apart.Round(time.Millisecond))
		})
	}
}
