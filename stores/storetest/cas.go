package storetest

import (
	"bytes"
	"sync"
	"testing"

	"github.com/fibersession/session"
)

func (s *suite) testCompareAndSet(t *testing.T) {
	st, cs := storeWith[session.CompareAndSetter](t, s)
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
			wg.Add(1)
			go func() {
				defer wg.Done()
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
			}()
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
