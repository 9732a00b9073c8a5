package storetest

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// MiddlewareOptions adds store-specific checks to RunMiddleware.
type MiddlewareOptions struct {
	// Stored, when set, reports whether the server holds a record for id,
	// looked up around the store (a row, a key). RunMiddleware checks it
	// as well as the store's Get wherever a record must be kept or be gone.
	Stored func(t *testing.T, id string) bool

	// Corrupt adds, by name, ways to spoil the record under id from around
	// the store (bytes the store never writes) to the CorruptRecord
	// subtest's own, which write through the store's Set.
	Corrupt map[string]func(t *testing.T, id string)
}

// RunMiddleware runs the session middleware (NewApp) over stores from
// newStore, one a subtest, and checks what a user of the store sees:
//
//   - SignInFlashSignOut: an unchanged new session sets no cookie; a
//     changed one is stored; sign-in with RegenerateID(true) moves the
//     values to a new id and deletes the old record; the flash is shown in
//     the next request only; sign-out with Destroy deletes the record and
//     either expires the cookie or, with a flash, starts a new session
//     that shows it once; a copy of the signed-in cookie is worthless.
//   - CorruptRecord: bytes that are no session record under a live
//     session's id give a fresh session under a new id, with 200.
//   - Races: two requests of one session, the one that read it first held
//     at a gate inside its handler while the other finishes: a sign-out is
//     never undone by a slower write or rotation; a change saved before a
//     rotation's save moves with the session; a rotation or write that
//     read the session before another request rotated it is dropped, and
//     sends no cookie; the grace copy is read-only.
//   - Contention: 100 concurrent requests of one session, through one app
//     and through two over the same store: every one answers 200, each
//     key set persists, and 100 increments with Update add 100.
//   - Owners: browsers signed in as one owner (SetOwner) list each other
//     as devices, also after a rotation; one signs the others out; then
//     DestroyOwner signs out all of them, and not another owner's; 20
//     concurrent sign-ins are all indexed and all ended; a rotation racing
//     DestroyOwner is ended too; sign-out, DestroyOwner and listing leave no
//     dead entries in the index.
//
// Races and Contention need session.CompareAndSetter, and Owners also
// session.OwnerIndex; without them they are skipped.
//
// At most one MiddlewareOptions value may be passed.
func RunMiddleware(t *testing.T, newStore func(t *testing.T) session.Store, opts ...MiddlewareOptions) {
	t.Helper()
	if len(opts) > 1 {
		t.Fatal("storetest.RunMiddleware: at most one MiddlewareOptions value")
	}
	var o MiddlewareOptions
	if len(opts) == 1 {
		o = opts[0]
	}
	t.Run("SignInFlashSignOut", func(t *testing.T) { testSignInFlashSignOut(t, newStore, o) })
	t.Run("CorruptRecord", func(t *testing.T) { testCorruptRecord(t, newStore, o) })
	t.Run("Races", func(t *testing.T) { testRaces(t, newStore, o) })
	t.Run("Contention", func(t *testing.T) { testContention(t, newStore) })
	t.Run("Owners", func(t *testing.T) { testOwners(t, newStore) })
}

// wantStored fails t unless the record of id is there (stored) or is gone
// (!stored), through the store and, when given, through o.Stored.
func (o MiddlewareOptions) wantStored(t *testing.T, st session.Store, id string, stored bool) {
	t.Helper()
	wantRecord(t, st, id, stored)
	if o.Stored != nil && o.Stored(t, id) != stored {
		t.Errorf("the server holds a record for %s: %v, want %v", id, !stored, stored)
	}
}

// wantRecord fails t unless st.Get finds the record of id (stored) or
// reports session.ErrNotFound (!stored).
func wantRecord(t *testing.T, st session.Store, id string, stored bool) {
	t.Helper()
	_, err := st.Get(ctx, id)
	switch {
	case stored && err != nil:
		t.Errorf("Get(%s): %v, want the session's record", id, err)
	case !stored && !errors.Is(err, session.ErrNotFound):
		t.Errorf("Get(%s): %v, want ErrNotFound", id, err)
	}
}

