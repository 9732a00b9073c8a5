package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
)

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
	run := func(name string, f func(t *testing.T)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, f)
		}()
	}

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
			_, left, err := tg.GetTTL(ctx, id)
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
		st, to := storeWith[session.Toucher](t, s)
		id, data := newID(t), []byte("touched")
		start := time.Now()
		set(t, st, id, data, ttl)
		setEnd := time.Now()

		sleepUntil(start.Add(ttl - g - margin))
		touchStart := time.Now()
		if err := to.Touch(ctx, id, extended); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		if touchStart.After(start.Add(ttl - g)) {
			t.Skip("slow machine: the record may have expired before Touch")
		}

		sleepUntil(setEnd.Add(ttl + g + margin))
		wantPresentUntil(t, st, id, data, touchStart.Add(extended-g))
	})

	run("CompareAndSet", func(t *testing.T) {
		st, cs := storeWith[session.CompareAndSetter](t, s)
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
