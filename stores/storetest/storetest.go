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
// session.TTLGetter, session.CompareAndSetter and io.Closer. A capability
// the store lacks is reported as a skipped subtest.
//
// Every record the suite writes uses a fresh random 43-character id, so one
// store (or one database) may be shared between subtests and between
// concurrently running test binaries. The suite never lists or clears a store.
//
// Besides the suite, a store's tests check it through the session
// middleware with RunMiddleware (sign-in, flash, sign-out, corrupt records,
// races of two requests, contention of many), RunSeveralInstances (two apps
// sharing the store's records) and RunFaults (the server going away, cut or
// frozen, and coming back, through a Proxy); NewApp and Browser serve
// store-specific middleware tests.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
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

// ctx is the context of the store calls that need neither a deadline nor
// cancellation.
var ctx = context.Background()

func (s *suite) store(t *testing.T) session.Store {
	t.Helper()
	st := s.newStore(t)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	return st
}

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
	if err := st.Set(ctx, id, data, ttl); err != nil {
		t.Fatalf("Set(%s): %v", id, err)
	}
}

// wantData fails t unless id holds exactly want.
func wantData(t testing.TB, st session.Store, id string, want []byte) {
	t.Helper()
	got, err := st.Get(ctx, id)
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
	got, err := st.Get(ctx, id)
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
	got, err := st.Get(ctx, id)
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

// storeWith returns a new store under test, and it as the capability C; it
// skips t when the store lacks C.
func storeWith[C any](t *testing.T, s *suite) (session.Store, C) {
	t.Helper()
	st := s.store(t)
	return st, need[C](t, st)
}

// need returns st as the capability C, or skips t when st lacks it.
func need[C any](t *testing.T, st session.Store) C {
	t.Helper()
	c, ok := st.(C)
	if !ok {
		t.Skipf("store does not implement %v", reflect.TypeFor[C]())
	}
	return c
}
