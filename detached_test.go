package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

var bg = context.Background()

func TestLoadBySignedID(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	id := h.login("ada")
	token := h.cookie()

	s, err := h.m.Load(bg, token)
	if err != nil {
		t.Fatalf("Load of the cookie's value: %v", err)
	}
	if u, _ := s.Get("user"); u != "ada" || s.ID() != id || !s.Stored() {
		t.Fatalf("Load = user %q, id %q, stored %v; want ada, %q, true", u, s.ID(), s.Stored(), id)
	}
	if s.SignedID() != token {
		t.Errorf("SignedID = %q, want the cookie's value %q", s.SignedID(), token)
	}

	// A change saved through the detached session is what the next request sees.
	s.Set("role", "admin")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		if r, _ := s.Get("role"); r != "admin" {
			t.Errorf("the request sees role %q, want admin", r)
		}
		return nil
	})

	// A raw id is trusted.
	if s, err := h.m.LoadID(bg, id); err != nil || s.ID() != id {
		t.Fatalf("LoadID = %v, %v", s, err)
	}
}

func TestLoadRefusesBadTokens(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	id := h.login("ada")
	token := h.cookie()
	old, err := NewManager(Config[string, string]{Store: h.store, Secrets: [][]byte{[]byte("an older key, 32 bytes or longer!")}})
	if err != nil {
		t.Fatal(err)
	}
	byOldKey := old.signer.sign(id) // the key is no longer in Secrets
	sig := token[strings.IndexByte(token, '.')+1:]
	other := newID()

	for _, tc := range []struct{ name, token string }{
		{"Empty", ""},
		{"IDOnly", id},
		{"ForgedSignature", id + "." + strings.Repeat("A", len(sig))},
		{"SignatureOfAnotherID", other + "." + sig},
		{"RemovedKey", byOldKey},
		{"Garbage", "\x00\xff.."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := h.m.Load(bg, tc.token); !errors.Is(err, ErrBadToken) || s != nil {
				t.Errorf("Load = %v, %v; want ErrBadToken", s, err)
			}
			if err := h.m.Destroy(bg, tc.token); !errors.Is(err, ErrBadToken) {
				t.Errorf("Destroy = %v; want ErrBadToken", err)
			}
		})
	}
	if _, ok := h.stored(id); !ok {
		t.Fatal("a refused Destroy deleted the session")
	}

	// A valid token of a session that is gone, and unknown raw ids.
	gone := h.m.signer.sign(other)
	if _, err := h.m.Load(bg, gone); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load of a signed id with no record = %v, want ErrNotFound", err)
	}
	for _, raw := range []string{"", other, id + "x", id[:10]} {
		if _, err := h.m.LoadID(bg, raw); !errors.Is(err, ErrNotFound) {
			t.Errorf("LoadID(%q) = %v, want ErrNotFound", raw, err)
		}
	}
	if err := h.m.Destroy(bg, gone); err != nil {
		t.Errorf("Destroy of a session that is gone = %v, want nil", err)
	}
}

func TestDestroyBySignedID(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	id := h.login("ada")
	if err := h.m.Destroy(bg, h.cookie()); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.stored(id); ok {
		t.Fatal("Destroy left the record")
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		if s.Stored() || s.Has("user") {
			t.Error("a request with the destroyed session's cookie still has it")
		}
		return nil
	})

	id = h.login("bob")
	if err := h.m.DestroyID(bg, id); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.stored(id); ok {
		t.Fatal("DestroyID left the record")
	}
}

func TestDetachedRefusesWhatNeedsACookie(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	for _, tc := range []struct {
		name string
		act  func(s *sess)
	}{
		{"RegenerateID", func(s *sess) { s.Set("role", "admin"); s.RegenerateID(true) }},
		{"RegenerateIDKeepOld", func(s *sess) { s.RegenerateID(false) }},
		{"NewAfterDestroy", func(s *sess) { s.Destroy(); s.Set("user", "eve") }},
		{"NewAfterGone", func(s *sess) {
			if err := h.m.DestroyID(bg, s.ID()); err != nil {
				t.Fatal(err)
			}
			if err := s.Reload(); err != nil || s.Stored() {
				t.Fatalf("Reload of a destroyed session: stored %v, %v", s.Stored(), err)
			}
			s.Set("user", "eve")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.jar, _ = newJar()
			id := h.login("ada")
			s, err := h.m.Load(bg, h.cookie())
			if err != nil {
				t.Fatal(err)
			}
			before := h.store.writes()
			tc.act(s)
			if err := s.Save(); !errors.Is(err, ErrDetached) {
				t.Fatalf("Save = %v, want ErrDetached", err)
			}
			if w := h.store.writes() - before; w != 0 && tc.name != "NewAfterGone" {
				t.Errorf("a refused Save wrote %d times", w)
			}
			if tc.name == "NewAfterGone" {
				return
			}
			r, ok := h.stored(id)
			if !ok || r.moved() || find(r.vals, "role") >= 0 {
				t.Errorf("after a refused Save the record is stored %v, moved %v, vals %d", ok, r.moved(), len(r.vals))
			}
		})
	}

	// Destroy alone needs no cookie: the record goes.
	h.jar, _ = newJar()
	id := h.login("ada")
	s, _ := h.m.LoadID(bg, id)
	s.Destroy()
	if err := s.Save(); err != nil {
		t.Fatalf("Save after Destroy: %v", err)
	}
	if _, ok := h.stored(id); ok {
		t.Error("a detached Destroy left the record")
	}
}

