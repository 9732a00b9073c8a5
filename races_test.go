package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fibersession "github.com/gofiber/fiber/v2/middleware/session"
)

// The interleavings of stores/storetest's Races section that need the
// harness's clock, its keys or its stores.

// A request that read the session before another moved it to a new id
// finds an extension due: it must not extend the id moved away from.
func TestTouchAfterRotation(t *testing.T) {
	h := newHarness(t, Config[string, string]{IdleTimeout: time.Hour, TouchInterval: time.Minute, RotationGrace: 10 * time.Second})
	st := h.store
	old := h.login("ada")
	// The store's expiry lags the idle timeout by two minutes: the next
	// read finds an extension due.
	if err := st.Store.Touch(context.Background(), old, time.Hour-2*time.Minute); err != nil {
		t.Fatal(err)
	}

	at, open := make(chan struct{}), make(chan struct{})
	done := make(chan *http.Response)
	go func() {
		done <- h.do(func(c *fiber.Ctx, s *sess) error {
			s.Get("user")
			close(at)
			<-open
			return nil
		})
	}()
	<-at
	h.do(func(c *fiber.Ctx, s *sess) error { s.RegenerateID(false); return nil })
	grace, _ := st.Store.Get(context.Background(), old)
	close(open)
	if sc := setCookies(<-done); len(sc) != 0 {
		t.Errorf("the late request sent %q", sc)
	}
	if n := st.touches.Load(); n != 0 {
		t.Errorf("%d touches, want none", n)
	}
	if r, ok := h.stored(old); !ok || !r.moved() {
		t.Fatalf("the old id holds %+v (%v), want its grace copy", r, ok)
	}
	if now, _ := st.Store.Get(context.Background(), old); string(now) != string(grace) {
		t.Error("the late request rewrote the grace copy")
	}
	if _, ttl, _ := st.Store.GetTTL(context.Background(), old); ttl > 10*time.Second {
		t.Errorf("the grace copy lives %v, want at most the 10s grace", ttl)
	}
}

// A request whose cookie is signed with an older key reads the grace copy
// of a rotated session: it must not get a re-signed cookie for the old id.
func TestOldKeyCookieOnGraceCopy(t *testing.T) {
	newKey := []byte("a new 32-byte key for the cookie")
	h := newHarness(t, Config[string, string]{Secrets: [][]byte{newKey, testKey}})
	old := h.login("ada")
	h.do(func(c *fiber.Ctx, s *sess) error { s.RegenerateID(false); return nil })
	if h.id() == old {
		t.Fatal("no rotation")
	}
	late := newSigner("session", [][]byte{testKey}).sign(old)
	h.mu.Lock()
	h.fn["late"] = func(c *fiber.Ctx, s *sess) error { v, _ := s.Get("user"); return c.SendString(v) }
	h.mu.Unlock()
	req := httptest.NewRequest(http.MethodPost, "/run/late", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: late})
	resp, err := h.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "ada" {
		t.Errorf("the grace copy read %q, want ada", got)
	}
	if sc := setCookies(resp); len(sc) != 0 {
		t.Errorf("a request on the grace copy with an old key's cookie got %q", sc)
	}
}

// Update re-applies its function to the value another request saved
// meanwhile; a Set of the key later in the request replaces the update.
func TestUpdateRace(t *testing.T) {
	add := func(d int) func(string) string {
		return func(old string) string { n, _ := strconv.Atoi(old); return strconv.Itoa(n + d) }
	}
	for _, tc := range []struct {
		name string
		a    func(s *sess) // the request held at the gate
		want string
	}{
		{"Update", func(s *sess) { s.Update("n", add(1)) }, "111"},
		{"UpdateTwice", func(s *sess) { s.Update("n", add(1)); s.Update("n", add(1)) }, "112"},
		{"UpdateThenSet", func(s *sess) { s.Update("n", add(1)); s.Set("n", "7") }, "7"},
		{"SetThenUpdate", func(s *sess) { s.Set("n", "7"); s.Update("n", add(1)) }, "8"},
		{"Get+Set", func(s *sess) { v, _ := s.Get("n"); s.Set("n", add(1)(v)) }, "101"}, // the lost update Update prevents
		{"ClearThenUpdate", func(s *sess) { s.Clear(); s.Update("n", add(1)) }, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config[string, string]{})
			h.do(func(c *fiber.Ctx, s *sess) error { s.Set("n", "100"); return nil })
			at, open := make(chan struct{}), make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.do(func(c *fiber.Ctx, s *sess) error {
					s.Get("n")
					close(at)
					<-open
					tc.a(s)
					return nil
				})
			}()
			<-at
			h.do(func(c *fiber.Ctx, s *sess) error { s.Update("n", add(10)); return nil })
			close(open)
			<-done
			if r, _ := h.stored(h.id()); string(r.vals[0].raw) != `"`+tc.want+`"` {
				t.Errorf("n = %s, want %s", r.vals[0].raw, tc.want)
			}
		})
	}
}

// heldStore holds every compare-and-set of a non-nil old record at a gate,
// whatever its context says, until the test lets it go: a store hanging on
// the first save of a session.
type heldStore struct {
	*countingStore
	at, release chan struct{}
	once        sync.Once
}

func (h *heldStore) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if old != nil {
		h.once.Do(func() { close(h.at); <-h.release })
	}
	return h.countingStore.CompareAndSet(ctx, id, old, data, ttl)
}

