package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fibersession/session"
)

func (s *suite) testContext(t *testing.T) {
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
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
				to := need[session.Toucher](t, st)
				id := existing(t)
				check(t, "Touch", to.Touch(ctx, id, longTTL))
				wantData(t, st, id, data)
				if tg, ok := st.(session.TTLGetter); ok {
					if _, left, err := tg.GetTTL(ctx, id); err == nil && left > time.Minute+s.TTLGranularity {
						t.Errorf("Touch with a done context extended the TTL to %v", left)
					}
				}
			})
			t.Run("GetTTL", func(t *testing.T) {
				tg := need[session.TTLGetter](t, st)
				got, _, err := tg.GetTTL(ctx, existing(t))
				check(t, "GetTTL", err)
				if got != nil {
					t.Errorf("GetTTL with a done context returned data %s", describe(got))
				}
			})
			t.Run("CompareAndSet", func(t *testing.T) {
				cs := need[session.CompareAndSetter](t, st)
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
