package memory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
	"github.com/fibersession/session/stores/storetest"
)

// The memory store has every optional capability.
var _ interface {
	session.TTLGetter
	session.Toucher
	session.CompareAndSetter
	io.Closer
} = (*memory.Store)(nil)

// closed returns st after registering its Close with t.
func closed(t *testing.T, st *memory.Store) *memory.Store {
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestMemoryStoreConformance(t *testing.T) {
	t.Run("Default", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) session.Store { return closed(t, memory.New(memory.Config{})) })
	})
	t.Run("FastCleanup", func(t *testing.T) {
		t.Parallel()
		// A cleanup that runs while the expiry subtests wait.
		storetest.Run(t, func(t *testing.T) session.Store {
			return closed(t, memory.New(memory.Config{CleanupInterval: 10 * time.Millisecond}))
		})
	})
	t.Run("NoCleanup", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) session.Store {
			return closed(t, memory.New(memory.Config{CleanupInterval: -1}))
		})
	})
	t.Run("Shared", func(t *testing.T) {
		t.Parallel()
		// One store for every subtest: ids are random, so it must pass too
		// (the Close subtest leaves the memory store usable).
		st := closed(t, memory.New(memory.Config{}))
		storetest.Run(t, func(*testing.T) session.Store { return st })
	})
}

// TestMemoryStoreMiddleware runs the middleware-level checks over the memory
// store; its instances share one store, as apps in one process can.
func TestMemoryStoreMiddleware(t *testing.T) {
	storetest.RunMiddleware(t, func(t *testing.T) session.Store { return closed(t, memory.New(memory.Config{})) })
	st := closed(t, memory.New(memory.Config{}))
	t.Run("SeveralInstances", func(t *testing.T) {
		storetest.RunSeveralInstances(t, func(*testing.T) session.Store { return st })
	})
}

// TestMemoryCleanup checks DeleteExpired and the background cleanup; Len
// counts the records held, expired ones not yet deleted included.
func TestMemoryCleanup(t *testing.T) {
	storetest.RunCleanup(t, func(t *testing.T, interval time.Duration) (session.Store, func() int) {
		st := closed(t, memory.New(memory.Config{CleanupInterval: interval}))
		return st, st.Len
	})
}

func TestMemoryCloseIdempotentAndUsable(t *testing.T) {
	ctx := context.Background()
	for _, interval := range []time.Duration{time.Minute, time.Millisecond, -1} {
		t.Run(fmt.Sprint("cleanup=", interval), func(t *testing.T) {
			st := memory.New(memory.Config{CleanupInterval: interval})
			var wg sync.WaitGroup
			for range 8 { // concurrent Closes neither panic nor block
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := st.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}()
			}
			wg.Wait()
			if err := st.Close(); err != nil {
				t.Fatalf("Close again: %v", err)
			}
			// The store stays usable after Close.
			if err := st.Set(ctx, "id", []byte("v"), time.Minute); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if got, err := st.Get(ctx, "id"); err != nil || string(got) != "v" {
				t.Fatalf("Get = %q, %v", got, err)
			}
			if ok, err := st.CompareAndSet(ctx, "id", []byte("v"), []byte("w"), time.Minute); err != nil || !ok {
				t.Fatalf("CompareAndSet = %v, %v", ok, err)
			}
			if err := st.Touch(ctx, "id", time.Hour); err != nil {
				t.Fatalf("Touch: %v", err)
			}
			if _, left, err := st.GetTTL(ctx, "id"); err != nil || left <= time.Minute {
				t.Fatalf("GetTTL = %v, %v", left, err)
			}
			if err := st.Delete(ctx, "id"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		})
	}
}

// TestMemoryConcurrentWithCleanup mixes every method with the background
// cleanup, DeleteExpired, Len and Close; run it with -race.
func TestMemoryConcurrentWithCleanup(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.New(memory.Config{CleanupInterval: time.Millisecond}))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := fmt.Sprint(w, "/", i%10)
				ttl := time.Duration(1+i%3) * time.Millisecond
				if i%2 == 0 {
					ttl = time.Minute
				}
				if err := st.Set(ctx, id, []byte{byte(i)}, ttl); err != nil {
					t.Errorf("Set: %v", err)
					return
				}
				if cur, err := st.Get(ctx, id); err == nil {
					_, _ = st.CompareAndSet(ctx, id, cur, []byte{byte(i), 1}, ttl)
				} else if !errors.Is(err, session.ErrNotFound) {
					t.Errorf("Get: %v", err)
					return
				}
				_ = st.Touch(ctx, id, ttl)
				if _, _, err := st.GetTTL(ctx, id); err != nil && !errors.Is(err, session.ErrNotFound) {
					t.Errorf("GetTTL: %v", err)
					return
				}
				if i%7 == 0 {
					_ = st.Delete(ctx, id)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			if _, err := st.DeleteExpired(ctx); err != nil {
				t.Errorf("DeleteExpired: %v", err)
			}
			_ = st.Len()
		}
	}()
	wg.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
