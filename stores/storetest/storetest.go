// Package storetest is the conformance suite every session.Store runs.
//
// A store's test calls Run with a function that returns the store under test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) session.Store { return mystore.New(...) })
//	}
//
// The suite checks the session.Store contract (round trips, ErrNotFound,
// replacing, expiry, binary values, ids, contexts, concurrent use) and, when the
// store implements them, the optional capabilities session.Toucher,
// session.TTLGetter, session.CompareAndSetter and session.Closer. A capability
// the store lacks is reported as a skipped subtest.
//
// Every record the suite writes uses a fresh random 43-character id, so one
// store (or one database) may be shared between subtests and between
// concurrently running test binaries. The suite never lists or clears a store.
//
// Besides the suite, a store's tests check it through the session
// middleware with RunMiddleware (sign-in, flash, sign-out, corrupt records,
// concurrent requests), RunSeveralInstances (two apps sharing the store's
// records) and RunFaults (the server going away and coming back, through a
// Proxy); NewApp and Browser serve store-specific middleware tests.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// Options tunes the suite to a store's limits. The zero value suits a store
// that keeps time to live more precisely than a millisecond.
type Options struct {
	// TTLGranularity is how coarsely the store keeps time to live: zero for
	// stores that keep it to better than a millisecond (the memory store,
	// PostgreSQL timestamps), time.Millisecond for stores that count whole
	// milliseconds (Redis PX and PTTL, expiry columns in unix milliseconds),
	// time.Second for stores that round it to whole seconds or read a clock
	// that ticks once a second (Fiber's memory storage behind
	// session.FromStorage). The suite then accepts a record that lives
	// up to that much shorter or longer than its TTL, and uses TTLs of at least
	// one second plus that much.
	TTLGranularity time.Duration
}

// Run runs the conformance suite against the store returned by newStore. Each
// subtest calls newStore for a fresh, empty-enough store (ids are random, so
// stores may be shared).
//
// The Close subtest calls Close twice on a store from its own newStore call,
// so newStore must return a store that may be closed without breaking the
// other subtests (a new instance or client per call; release it with
// t.Cleanup, which may then close it a third time).
//
// At most one Options value may be passed; without one the zero value is used.
func Run(t *testing.T, newStore func(t *testing.T) session.Store, opts ...Options) {
	t.Helper()
	if len(opts) > 1 {
		t.Fatal("storetest.Run: at most one Options value")
	}
	s := &suite{newStore: newStore}
	if len(opts) == 1 {
		s.Options = opts[0]
	}
	if s.TTLGranularity < 0 {
		t.Fatal("storetest.Run: negative TTLGranularity")
	}

	t.Run("Basic", s.testBasic)
	t.Run("Values", s.testValues)
	t.Run("IDs", s.testIDs)
	t.Run("Expiry", s.testExpiry)
	t.Run("Touch", s.testTouch)
	t.Run("GetTTL", s.testGetTTL)
	t.Run("CompareAndSet", s.testCompareAndSet)
	t.Run("Context", s.testContext)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("Close", s.testClose)
}

type suite struct {
	Options
	newStore func(t *testing.T) session.Store
}

// margin is the slack the timing checks allow on top of TTLGranularity for
// scheduling delays.
const margin = 250 * time.Millisecond

// longTTL is the TTL of records that must not expire during the suite.
const longTTL = time.Hour

func (s *suite) store(t *testing.T) session.Store {
	t.Helper()
	st := s.newStore(t)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	return st
}

// ---------------------------------------------------------------- helpers

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newID returns a random id shaped like a real session id: 32 random bytes in
// unpadded base64url, 43 characters.
func newID(t testing.TB) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString(randBytes(t, 32))
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("crypto/rand: %v", err)
	}
	return b
}

// describe shows a value in a failure message without dumping a megabyte.
func describe(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) <= 64 {
		return fmt.Sprintf("%q (%d bytes)", b, len(b))
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
}

