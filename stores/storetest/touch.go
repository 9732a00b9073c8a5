package storetest

import (
	"testing"
	"time"

	"github.com/fibersession/session"
)

func (s *suite) testTouch(t *testing.T) {
	t.Run("Missing", func(t *testing.T) {
		st, to := storeWith[session.Toucher](t, s)
		id := newID(t)
		if err := to.Touch(ctx, id, longTTL); err != nil {
			t.Errorf("Touch of a missing id: %v, want nil", err)
		}
		wantNotFound(t, st, id)
	})

	t.Run("KeepsData", func(t *testing.T) {
		st, to := storeWith[session.Toucher](t, s)
		id, data := newID(t), []byte("unchanged by Touch")
		set(t, st, id, data, time.Minute)
		if err := to.Touch(ctx, id, longTTL); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		wantData(t, st, id, data)
	})

	// Without sleeping: a store that also reports TTLs must show the new one.
	t.Run("ExtendsTTL", func(t *testing.T) {
		st, to := storeWith[session.Toucher](t, s)
		tg := need[session.TTLGetter](t, st)
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
