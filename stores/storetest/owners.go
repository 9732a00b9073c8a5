package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// ownerApp serves sign-in with an owner, for testOwners:
//
//	POST /signin/:user  RegenerateID(true), SetOwner(user), value "user"   200 "ok"
//	GET  /me            the value "user"
//	POST /rotate        RegenerateID(false)                                200 "ok"
//	GET  /devices       "<number of devices> current=<how many are this one>"
//	POST /others        DestroyOthers                                      200 "ended=<n>"
//	POST /logout        Destroy                                            200 "ok"
func ownerApp(t *testing.T, m *session.Manager[string, string]) *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	type sess = session.Session[string, string]
	on := func(f func(c *fiber.Ctx, s *sess) (string, error)) fiber.Handler {
		return func(c *fiber.Ctx) error {
			s, err := m.Get(c)
			if err != nil {
				return err
			}
			body, err := f(c, s)
			if err != nil {
				return err
			}
			return c.SendString(body)
		}
	}
	app.Post("/signin/:user", on(func(c *fiber.Ctx, s *sess) (string, error) {
		user := strings.Clone(c.Params("user"))
		s.RegenerateID(true)
		s.SetOwner(user)
		s.Set("user", user)
		return "ok", nil
	}))
	app.Get("/me", on(func(_ *fiber.Ctx, s *sess) (string, error) {
		u, _ := s.Get("user")
		return u, nil
	}))
	app.Post("/rotate", on(func(_ *fiber.Ctx, s *sess) (string, error) {
		s.RegenerateID(false)
		return "ok", nil
	}))
	app.Get("/devices", on(func(_ *fiber.Ctx, s *sess) (string, error) {
		ds, err := s.Devices(context.Background())
		cur := 0
		for _, d := range ds {
			if d.Current {
				cur++
			}
			if d.Created.IsZero() || d.LastSeen.Before(d.Created) || !d.Expires.After(time.Now()) {
				t.Errorf("device %+v: times out of order", d)
			}
		}
		return fmt.Sprintf("%d current=%d", len(ds), cur), err
	}))
	app.Post("/others", on(func(_ *fiber.Ctx, s *sess) (string, error) {
		n, err := s.DestroyOthers(context.Background())
		return fmt.Sprintf("ended=%d", n), err
	}))
	app.Post("/logout", on(func(_ *fiber.Ctx, s *sess) (string, error) {
		s.Destroy()
		return "ok", nil
	}))
	return app
}