// sameBytes reports whether got equals want and, if not, why.
func sameBytes(got, want []byte) (bool, string) {
	if bytes.Equal(got, want) {
		return true, ""
	}
	if len(got) != len(want) {
		return false, fmt.Sprintf("got %s, want %s", describe(got), describe(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return false, fmt.Sprintf("%d-byte values differ first at byte %d: got %#x, want %#x", len(got), i, got[i], want[i])
		}
	}
	return false, "" // unreachable
}

func set(t testing.TB, st session.Store, id string, data []byte, ttl time.Duration) {
	t.Helper()
	if err := st.Set(context.Background(), id, data, ttl); err != nil {
		t.Fatalf("Set(%s): %v", id, err)
	}
}

// wantData fails t unless id holds exactly want.
func wantData(t testing.TB, st session.Store, id string, want []byte) {
	t.Helper()
	got, err := st.Get(context.Background(), id)
	if err != nil {
		t.Errorf("Get(%s): %v, want %s", id, err, describe(want))
		return
	}
	if ok, why := sameBytes(got, want); !ok {
		t.Errorf("Get(%s): %s", id, why)
	}
}

// wantNotFound fails t unless Get of id reports session.ErrNotFound.
func wantNotFound(t testing.TB, st session.Store, id string) {
	t.Helper()
	got, err := st.Get(context.Background(), id)
	if !errors.Is(err, session.ErrNotFound) {
		if err == nil {
			t.Errorf("Get(%s) = %s, want ErrNotFound", id, describe(got))
		} else {
			t.Errorf("Get(%s): error %v, want ErrNotFound", id, err)
		}
	}
}

// wantPresentUntil checks that id still holds want. The store only owes that
// while the current time is before mustLive; if the check could only finish
// after it (a slow machine), a missing record is logged, not failed.
func wantPresentUntil(t testing.TB, st session.Store, id string, want []byte, mustLive time.Time) {
	t.Helper()
	got, err := st.Get(context.Background(), id)
	done := time.Now()
	switch {
	case err == nil:
		if ok, why := sameBytes(got, want); !ok {
			t.Errorf("Get(%s): %s", id, why)
		}
	case !errors.Is(err, session.ErrNotFound):
		t.Errorf("Get(%s): %v", id, err)
	case done.Before(mustLive):
		t.Errorf("Get(%s): record expired %v early", id, mustLive.Sub(done))
	default:
		t.Logf("Get(%s): record expired, but the check finished %v after it had to be kept (slow machine); not counted", id, done.Sub(mustLive))
	}
}

func sleepUntil(tm time.Time) { time.Sleep(time.Until(tm)) }

// ------------------------------------------------------------------ Basic

func (s *suite) testBasic(t *testing.T) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		st := s.store(t)
		id, data := newID(t), []byte("round trip")
		set(t, st, id, data, longTTL)
		wantData(t, st, id, data)
		wantData(t, st, id, data) // a Get does not consume the record
	})

	t.Run("GetMissing", func(t *testing.T) {
		st := s.store(t)
		got, err := st.Get(ctx, newID(t))
		if !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get of a missing id = %s, %v; want ErrNotFound", describe(got), err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		st := s.store(t)
		id, other := newID(t), newID(t)
		set(t, st, id, []byte("doomed"), longTTL)
		set(t, st, other, []byte("bystander"), longTTL)
		if err := st.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantNotFound(t, st, id)
		wantData(t, st, other, []byte("bystander"))
		if err := st.Delete(ctx, id); err != nil {
			t.Errorf("second Delete of the same id: %v, want nil", err)
		}
	})

	t.Run("DeleteMissing", func(t *testing.T) {
		st := s.store(t)
		id := newID(t)
		if err := st.Delete(ctx, id); err != nil {
			t.Fatalf("Delete of a missing id: %v, want nil", err)
		}
		wantNotFound(t, st, id)
	})

	t.Run("SetReplaces", func(t *testing.T) {
		st := s.store(t)
		short := []byte("short")
		long := bytes.Repeat([]byte("long value "), 100)
		for _, step := range []struct {
			name string
			seq  [][]byte
		}{
			{"LongerWithShorter", [][]byte{long, short}},
			{"ShorterWithLonger", [][]byte{short, long}},
			{"SameLength", [][]byte{[]byte("aaaaa"), []byte("bbbbb")}},
		} {
			t.Run(step.name, func(t *testing.T) {
				id := newID(t)
				for _, v := range step.seq {
					set(t, st, id, v, longTTL)
				}
				wantData(t, st, id, step.seq[len(step.seq)-1])
			})
		}
	})

	t.Run("SetAfterDelete", func(t *testing.T) {
		st := s.store(t)
		id := newID(t)
		set(t, st, id, []byte("first"), longTTL)
		if err := st.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		set(t, st, id, []byte("second"), longTTL)
		wantData(t, st, id, []byte("second"))
	})
}

