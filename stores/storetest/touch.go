package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fibersession/session"
)

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