// testSignInFlashSignOut walks one browser from a new session through
// sign-in, the flash and sign-out, once for each way of signing out.
func testSignInFlashSignOut(t *testing.T, newStore func(t *testing.T) session.Store, o MiddlewareOptions) {
	for _, tc := range []struct {
		name, path, flash string
	}{
		{"WithFlash", "/logout", "Signed out"},
		{"Destroy", "/destroy", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			b := NewBrowser(t, NewApp(t, session.Config[string, string]{Store: st}))
			b.Expect("GET", "/", "user= flash=")
			if b.Cookie() != "" {
				t.Fatal("an unchanged new session set a cookie")
			}
			b.Expect("POST", "/visit", "1")
			anon := b.ID()
			if anon == "" {
				t.Fatal("a changed new session set no cookie")
			}
			o.wantStored(t, st, anon, true)

			b.Expect("POST", "/login", "ok")
			signedIn, id := b.Cookie(), b.ID()
			if id == "" || id == anon {
				t.Fatalf("sign-in kept the id %q (before: %q)", id, anon)
			}
			o.wantStored(t, st, id, true)
			o.wantStored(t, st, anon, false) // RegenerateID(true)
			b.Expect("GET", "/", "user=ada flash=Welcome back")
			b.Expect("GET", "/", "user=ada flash=") // the flash was consumed
			b.Expect("POST", "/visit", "2")         // the values moved to the new id

			b.Expect("POST", tc.path, "ok")
			o.wantStored(t, st, id, false)
			if tc.flash == "" {
				if b.Cookie() != "" {
					t.Errorf("Destroy left the cookie %q, want it expired", b.Cookie())
				}
			} else {
				if next := b.ID(); next == "" || next == id {
					t.Fatalf("the flash after Destroy is under the id %q, want a new one", next)
				}
				b.Expect("GET", "/", "user= flash="+tc.flash)
				b.Expect("GET", "/", "user= flash=")
			}
			b.SetCookie(signedIn) // a stolen copy of the signed-in cookie
			b.Expect("GET", "/", "user= flash=")
		})
	}
}

// testCorruptRecord spoils a signed-in session's record in each way and
// expects a fresh session that works.
func testCorruptRecord(t *testing.T, newStore func(t *testing.T) session.Store, o MiddlewareOptions) {
	set := func(data string) func(t *testing.T, st session.Store, id string) {
		return func(t *testing.T, st session.Store, id string) {
			t.Helper()
			if err := st.Set(ctx, id, []byte(data), time.Hour); err != nil {
				t.Fatalf("Set: %v", err)
			}
		}
	}
	corrupt := map[string]func(t *testing.T, st session.Store, id string){
		"Garbage":  set("\x00\xffnot a session record"),
		"Empty":    set(""),
		"ZeroByte": set("\x00"),
		"AllOnes":  set(strings.Repeat("\xff", 100)),
		"Truncated": func(t *testing.T, st session.Store, id string) { // the real record cut in half
			data, err := st.Get(ctx, id)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			set(string(data[:len(data)/2]))(t, st, id)
		},
	}
	for name, f := range o.Corrupt {
		if corrupt[name] != nil {
			t.Fatalf("MiddlewareOptions.Corrupt: %q is a built-in case", name)
		}
		corrupt[name] = func(t *testing.T, _ session.Store, id string) { f(t, id) }
	}
	for _, name := range slices.Sorted(maps.Keys(corrupt)) {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			b := NewBrowser(t, NewApp(t, session.Config[string, string]{Store: st}))
			b.Expect("POST", "/login", "ok")
			id := b.ID()
			o.wantStored(t, st, id, true)
			corrupt[name](t, st, id)
			b.Expect("GET", "/", "user= flash=") // a fresh session, not an error
			b.Expect("POST", "/visit", "1")
			if b.ID() == id {
				t.Error("the fresh session reused the id of the corrupt record")
			}
			b.Expect("POST", "/login", "ok") // and works as usual
			b.Expect("GET", "/", "user=ada flash=Welcome back")
		})
	}
}
