package session

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/session"
)

func TestRecordOwnerRoundTrip(t *testing.T) {
	for _, csrf := range []bool{false, true} {
		r := record[string, string]{created: 1, deadline: 2, written: 3, version: 4, owner: "user-42", device: device("Firefox", "192.0.2.1")}
		if csrf {
			r.csrf = bytes.Repeat([]byte{7}, csrfLen)
		}
		r.vals = put(r.vals, entry[string]{key: "k", raw: []byte(`"v"`)})
		data, err := encodeRecord(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		if data[1]&flagOwner == 0 {
			t.Fatal("an owned record has no flagOwner")
		}
		var got record[string, string]
		if err := decodeRecord(data, &got); err != nil {
			t.Fatal(err)
		}
		agent, ip := got.agentIP()
		if got.owner != r.owner || agent != "Firefox" || ip != "192.0.2.1" || len(got.vals) != 1 || (got.csrf != nil) != csrf {
			t.Errorf("round trip: %+v", got)
		}
		// A grace copy keeps the owner, so DestroyOwner finds it.
		var gc record[string, string]
		if err := decodeRecord(graceCopy(data, 10), &gc); err != nil || gc.owner != r.owner || !gc.moved() {
			t.Errorf("grace copy: owner %q moved %v, %v", gc.owner, gc.moved(), err)
		}
	}
	// Without an owner the record is what earlier releases wrote.
	r := record[string, string]{created: 1, deadline: 2}
	data, _ := encodeRecord(nil, &r)
	if data[1] != 0 {
		t.Errorf("an unowned record's flags = %#x", data[1])
	}
	// flagOwner with an empty owner is malformed.
	bad := append([]byte{recordVersion, flagOwner, 1, 2, 0, 3, 4}, 0, 0, 0, 0, 0)
	if err := decodeRecord(bad, &r); err == nil {
		t.Error("a record with flagOwner and an empty owner decoded")
	}
}

func TestSetOwner(t *testing.T) {
	h := newHarness(t, Config[string, string]{Devices: true})
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.SetOwner(strings.Repeat("x", 257)) // refused
		if s.Owner() != "" || s.Dirty() {
			t.Error("an owner longer than 256 bytes was taken")
		}
		s.RegenerateID(true)
		s.SetOwner("ada")
		s.Set("user", "ada")
		return nil
	})
	id := h.id()
	r, ok := h.stored(id)
	if agent, ip := r.agentIP(); !ok || r.owner != "ada" || agent != "" || ip != "0.0.0.0" { // app.Test sends no User-Agent, from 0.0.0.0
		t.Fatalf("stored: %v owner %q agent %q ip %q", ok, r.owner, agent, ip)
	}
	if ids, _ := h.store.Owned(bg, "ada"); len(ids) != 1 || ids[0] != id {
		t.Fatalf("the index of ada holds %q, want %q", ids, id)
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		if s.Owner() != "ada" {
			t.Errorf("Owner = %q", s.Owner())
		}
		s.RegenerateID(true) // the owner moves with the id
		return nil
	})
	if r, _ := h.stored(h.id()); r.owner != "ada" {
		t.Errorf("after a rotation the owner is %q", r.owner)
	}
	if ids, _ := h.store.Owned(bg, "ada"); len(ids) != 1 || ids[0] != h.id() {
		t.Errorf("after a rotation with deleteOld the index holds %q, want only %q", ids, h.id())
	}
	ds, err := h.m.Devices(bg, "ada")
	if err != nil || len(ds) != 1 || ds[0].IP != "0.0.0.0" || ds[0].Current {
		t.Fatalf("Devices = %+v, %v", ds, err)
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.SetOwner("") // untied: DestroyOwner no longer reaches it
		return nil
	})
	if n, err := h.m.DestroyOwner(bg, "ada"); err != nil || n != 0 {
		t.Errorf("DestroyOwner after SetOwner(\"\") = %d, %v", n, err)
	}
	if _, ok := h.stored(h.id()); !ok {
		t.Error("DestroyOwner ended a session no longer owned")
	}
}