// A detached session sees a change a request saved after it loaded once it
// reloads, and its own save merges with it.
func TestDetachedReloadAndMerge(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.login("ada")
	s, err := h.m.Load(bg, h.cookie())
	if err != nil {
		t.Fatal(err)
	}
	h.do(func(c *fiber.Ctx, s *sess) error { s.Set("theme", "dark"); return nil })
	s.Set("counter", "1")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Keys(), ","); got != "counter,theme,user" {
		t.Errorf("after merge and reload the keys are %q", got)
	}
}

func TestLoadRequest(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.login("ada")
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetCookie("session", h.cookie())
	s, err := h.m.LoadRequest(&rc)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Get("user"); u != "ada" {
		t.Errorf("LoadRequest: user %q", u)
	}
	var none fasthttp.RequestCtx
	if _, err := h.m.LoadRequest(&none); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadRequest without a cookie = %v, want ErrNotFound", err)
	}
	var forged fasthttp.RequestCtx
	forged.Request.Header.SetCookie("session", h.id()+".AAAA")
	if _, err := h.m.LoadRequest(&forged); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadRequest with a forged cookie = %v, want ErrNotFound", err)
	}
}

func TestSessionAccessors(t *testing.T) {
	h := newHarness(t, Config[string, string]{IdleTimeout: time.Hour, AbsoluteTimeout: 24 * time.Hour})
	h.do(func(c *fiber.Ctx, s *sess) error {
		now := time.Now()
		if s.Stored() {
			t.Error("a new session is Stored")
		}
		if d := s.Deadline().Sub(now); d < 23*time.Hour || d > 25*time.Hour {
			t.Errorf("new session's Deadline in %v", d)
		}
		if d := s.ExpiresAt().Sub(now); d < 59*time.Minute || d > 61*time.Minute {
			t.Errorf("new session's ExpiresAt in %v", d)
		}
		if s.IdleTimeout() != time.Hour {
			t.Errorf("IdleTimeout = %v", s.IdleTimeout())
		}
		s.Replace(map[string]string{"a": "1", "b": "2"})
		s.Replace(map[string]string{"c": "3", "b": "4"})
		return nil
	})
	h.do(func(c *fiber.Ctx, s *sess) error {
		if !s.Stored() {
			t.Error("a saved session is not Stored")
		}
		var got []string
		for k, v := range s.All() {
			got = append(got, k+"="+v)
		}
		if strings.Join(got, " ") != "b=4 c=3" {
			t.Errorf("All after Replace = %q", got)
		}
		for k := range s.All() { // stopping early is fine
			_ = k
			break
		}
		s.SetIdleTimeout(2 * time.Hour)
		return nil
	})
	h.advance(10 * time.Minute)
	h.do(func(c *fiber.Ctx, s *sess) error {
		if s.IdleTimeout() != 2*time.Hour {
			t.Errorf("IdleTimeout after SetIdleTimeout = %v", s.IdleTimeout())
		}
		want := time.UnixMilli(s.rec.written).Add(2 * time.Hour)
		if !s.ExpiresAt().Equal(want) {
			t.Errorf("ExpiresAt = %v, want the last write plus the idle timeout, %v", s.ExpiresAt(), want)
		}
		return nil
	})
	if h.m.Store() != Store(h.store) {
		t.Error("Manager.Store is not the configured store")
	}
}

// Touch extends within the touch interval, where a read would not.
func TestTouch(t *testing.T) {
	h := newHarness(t, Config[string, string]{IdleTimeout: time.Hour, TouchInterval: 10 * time.Minute})
	id := h.login("ada")
	h.advance(time.Minute)
	before := h.store.writes()
	h.do(func(c *fiber.Ctx, s *sess) error { return nil })
	if h.store.writes() != before {
		t.Fatal("a read within the touch interval wrote")
	}
	r0, _ := h.stored(id)
	h.do(func(c *fiber.Ctx, s *sess) error { s.Touch(); return nil })
	if h.store.writes() != before+1 {
		t.Fatalf("Touch wrote %d times, want once", h.store.writes()-before)
	}
	r1, _ := h.stored(id)
	if r1.written <= r0.written {
		t.Error("Touch did not move the session's last write")
	}
}

// After a failed Save, a later one returns its error without writing (the
// failed write may yet land), until Reload.
func TestSaveAfterFailedSave(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	id := h.login("ada")
	s, err := h.m.LoadID(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	s.Update("n", func(string) string { return "1" })
	h.store.fail.Store(true)
	first := s.Save()
	h.store.fail.Store(false)
	if first == nil {
		t.Fatal("Save with the store down succeeded")
	}
	before := h.store.writes()
	if err := s.Save(); err != first {
		t.Errorf("the second Save = %v, want the first's error %v", err, first)
	}
	if h.store.writes() != before {
		t.Error("a Save after a failed one wrote")
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	s.Set("n", "2")
	if err := s.Save(); err != nil {
		t.Errorf("Save after Reload = %v", err)
	}
}