// ----------------------------------------------------------------- Values

func (s *suite) testValues(t *testing.T) {
	all := make([]byte, 4*256) // every byte value, NULs and invalid UTF-8 included
	for i := range all {
		all[i] = byte(i)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"OneByte", []byte{'x'}},
		{"OneZeroByte", []byte{0}},
		{"AllByteValues", all},
		{"OneMiB", randBytes(t, 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := s.store(t)
			id := newID(t)
			set(t, st, id, tc.data, longTTL)
			wantData(t, st, id, tc.data)
		})
	}
}

// -------------------------------------------------------------------- IDs

// testIDs writes 43-character ids that differ from one another in a single
// character, at the start, middle and end, taking every base64url character
// there (so also ids differing only in letter case or in '-' against '_'),
// and checks that each keeps its own record.
func (s *suite) testIDs(t *testing.T) {
	st := s.store(t)
	base := newID(t)
	if len(base) != 43 {
		t.Fatalf("id length %d, want 43", len(base))
	}
	seen := make(map[string]bool)
	var ids []string
	for _, pos := range []int{0, 21, 42} {
		for i := range len(alphabet) {
			id := base[:pos] + alphabet[i:i+1] + base[pos+1:]
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	value := func(id string) []byte { return []byte("record of " + id) }
	for _, id := range ids {
		set(t, st, id, value(id), longTTL)
	}
	for _, id := range ids {
		wantData(t, st, id, value(id))
	}
	// Deleting one leaves its neighbours alone.
	if err := st.Delete(context.Background(), ids[0]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, st, ids[0])
	for _, id := range ids[1:] {
		wantData(t, st, id, value(id))
	}
}

// ----------------------------------------------------------------- Expiry

// testExpiry runs the subtests that wait for records to expire at the same
// time, so the group takes about one TTL plus twice the granularity. They are
// started from goroutines rather than with t.Parallel, which -parallel (by
// default GOMAXPROCS) would serialise on small machines.
func (s *suite) testExpiry(t *testing.T) {
	g := s.TTLGranularity
	ttl := time.Second + g
	// A record set with ttl must be kept for ttl-g and gone after ttl+g;
	// the suite looks shortly before and after.
	extended := ttl + 2*g + time.Second // a TTL that outlives the gone check

	var wg sync.WaitGroup
	run := func(name string, f func(t *testing.T)) { wg.Go(func() { t.Run(name, f) }) }

	run("Set", func(t *testing.T) {
		st := s.store(t)
		id, data := newID(t), []byte("short-lived")
		start := time.Now()
		set(t, st, id, data, ttl)
		setEnd := time.Now()

		sleepUntil(start.Add(ttl - g - margin))
		wantPresentUntil(t, st, id, data, start.Add(ttl-g))
		if tg, ok := st.(session.TTLGetter); ok {
			before := time.Now()
			_, left, err := tg.GetTTL(context.Background(), id)
			after := time.Now()
			if err == nil {
				lo, hi := start.Add(ttl-g).Sub(after), setEnd.Add(ttl+g).Sub(before)
				if left < lo || left > hi {
					t.Errorf("GetTTL after %v of a %v TTL: %v left, want within [%v, %v]", before.Sub(start), ttl, left, lo, hi)
				}
			} else if !errors.Is(err, session.ErrNotFound) || after.Before(start.Add(ttl-g)) {
				t.Errorf("GetTTL: %v", err)
			}
		}

		sleepUntil(setEnd.Add(ttl + g + margin))
		wantNotFound(t, st, id)

		// An expired record is absent for every capability too, and
		// nothing brings it back.
		ctx := context.Background()
		if tg, ok := st.(session.TTLGetter); ok {
			if _, _, err := tg.GetTTL(ctx, id); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("GetTTL of an expired record: %v, want ErrNotFound", err)
			}
		}
		if to, ok := st.(session.Toucher); ok {
			if err := to.Touch(ctx, id, longTTL); err != nil {
				t.Errorf("Touch of an expired record: %v, want nil", err)
			}
			wantNotFound(t, st, id)
		}
		if cs, ok := st.(session.CompareAndSetter); ok {
			ok, err := cs.CompareAndSet(ctx, id, data, []byte("revived"), longTTL)
			if err != nil || ok {
				t.Errorf("CompareAndSet(old = the expired data) = %v, %v; want false, nil", ok, err)
			}
			wantNotFound(t, st, id)
			ok, err = cs.CompareAndSet(ctx, id, nil, []byte("new"), longTTL)
			if err != nil || !ok {
				t.Errorf("CompareAndSet(old = nil) on an expired record = %v, %v; want true, nil (expired is absent)", ok, err)
			}
			wantData(t, st, id, []byte("new"))
		}
	})

	run("SetReplacesTTL", func(t *testing.T) {
		st := s.store(t)
		shortened, lengthened := newID(t), newID(t)
		set(t, st, shortened, []byte("was long"), longTTL)
		set(t, st, lengthened, []byte("was short"), ttl)
		start := time.Now()
		set(t, st, shortened, []byte("now short"), ttl)
		set(t, st, lengthened, []byte("now long"), extended)
		setEnd := time.Now()

		sleepUntil(setEnd.Add(ttl + g + margin))
		wantNotFound(t, st, shortened)
		wantPresentUntil(t, st, lengthened, []byte("now long"), start.Add(extended-g))
	})

	run("Touch", func(t *testing.T) {
		st := s.store(t)
		to, ok := st.(session.Toucher)
		if !ok {
			t.Skip("store does not implement session.Toucher")
		}
		id, data := newID(t), []byte("touched")
		start := time.Now()
		set(t, st, id, data, ttl)
		setEnd := time.Now()

		sleepUntil(start.Add(ttl - g - margin))
		touchStart := time.Now()
		if err := to.Touch(context.Background(), id, extended); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		if touchStart.After(start.Add(ttl - g)) {
			t.Skip("slow machine: the record may have expired before Touch")
		}

		sleepUntil(setEnd.Add(ttl + g + margin))
		wantPresentUntil(t, st, id, data, touchStart.Add(extended-g))
	})

	run("CompareAndSet", func(t *testing.T) {
		st := s.store(t)
		cs, ok := st.(session.CompareAndSetter)
		if !ok {
			t.Skip("store does not implement session.CompareAndSetter")
		}
		ctx := context.Background()
		created, replaced := newID(t), newID(t)
		set(t, st, replaced, []byte("old"), longTTL)
		if ok, err := cs.CompareAndSet(ctx, created, nil, []byte("created"), ttl); err != nil || !ok {
			t.Fatalf("CompareAndSet(old = nil) = %v, %v; want true, nil", ok, err)
		}
		if ok, err := cs.CompareAndSet(ctx, replaced, []byte("old"), []byte("replaced"), ttl); err != nil || !ok {
			t.Fatalf("CompareAndSet(old = current) = %v, %v; want true, nil", ok, err)
		}
		setEnd := time.Now()

		sleepUntil(setEnd.Add(ttl + g + margin))
		wantNotFound(t, st, created)
		wantNotFound(t, st, replaced)
	})
	wg.Wait()
}

// ------------------------------------------------------------------ Touch

func (s *suite) testTouch(t *testing.T) {
	ctx := context.Background()

	t.Run("Missing", func(t *testing.T) {
		st := s.store(t)
		to, ok := st.(session.Toucher)
		if !ok {
			t.Skip("store does not implement session.Toucher")
		}
		id := newID(t)
		if err := to.Touch(ctx, id, longTTL); err != nil {
			t.Errorf("Touch of a missing id: %v, want nil", err)
		}
		wantNotFound(t, st, id)
	})

	t.Run("KeepsData", func(t *testing.T) {
		st := s.store(t)
		to, ok := st.(session.Toucher)
		if !ok {
			t.Skip("store does not implement session.Toucher")
		}
		id, data := newID(t), []byte("unchanged by Touch")
		set(t, st, id, data, time.Minute)
		if err := to.Touch(ctx, id, longTTL); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		wantData(t, st, id, data)
	})

	// Without sleeping: a store that also reports TTLs must show the new one.
	t.Run("ExtendsTTL", func(t *testing.T) {
		st := s.store(t)
		to, ok := st.(session.Toucher)
		if !ok {
			t.Skip("store does not implement session.Toucher")
		}
		tg, ok := st.(session.TTLGetter)
		if !ok {
			t.Skip("store does not implement session.TTLGetter; Expiry/Touch covers Touch")
		}
		id := newID(t)
		set(t, st, id, []byte("x"), time.Minute)
		start := time.Now()
		if err := to.Touch(ctx, id, longTTL); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		_, left, err := tg.GetTTL(ctx, id)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("GetTTL: %v", err)
		}
		if lo, hi := longTTL-s.TTLGranularity-elapsed, longTTL+s.TTLGranularity; left < lo || left > hi {
			t.Errorf("after Touch(%v) of a record set for 1m, GetTTL reports %v left; want within [%v, %v]", longTTL, left, lo, hi)
		}
	})
}

