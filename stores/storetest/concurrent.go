package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
)

func (s *suite) testConcurrent(t *testing.T) {
	// Many goroutines each run the whole life of their own records.
	t.Run("DistinctIDs", func(t *testing.T) {
		st := s.store(t)
		to, _ := st.(session.Toucher)
		tg, _ := st.(session.TTLGetter)
		cs, _ := st.(session.CompareAndSetter)
		const workers, rounds = 16, 20
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
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
			}()
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					if err := st.Set(ctx, id, value(w), time.Minute); err != nil {
						t.Errorf("Set: %v", err)
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds / 5 {
				if err := st.Delete(ctx, id); err != nil {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		}()
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
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
			}()
		}
		wg.Wait()
	})
}