// A save waiting for another save of the same session to end its turn gives
// up at its own StoreTimeout, even when the save ahead of it hangs.
func TestWaitingSaveTimesOut(t *testing.T) {
	st := &heldStore{countingStore: newCountingStore(t), at: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, Config[string, string]{Store: st, StoreTimeout: 100 * time.Millisecond})
	h.store = st.countingStore
	h.login("ada")
	first := make(chan *http.Response)
	go func() { first <- h.do(func(c *fiber.Ctx, s *sess) error { s.Set("a", "1"); return nil }) }()
	<-st.at // the first save hangs in the store
	resp := h.do(func(c *fiber.Ctx, s *sess) error { s.Set("b", "1"); return nil })
	if resp.StatusCode != 500 {
		t.Errorf("the waiting save answered %d while the one ahead of it hung, want 500", resp.StatusCode)
	}
	close(st.release)
	<-first
	if r, _ := h.stored(h.id()); find(r.vals, "b") >= 0 {
		t.Error("the save that gave up was written")
	}
}

// After a Save in the handler failed, the middleware does not save again.
func TestFailedSaveNotRepeated(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.login("ada")
	sets := h.store.sets.Load()
	resp := h.do(func(c *fiber.Ctx, s *sess) error {
		h.store.fail.Store(true) // the store goes down after the load
		s.Set("a", "1")
		_ = s.Save() // the handler ignores the error
		return c.SendString("done")
	})
	if resp.StatusCode != 500 {
		t.Errorf("status %d, want the ErrorHandler's 500", resp.StatusCode)
	}
	if n := h.store.sets.Load() - sets; n != 1 {
		t.Errorf("%d writes, want the handler's one", n)
	}
}

// On a store without compare-and-set the grace copy still reads as no
// session after RotationGrace, by its own deadline, however long the store
// keeps it.
func TestGraceCopyDeadline(t *testing.T) {
	h := newHarness(t, Config[string, string]{Store: FromStorage(fibersession.New().Storage, "t:"), RotationGrace: time.Minute})
	h.login("ada")
	old := h.cookie()
	h.do(func(c *fiber.Ctx, s *sess) error { s.RegenerateID(false); return nil })
	read := func() string {
		h.mu.Lock()
		h.fn["read"] = func(c *fiber.Ctx, s *sess) error { v, _ := s.Get("user"); return c.SendString(v) }
		h.mu.Unlock()
		req := httptest.NewRequest(http.MethodPost, "/run/read", nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: old})
		resp, err := h.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return body(t, resp)
	}
	if got := read(); got != "ada" {
		t.Fatalf("the old cookie within the grace read %q, want the grace copy's ada", got)
	}
	h.advance(61 * time.Second) // the storage still holds the copy (its clock is the wall's)
	if got := read(); got != "" {
		t.Errorf("the old cookie after the grace read %q, want a new session", got)
	}
}

// A record that a newer release rewrote, in a format this one cannot read,
// while a request of this release was in its handler is not overwritten by
// that request's save.
func TestNewerRecordNotOverwritten(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	id := h.login("ada")
	newer := []byte{3, 0, 'a', 'n', 'y', 't', 'h', 'i', 'n', 'g'}
	resp := h.do(func(c *fiber.Ctx, s *sess) error {
		s.Get("user")
		if err := h.store.Store.Set(context.Background(), id, newer, time.Hour); err != nil {
			t.Fatal(err)
		}
		s.Set("late", "1")
		return nil
	})
	if sc := setCookies(resp); len(sc) != 0 {
		t.Errorf("the save sent %q", sc)
	}
	if got, _ := h.store.Store.Get(context.Background(), id); string(got) != string(newer) {
		t.Errorf("the newer release's record became %x", got)
	}
}

// Within one process, saves of one session that arrive while another is
// writing wait for its turn to end and are then written together, merged,
// by one compare-and-set that does not fail.
func TestSavesInOneProcessMerge(t *testing.T) {
	st := &heldStore{countingStore: newCountingStore(t), at: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, Config[string, string]{Store: st})
	h.store = st.countingStore
	h.login("ada")
	cookie := h.cookie()
	h.mu.Lock()
	h.fn["set"] = func(c *fiber.Ctx, s *sess) error { s.Set(strings.Clone(c.Query("k")), "v"); return nil }
	h.mu.Unlock()
	send := func(i int, wg *sync.WaitGroup) {
		defer wg.Done()
		req := httptest.NewRequest(http.MethodPost, "/run/set?k=k"+strconv.Itoa(i), nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
		if resp, err := h.app.Test(req, -1); err != nil || resp.StatusCode != 200 {
			t.Errorf("request %d: %v %v", i, resp, err)
		}
	}
	sets := st.sets.Load()
	var wg sync.WaitGroup
	wg.Add(1)
	go send(0, &wg)
	<-st.at // the first save is writing, held in the store
	const n = 10
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go send(i, &wg)
	}
	id := h.id()
	sh := &h.m.saving.shards[id[0]%16]
	for { // until all n wait for the held save's turn to end
		sh.mu.Lock()
		waiting := len(sh.writing[id].waiting)
		sh.mu.Unlock()
		if waiting == n {
			break
		}
		runtime.Gosched()
	}
	close(st.release)
	wg.Wait()
	if got := st.sets.Load() - sets; got != 2 {
		t.Errorf("%d compare-and-sets for %d saves, want 2: the held one, and one for all that waited", got, n+1)
	}
	if c := st.conflicts.Load(); c != 0 {
		t.Errorf("%d compare-and-sets failed, want none", c)
	}
	if r, _ := h.stored(id); len(r.vals) != n+2 {
		t.Errorf("%d values stored, want %d", len(r.vals), n+2)
	}
}