// ----------------------------------------------------------------- GetTTL

func (s *suite) testGetTTL(t *testing.T) {
	ctx := context.Background()
	st := s.store(t)
	tg, ok := st.(session.TTLGetter)
	if !ok {
		t.Skip("store does not implement session.TTLGetter")
	}
	g := s.TTLGranularity

	t.Run("Present", func(t *testing.T) {
		for _, ttl := range []time.Duration{time.Minute, longTTL, 30 * 24 * time.Hour} {
			t.Run(ttl.String(), func(t *testing.T) {
				id, data := newID(t), []byte("with ttl "+ttl.String())
				start := time.Now()
				set(t, st, id, data, ttl)
				got, left, err := tg.GetTTL(ctx, id)
				elapsed := time.Since(start)
				if err != nil {
					t.Fatalf("GetTTL: %v", err)
				}
				if ok, why := sameBytes(got, data); !ok {
					t.Errorf("GetTTL data: %s", why)
				}
				if left <= 0 || left > ttl+g || left < ttl-g-elapsed {
					t.Errorf("GetTTL of a record set for %v reports %v left; want within (0, %v] and at least %v", ttl, left, ttl+g, ttl-g-elapsed)
				}
			})
		}
	})

	t.Run("Missing", func(t *testing.T) {
		got, left, err := tg.GetTTL(ctx, newID(t))
		if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetTTL of a missing id = %s, %v, %v; want ErrNotFound", describe(got), left, err)
		}
	})
}