// Without Config.Devices, neither user agent nor IP is kept.
func TestDevicesOptIn(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	h.do(func(c *fiber.Ctx, s *sess) error { s.SetOwner("ada"); s.Set("u", "ada"); return nil })
	r, _ := h.stored(h.id())
	if r.owner != "ada" || r.device != "" {
		t.Errorf("without Devices: owner %q device %q", r.owner, r.device)
	}
}

func TestOwnerUnsupported(t *testing.T) {
	st := FromStorage(session.New().Storage, "s:") // Fiber's memory storage
	m, err := NewManager(Config[string, string]{Store: st, Secrets: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.DestroyOwner(bg, "ada"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("DestroyOwner = %v", err)
	}
	if _, err := m.Devices(bg, "ada"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Devices = %v", err)
	}
	if _, err := m.Count(bg); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Count = %v", err)
	}
	if err := m.Clear(bg); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Clear = %v", err)
	}
	if err := m.Sessions(bg, func(Info) error { return nil }); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Sessions = %v", err)
	}
	// An owned session on such a store still works: it is just not indexed.
	app := fiber.New()
	app.Use(m.Handler())
	app.Get("/", func(c *fiber.Ctx) error {
		s, _ := m.Get(c)
		s.SetOwner("ada")
		s.Set("u", "ada")
		return nil
	})
	if resp, err := app.Test(httptest.NewRequest("GET", "/", nil)); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestSessionsCountClear(t *testing.T) {
	h := newHarness(t, Config[string, string]{IdleTimeout: time.Hour})
	var ids []string
	for i := 0; i < 5; i++ {
		h.jar, _ = newJar()
		h.do(func(c *fiber.Ctx, s *sess) error { s.SetOwner("ada"); s.Set("i", "x"); return nil })
		ids = append(ids, h.id())
	}
	h.do(func(c *fiber.Ctx, s *sess) error { s.RegenerateID(false); return nil }) // leaves a grace copy
	ids[4] = h.id()
	if n, err := h.m.Count(bg); err != nil || n != 6 {
		t.Errorf("Count = %d, %v; want 6 records (a grace copy among them)", n, err)
	}
	seen := map[string]bool{}
	err := h.m.Sessions(bg, func(in Info) error {
		seen[in.ID] = true
		if in.Owner != "ada" || in.Size == 0 || in.Created.IsZero() || !in.Expires.After(time.Now()) || in.Expires.Sub(in.LastSeen) != time.Hour {
			t.Errorf("Info %+v", in)
		}
		return nil
	})
	if err != nil || len(seen) != 5 {
		t.Fatalf("Sessions reported %d sessions (%v), want the 5 live ones without the grace copy", len(seen), err)
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("Sessions did not report %s", id)
		}
	}
	if err := h.m.Clear(bg); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.m.Count(bg); n != 0 {
		t.Errorf("Count after Clear = %d", n)
	}
	if ids, _ := h.store.Owned(bg, "ada"); len(ids) != 0 {
		t.Errorf("the owner index after Clear holds %q", ids)
	}
}

