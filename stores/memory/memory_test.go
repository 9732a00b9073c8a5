package memory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
	"github.com/fibersession/session/stores/storetest"
)

var (
	_ session.Store            = (*memory.Store)(nil)
	_ session.Toucher          = (*memory.Store)(nil)
	_ session.TTLGetter        = (*memory.Store)(nil)
	_ session.CompareAndSetter = (*memory.Store)(nil)
	_ session.Closer           = (*memory.Store)(nil)
)

// closed returns st after registering its Close with t.
func closed(t *testing.T, st *memory.Store) *memory.Store {
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestMemoryStoreConformance(t *testing.T) {
	t.Run("New", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) session.Store { return closed(t, memory.New()) })
	})
	t.Run("NewWithSweep", func(t *testing.T) {
		t.Parallel()
		// A sweeper that runs while the expiry subtests wait.
		storetest.Run(t, func(t *testing.T) session.Store { return closed(t, memory.NewWithSweep(10*time.Millisecond)) })
	})
	t.Run("NoSweeper", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) session.Store { return closed(t, memory.NewWithSweep(0)) })
	})
	t.Run("Shared", func(t *testing.T) {
		t.Parallel()
		// One store for every subtest: ids are random, so it must pass too
		// (the Close subtest leaves the memory store usable).
		st := closed(t, memory.New())
		storetest.Run(t, func(*testing.T) session.Store { return st })
	})
}

// TestMemoryStoreMiddleware runs the middleware-level checks over the memory
// store; its instances share one store, as apps in one process can.
func TestMemoryStoreMiddleware(t *testing.T) {
	storetest.RunMiddleware(t, func(t *testing.T) session.Store { return closed(t, memory.New()) })
	st := closed(t, memory.New())
	t.Run("SeveralInstances", func(t *testing.T) {
		storetest.RunSeveralInstances(t, func(*testing.T) session.Store { return st })
	})
}

// waitExpired polls until id reads as ErrNotFound, failing t after a deadline.
func waitExpired(t *testing.T, st *memory.Store, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := st.Get(context.Background(), id)
		if errors.Is(err, session.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("record %s did not expire", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMemorySweepRemovesExpired(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.NewWithSweep(0)) // no background sweeper: only Sweep removes
	if err := st.Set(ctx, "short", []byte("s"), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "long", []byte("l"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := st.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	st.Sweep() // nothing has expired yet
	if n := st.Len(); n != 2 {
		t.Fatalf("Len after an early Sweep = %d, want 2", n)
	}

	waitExpired(t, st, "short")
	// An expired record is invisible at once but still held until swept.
	if n := st.Len(); n != 2 {
		t.Fatalf("Len of an expired but unswept store = %d, want 2", n)
	}
	st.Sweep()
	if n := st.Len(); n != 1 {
		t.Fatalf("Len after Sweep = %d, want 1", n)
	}
	if got, err := st.Get(ctx, "long"); err != nil || string(got) != "l" {
		t.Fatalf("Get(long) after Sweep = %q, %v", got, err)
	}
}

func TestMemorySweeperRemovesExpired(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.NewWithSweep(5*time.Millisecond))
	for i := range 100 {
		if err := st.Set(ctx, fmt.Sprint("short", i), []byte("s"), 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Set(ctx, "long", []byte("l"), time.Hour); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("background sweeper left %d records, want 1", st.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, err := st.Get(ctx, "long"); err != nil || string(got) != "l" {
		t.Fatalf("Get(long) = %q, %v", got, err)
	}
}

func TestMemoryCloseStopsSweeper(t *testing.T) {
	ctx := context.Background()
	const interval = 5 * time.Millisecond
	st := memory.NewWithSweep(interval)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Set(ctx, "id", []byte("v"), time.Millisecond); err != nil {
		t.Fatalf("Set after Close: %v", err)
	}
	waitExpired(t, st, "id")
	// Proving a negative: give a sweeper that was still running many
	// intervals to remove the expired record.
	time.Sleep(40 * interval)
	if n := st.Len(); n != 1 {
		t.Fatalf("Len = %d after Close: the sweeper still runs", n)
	}
	st.Sweep() // a manual Sweep still works
	if n := st.Len(); n != 0 {
		t.Fatalf("Len after Sweep = %d, want 0", n)
	}
}

func TestMemoryCloseIdempotentAndUsable(t *testing.T) {
	ctx := context.Background()
	for _, interval := range []time.Duration{time.Minute, time.Millisecond, 0} {
		t.Run(fmt.Sprint("sweep=", interval), func(t *testing.T) {
			st := memory.NewWithSweep(interval)
			var wg sync.WaitGroup
			for range 8 { // concurrent Closes neither panic nor block
				wg.Go(func() {
					if err := st.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
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

// TestMemoryConcurrentWithSweep mixes every method with the background
// sweeper, manual sweeps, Len and Close; run it with -race.
func TestMemoryConcurrentWithSweep(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.NewWithSweep(time.Millisecond))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
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
		})
	}
	wg.Go(func() {
		for range 50 {
			st.Sweep()
			_ = st.Len()
		}
	})
	wg.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