// ---------------------------------------------------------- CompareAndSet

func (s *suite) testCompareAndSet(t *testing.T) {
	ctx := context.Background()
	st := s.store(t)
	cs, ok := st.(session.CompareAndSetter)
	if !ok {
		t.Skip("store does not implement session.CompareAndSetter")
	}
	cas := func(t *testing.T, id string, old, data []byte, want bool) {
		t.Helper()
		ok, err := cs.CompareAndSet(ctx, id, old, data, longTTL)
		if err != nil {
			t.Fatalf("CompareAndSet(old = %s, data = %s): %v", describe(old), describe(data), err)
		}
		if ok != want {
			t.Errorf("CompareAndSet(old = %s, data = %s) = %v, want %v", describe(old), describe(data), ok, want)
		}
	}

	t.Run("NilOldCreates", func(t *testing.T) {
		id := newID(t)
		cas(t, id, nil, []byte("created"), true)
		wantData(t, st, id, []byte("created"))
	})

	t.Run("NilOldOnlyCreates", func(t *testing.T) {
		id := newID(t)
		set(t, st, id, []byte("existing"), longTTL)
		cas(t, id, nil, []byte("overwrite"), false)
		wantData(t, st, id, []byte("existing"))
	})

	t.Run("WrongOld", func(t *testing.T) {
		cur := []byte("current value")
		for _, tc := range []struct {
			name string
			old  []byte
		}{
			{"Different", []byte("something else")},
			{"Prefix", cur[:len(cur)-1]},
			{"Extended", append(bytes.Clone(cur), 'x')},
			{"Empty", []byte{}},
			{"CaseDiffers", []byte("Current value")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := newID(t)
				set(t, st, id, cur, longTTL)
				cas(t, id, tc.old, []byte("must not be written"), false)
				wantData(t, st, id, cur)
			})
		}
	})

	t.Run("RightOld", func(t *testing.T) {
		id := newID(t)
		set(t, st, id, []byte("v1"), longTTL)
		cas(t, id, []byte("v1"), []byte("v2"), true)
		wantData(t, st, id, []byte("v2"))
		cas(t, id, []byte("v1"), []byte("v3"), false) // v1 is stale now
		wantData(t, st, id, []byte("v2"))
		cas(t, id, []byte("v2"), []byte("v3"), true)
		wantData(t, st, id, []byte("v3"))
	})

	t.Run("RightOldLarge", func(t *testing.T) {
		id := newID(t)
		v1, v2 := randBytes(t, 256<<10), randBytes(t, 256<<10)
		set(t, st, id, v1, longTTL)
		almost := bytes.Clone(v1)
		almost[len(almost)-1] ^= 1
		cas(t, id, almost, v2, false)
		wantData(t, st, id, v1)
		cas(t, id, v1, v2, true)
		wantData(t, st, id, v2)
	})

	t.Run("OldOnMissing", func(t *testing.T) {
		id := newID(t)
		cas(t, id, []byte("anything"), []byte("must not be written"), false)
		wantNotFound(t, st, id)
	})

	// A deleted (destroyed) record is not written back by a slower writer
	// that still holds its old value.
	t.Run("OldAfterDelete", func(t *testing.T) {
		id := newID(t)
		set(t, st, id, []byte("v1"), longTTL)
		if err := st.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		cas(t, id, []byte("v1"), []byte("v2"), false)
		wantNotFound(t, st, id)
	})

	// Goroutines each append their own byte with read → compare-and-set
	// retry loops; no increment may be lost.
	t.Run("Contention", func(t *testing.T) {
		const workers, increments, maxAttempts = 8, 25, 100000
		id := newID(t)
		set(t, st, id, []byte("#"), longTTL)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				mark := byte('a' + w)
				for range increments {
					for attempt := 0; ; attempt++ {
						if attempt == maxAttempts {
							t.Errorf("worker %d: no successful CompareAndSet in %d attempts", w, maxAttempts)
							return
						}
						cur, err := st.Get(ctx, id)
						if err != nil {
							t.Errorf("worker %d: Get: %v", w, err)
							return
						}
						next := make([]byte, len(cur)+1) // never append to the store's slice
						copy(next, cur)
						next[len(cur)] = mark
						ok, err := cs.CompareAndSet(ctx, id, cur, next, longTTL)
						if err != nil {
							t.Errorf("worker %d: CompareAndSet: %v", w, err)
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
			t.Fatalf("Get: %v", err)
		}
		if len(got) != 1+workers*increments {
			t.Errorf("record has %d increments, want %d (lost updates)", len(got)-1, workers*increments)
		}
		for w := range workers {
			if n := bytes.Count(got, []byte{byte('a' + w)}); n != increments {
				t.Errorf("worker %d: %d of its %d increments in the record", w, n, increments)
			}
		}
	})
}

// ---------------------------------------------------------------- Context

func (s *suite) testContext(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"Canceled", canceled},
		{"DeadlineExceeded", expired},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := s.store(t)
			ctx := c.ctx
			want := ctx.Err()
			// check fails t unless err reports ctx's error.
			check := func(t *testing.T, op string, err error) {
				t.Helper()
				switch {
				case err == nil:
					t.Errorf("%s with a done context: nil error", op)
				case errors.Is(err, session.ErrNotFound):
					t.Errorf("%s with a done context: %v; must not look like a missing record", op, err)
				case !errors.Is(err, want):
					t.Errorf("%s with a done context: %v; want an error wrapping %v", op, err, want)
				}
			}
			data := []byte("existing")
			existing := func(t *testing.T) string {
				id := newID(t)
				set(t, st, id, data, time.Minute)
				return id
			}

			t.Run("Get", func(t *testing.T) {
				got, err := st.Get(ctx, existing(t))
				check(t, "Get", err)
				if got != nil {
					t.Errorf("Get with a done context returned data %s", describe(got))
				}
			})
			t.Run("SetNew", func(t *testing.T) {
				id := newID(t)
				check(t, "Set", st.Set(ctx, id, []byte("must not be written"), time.Minute))
				wantNotFound(t, st, id)
			})
			t.Run("SetExisting", func(t *testing.T) {
				id := existing(t)
				check(t, "Set", st.Set(ctx, id, []byte("must not be written"), time.Minute))
				wantData(t, st, id, data)
			})
			t.Run("Delete", func(t *testing.T) {
				id := existing(t)
				check(t, "Delete", st.Delete(ctx, id))
				wantData(t, st, id, data)
			})
			t.Run("Touch", func(t *testing.T) {
				to, ok := st.(session.Toucher)
				if !ok {
					t.Skip("store does not implement session.Toucher")
				}
				id := existing(t)
				check(t, "Touch", to.Touch(ctx, id, longTTL))
				wantData(t, st, id, data)
				if tg, ok := st.(session.TTLGetter); ok {
					if _, left, err := tg.GetTTL(context.Background(), id); err == nil && left > time.Minute+s.TTLGranularity {
						t.Errorf("Touch with a done context extended the TTL to %v", left)
					}
				}
			})
			t.Run("GetTTL", func(t *testing.T) {
				tg, ok := st.(session.TTLGetter)
				if !ok {
					t.Skip("store does not implement session.TTLGetter")
				}
				got, _, err := tg.GetTTL(ctx, existing(t))
				check(t, "GetTTL", err)
				if got != nil {
					t.Errorf("GetTTL with a done context returned data %s", describe(got))
				}
			})
			t.Run("CompareAndSet", func(t *testing.T) {
				cs, ok := st.(session.CompareAndSetter)
				if !ok {
					t.Skip("store does not implement session.CompareAndSetter")
				}
				id := existing(t)
				ok, err := cs.CompareAndSet(ctx, id, data, []byte("must not be written"), time.Minute)
				check(t, "CompareAndSet", err)
				if ok {
					t.Error("CompareAndSet with a done context reported a write")
				}
				wantData(t, st, id, data)

				id = newID(t)
				ok, err = cs.CompareAndSet(ctx, id, nil, []byte("must not be written"), time.Minute)
				check(t, "CompareAndSet(old = nil)", err)
				if ok {
					t.Error("CompareAndSet(old = nil) with a done context reported a write")
				}
				wantNotFound(t, st, id)
			})
		})
	}
}