func TestEvents(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	ops := map[string]int{}
	h := newHarness(t, Config[string, string]{OnEvent: func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		got[e.Kind.String()]++
		if e.Kind == EventStoreCall {
			ops[e.Op]++
			if e.Duration <= 0 {
				t.Errorf("store call %s took %v", e.Op, e.Duration)
			}
		}
		if e.Kind == EventOwnerSignedOut && (e.Owner != "ada" || e.Count != 1) {
			t.Errorf("owner signed out: %+v", e)
		}
	}})
	h.login("x")                                                                                    // created
	h.do(func(c *fiber.Ctx, s *sess) error { s.RegenerateID(true); s.SetOwner("ada"); return nil }) // rotated
	if _, err := h.m.DestroyOwner(bg, "ada"); err != nil {                                          // owner_signed_out
		t.Fatal(err)
	}
	h.login("y")
	h.do(func(c *fiber.Ctx, s *sess) error { s.Destroy(); return nil }) // destroyed
	h.login("z")
	if err := h.store.Set(bg, h.id(), []byte("garbage"), time.Hour); err != nil {
		t.Fatal(err)
	}
	h.do(func(c *fiber.Ctx, s *sess) error { s.Get("user"); return nil }) // decode_failed
	h.store.fail.Store(true)
	h.do(func(c *fiber.Ctx, s *sess) error { s.Get("user"); return nil }) // store_error
	h.store.fail.Store(false)

	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"created": 3, "rotated": 1, "owner_signed_out": 1, "destroyed": 1, "decode_failed": 1, "store_error": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s events, want %d (all: %v)", got[k], k, n, got)
		}
	}
	if ops["get"] == 0 || ops["cas"] == 0 || ops["delete"] == 0 {
		t.Errorf("store calls by op: %v", ops)
	}
	if EventKind(0).String() != "" || EventKind(200).String() != "unknown" {
		t.Error("String of kinds out of range")
	}
}

// DestroyOwner honours its context.
func TestDestroyOwnerContext(t *testing.T) {
	h := newHarness(t, Config[string, string]{StoreTimeout: time.Second})
	h.do(func(c *fiber.Ctx, s *sess) error { s.SetOwner("ada"); s.Set("u", "x"); return nil })
	h.store.fail.Store(true)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := h.m.DestroyOwner(ctx, "ada"); err == nil {
		t.Error("DestroyOwner with a failing store succeeded")
	}
}

// With Config.Devices, the user agent (its first 256 bytes) and the IP of
// an owned session's latest write are kept, and a write from another
// browser of the same session updates them.
func TestDevicesUserAgent(t *testing.T) {
	h := newHarness(t, Config[string, string]{Devices: true})
	send := func(ua string) {
		h.mu.Lock()
		h.fn["dev"] = func(c *fiber.Ctx, s *sess) error { s.SetOwner("ada"); s.Set("ua", ua); return nil }
		h.mu.Unlock()
		req := httptest.NewRequest("POST", "/run/dev", nil)
		req.Header.Set("User-Agent", ua)
		for _, c := range h.jar.Cookies(site) {
			req.AddCookie(c)
		}
		resp, err := h.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		h.jar.SetCookies(site, resp.Cookies())
	}
	long := strings.Repeat("x", 300)
	send(long)
	ds, err := h.m.Devices(bg, "ada")
	if err != nil || len(ds) != 1 || ds[0].UserAgent != long[:256] || ds[0].IP != "0.0.0.0" {
		t.Fatalf("Devices = %+v, %v; want the first 256 bytes of the user agent", ds, err)
	}
	send("Firefox")
	if ds, _ := h.m.Devices(bg, "ada"); len(ds) != 1 || ds[0].UserAgent != "Firefox" {
		t.Errorf("after a write from another user agent, Devices = %+v", ds)
	}
}

// DestroyOthers in the request that rotates the session, before its save,
// keeps this session (under the id it moves from and the new one).
func TestDestroyOthersWhileRotating(t *testing.T) {
	h := newHarness(t, Config[string, string]{})
	signIn := func(s *sess) { s.RegenerateID(true); s.SetOwner("ada"); s.Set("user", "ada") }
	h.do(func(c *fiber.Ctx, s *sess) error { signIn(s); return nil })
	other := h.id()
	h.jar, _ = newJar()
	h.do(func(c *fiber.Ctx, s *sess) error { signIn(s); return nil })
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.RegenerateID(true)
		n, err := s.DestroyOthers(c.UserContext())
		if err != nil || n != 1 {
			t.Errorf("DestroyOthers = %d, %v; want the other browser's session", n, err)
		}
		return nil
	})
	if _, ok := h.stored(other); ok {
		t.Error("the other browser's session survived")
	}
	h.do(func(c *fiber.Ctx, s *sess) error {
		if u, _ := s.Get("user"); u != "ada" {
			t.Errorf("this session after DestroyOthers during its rotation: user %q", u)
		}
		return nil
	})
}
