package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/fibersession/session"
)

func (s *suite) testGetTTL(t *testing.T) {
	g := s.TTLGranularity // how far a reported TTL may be off
	st, tg := storeWith[session.TTLGetter](t, s)

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