// testOwners checks sign-out everywhere across browsers (cookie jars) on a
// store that is a session.OwnerIndex and a session.CompareAndSetter.
func testOwners(t *testing.T, newStore func(t *testing.T) session.Store) {
	setup := func(t *testing.T) (session.Store, session.OwnerIndex) {
		st := newStore(t)
		idx, ok := st.(session.OwnerIndex)
		if _, cas := st.(session.CompareAndSetter); !ok || !cas {
			t.Skipf("%T is not an OwnerIndex with CompareAndSet", st)
		}
		return st, idx
	}
	// Owners are random, so tests sharing a store do not meet.
	user := func(t *testing.T) string { return "u" + namespace(t) }
	ids := func(t *testing.T, idx session.OwnerIndex, owner string) []string {
		t.Helper()
		return owned(t, idx, owner)
	}

	t.Run("TwoBrowsers", func(t *testing.T) {
		st, idx := setup(t)
		m := newManager(t, session.Config[string, string]{Store: st})
		app := ownerApp(t, m)
		ada, other := user(t), user(t)
		a, b, c := NewBrowser(t, app), NewBrowser(t, app), NewBrowser(t, app)
		a.Expect("POST", "/signin/"+ada, "ok")
		b.Expect("POST", "/signin/"+ada, "ok")
		c.Expect("POST", "/signin/"+other, "ok")
		a.Expect("GET", "/devices", "2 current=1")
		b.Expect("GET", "/devices", "2 current=1")
		c.Expect("GET", "/devices", "1 current=1")

		a.Expect("POST", "/rotate", "ok") // the owner moves with the id
		a.Expect("GET", "/devices", "2 current=1")

		b.Expect("POST", "/others", "ended=1")
		a.Expect("GET", "/me", "")
		b.Expect("GET", "/me", ada)
		c.Expect("GET", "/me", other)
		if got := ids(t, idx, ada); !slices.Equal(got, []string{b.ID()}) {
			t.Errorf("after signing out the others, the index of the owner holds %q, want only %q", got, b.ID())
		}

		a.Expect("POST", "/signin/"+ada, "ok")
		n, err := m.DestroyOwner(context.Background(), ada)
		if err != nil || n != 2 {
			t.Fatalf("DestroyOwner = %d, %v; want 2 sessions ended", n, err)
		}
		a.Expect("GET", "/me", "")
		b.Expect("GET", "/me", "")
		c.Expect("GET", "/me", other)
		if got := ids(t, idx, ada); len(got) != 0 {
			t.Errorf("after DestroyOwner the owner's index holds %q", got)
		}
		if ds, err := m.Devices(context.Background(), ada); err != nil || len(ds) != 0 {
			t.Errorf("Devices after DestroyOwner = %v, %v", ds, err)
		}

		c.Expect("POST", "/logout", "ok")
		if got := ids(t, idx, other); len(got) != 0 {
			t.Errorf("after sign-out the owner's index holds %q", got)
		}
	})

	t.Run("ConcurrentSignIns", func(t *testing.T) {
		st, idx := setup(t)
		m := newManager(t, session.Config[string, string]{Store: st})
		app := ownerApp(t, m)
		ada := user(t)
		var wg sync.WaitGroup
		bs := make([]*Browser, 20)
		for i := range bs {
			bs[i] = NewBrowser(t, app)
			wg.Add(1)
			go func() {
				defer wg.Done()
				bs[i].Do("POST", "/signin/"+ada)
			}()
		}
		wg.Wait()
		for _, b := range bs {
			b.Expect("GET", "/me", ada)
		}
		if got := ids(t, idx, ada); len(got) != len(bs) {
			t.Errorf("after %d concurrent sign-ins the index holds %d ids", len(bs), len(got))
		}
		bs[0].Expect("GET", "/devices", "20 current=1")
		if n, err := m.DestroyOwner(context.Background(), ada); err != nil || n != len(bs) {
			t.Fatalf("DestroyOwner = %d, %v; want %d", n, err, len(bs))
		}
		for _, b := range bs {
			b.Expect("GET", "/me", "")
		}
	})

	// A rotation that read the session before DestroyOwner listed the
	// owner's sessions, and moved it after, is ended too.
	t.Run("RotationDuringSignOut", func(t *testing.T) {
		st, idx := setup(t)
		h := &hookedIndex{Store: st, cas: st.(session.CompareAndSetter), idx: idx}
		m := newManager(t, session.Config[string, string]{Store: h})
		app := ownerApp(t, m)
		ada := user(t)
		a := NewBrowser(t, app)
		a.Expect("POST", "/signin/"+ada, "ok")
		before := a.ID()
		h.afterOwned = func() {
			h.afterOwned = nil
			a.Expect("POST", "/rotate", "ok")
		}
		if _, err := m.DestroyOwner(context.Background(), ada); err != nil {
			t.Fatal(err)
		}
		if a.ID() == before {
			t.Fatal("the rotation did not happen")
		}
		a.Expect("GET", "/me", "")
		if got := ids(t, idx, ada); len(got) != 0 {
			t.Errorf("after DestroyOwner the owner's index holds %q", got)
		}
	})

	// Sessions that expired are pruned from the index when it is read.
	t.Run("Expired", func(t *testing.T) {
		st, idx := setup(t)
		m := newManager(t, session.Config[string, string]{Store: st, IdleTimeout: 2 * time.Second})
		app := ownerApp(t, m)
		ada := user(t)
		a, b := NewBrowser(t, app), NewBrowser(t, app)
		a.Expect("POST", "/signin/"+ada, "ok")
		expired := time.Now().Add(2 * time.Second)
		time.Sleep(time.Until(expired) + margin)
		b.Expect("POST", "/signin/"+ada, "ok")
		b.Expect("GET", "/devices", "1 current=1")
		if got := ids(t, idx, ada); !slices.Equal(got, []string{b.ID()}) {
			t.Errorf("after listing, the index holds %q, want only the live %q", got, b.ID())
		}
	})
}

// hookedIndex is a store that runs afterOwned, when set, after its Owned.
type hookedIndex struct {
	session.Store
	cas        session.CompareAndSetter
	idx        session.OwnerIndex
	afterOwned func()
}

func (h *hookedIndex) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	return h.cas.CompareAndSet(ctx, id, old, data, ttl)
}

func (h *hookedIndex) Own(ctx context.Context, owner, id string, until time.Time) error {
	return h.idx.Own(ctx, owner, id, until)
}

func (h *hookedIndex) Disown(ctx context.Context, owner string, ids ...string) error {
	return h.idx.Disown(ctx, owner, ids...)
}

func (h *hookedIndex) Owned(ctx context.Context, owner string) ([]string, error) {
	ids, err := h.idx.Owned(ctx, owner)
	if f := h.afterOwned; f != nil {
		f()
	}
	return ids, err
}