// ------------------------------------------------------------- Concurrent

func (s *suite) testConcurrent(t *testing.T) {
	ctx := context.Background()

	// Many goroutines each run the whole life of their own records.
	t.Run("DistinctIDs", func(t *testing.T) {
		st := s.store(t)
		to, _ := st.(session.Toucher)
		tg, _ := st.(session.TTLGetter)
		cs, _ := st.(session.CompareAndSetter)
		const workers, rounds = 16, 20
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					id := newID(t)
					v1 := fmt.Appendf(nil, "worker %d round %d v1", w, r)
					v2 := fmt.Appendf(nil, "worker %d round %d v2", w, r)
					if err := st.Set(ctx, id, v1, time.Minute); err != nil {
						t.Errorf("Set: %v", err)
						return
					}
					wantData(t, st, id, v1)
					if cs != nil {
						if ok, err := cs.CompareAndSet(ctx, id, v1, v2, time.Minute); err != nil || !ok {
							t.Errorf("CompareAndSet = %v, %v; want true, nil", ok, err)
						}
					} else if err := st.Set(ctx, id, v2, time.Minute); err != nil {
						t.Errorf("Set: %v", err)
					}
					if to != nil {
						if err := to.Touch(ctx, id, longTTL); err != nil {
							t.Errorf("Touch: %v", err)
						}
					}
					if tg != nil {
						got, _, err := tg.GetTTL(ctx, id)
						if ok, why := sameBytes(got, v2); err != nil || !ok {
							t.Errorf("GetTTL: %v %s", err, why)
						}
					} else {
						wantData(t, st, id, v2)
					}
					if err := st.Delete(ctx, id); err != nil {
						t.Errorf("Delete: %v", err)
					}
					wantNotFound(t, st, id)
				}
			})
		}
		wg.Wait()
	})

	// Writers replace one record with whole values of different lengths,
	// a deleter removes it now and then, and readers must only ever see a
	// whole value or ErrNotFound.
	t.Run("SharedID", func(t *testing.T) {
		st := s.store(t)
		const writers, readers, rounds = 4, 4, 50
		id := newID(t)
		value := func(w int) []byte { return bytes.Repeat([]byte{byte('A' + w)}, 1+w*4096) }
		valid := func(b []byte) bool {
			if len(b) == 0 || b[0] < 'A' || int(b[0]-'A') >= writers {
				return false
			}
			return bytes.Equal(b, value(int(b[0]-'A')))
		}
		set(t, st, id, value(0), time.Minute)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for range rounds {
					if err := st.Set(ctx, id, value(w), time.Minute); err != nil {
						t.Errorf("Set: %v", err)
						return
					}
				}
			})
		}
		wg.Go(func() {
			for range rounds / 5 {
				if err := st.Delete(ctx, id); err != nil {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		})
		for range readers {
			wg.Go(func() {
				for range rounds {
					got, err := st.Get(ctx, id)
					if errors.Is(err, session.ErrNotFound) {
						continue
					}
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					if !valid(got) {
						t.Errorf("Get returned a value no writer wrote: %s", describe(got))
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// ------------------------------------------------------------------ Close

// testClose closes a store of its own twice: the first Close must succeed,
// the second must return (with any error) without panicking or blocking.
func (s *suite) testClose(t *testing.T) {
	st := s.store(t)
	c, ok := st.(session.Closer)
	if !ok {
		t.Skip("store does not implement session.Closer")
	}
	type result struct {
		err      error
		panicked any
	}
	for i := 1; i <= 2; i++ {
		done := make(chan result, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- result{panicked: r}
				}
			}()
			done <- result{err: c.Close()}
		}()
		select {
		case r := <-done:
			switch {
			case r.panicked != nil:
				t.Fatalf("Close #%d panicked: %v", i, r.panicked)
			case i == 1 && r.err != nil:
				t.Fatalf("Close: %v", r.err)
			case r.err != nil:
				t.Logf("second Close: %v (allowed)", r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Close #%d did not return within 5s (a second Close must not block)", i)
		}
	}
}
