package memory_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
	"github.com/fibersession/session/stores/storetest"
)

// The administration capabilities and the owner index.
var _ interface {
	session.Scanner
	session.Counter
	session.Clearer
	session.OwnerIndex
} = (*memory.Store)(nil)

// TestMemoryAdminConformance runs the shared checks of the administration
// capabilities and the owner index; a namespace is a store of its own. The
// tests below check only what is the memory store's own: the forms it keeps
// ids in, expired records not yet deleted, done contexts, fn using the store
// during Scan, and the cleanup running alongside; admin_internal_test.go
// checks the index's pruning and memory.
func TestMemoryAdminConformance(t *testing.T) {
	storetest.RunAdmin(t, func(t *testing.T, _ string) session.Store {
		return closed(t, memory.New(memory.Config{}))
	})
}

// middlewareID returns a random id of the middleware's form, which the store
// keeps decoded.
func middlewareID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// until waits, without sleeping, until cond holds, and fails the test when
// it still does not after a few seconds.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5s", what)
		}
		runtime.Gosched()
	}
}

// scanAll returns what Scan reports, failing on an id reported twice.
func scanAll(t *testing.T, st *memory.Store) map[string]string {
	t.Helper()
	got := make(map[string]string)
	err := st.Scan(context.Background(), func(id string, data []byte) error {
		if _, dup := got[id]; dup {
			t.Errorf("Scan reported %q twice", id)
		}
		got[id] = string(data)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got
}

// TestMemoryAdminIDForms: the store keeps an id of the middleware's form
// decoded (in a shard's keys map, or its clash map when another id shares
// its first 8 bytes) and any other id as a string; Scan reports each form
// once, with its own id and bytes, and Count counts them. Records past
// their TTL but not deleted yet (no cleanup runs) are neither reported nor
// counted, though Len counts them; Clear deletes them too, and the store is
// usable after it. (RunAdmin writes ids of the middleware's form only.)
func TestMemoryAdminIDForms(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.New(memory.Config{CleanupInterval: -1}))
	const n = 400
	want := make(map[string]string, n)
	clash := make([]byte, 32)
	_, _ = rand.Read(clash)
	for i := range n {
		id := middlewareID()
		switch i % 4 {
		case 1:
			id = fmt.Sprint("other-", i) // kept as a string
		case 2:
			id = id[:42] + "B" // 43 base64url characters, not canonical: kept as a string
		case 3:
			_, _ = rand.Read(clash[8:]) // the same first 8 bytes: the clash map
			id = base64.RawURLEncoding.EncodeToString(clash)
		}
		data := fmt.Sprint("record ", i, " \x00\xff")
		want[id] = data
		if err := st.Set(ctx, id, []byte(data), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{middlewareID(), "expired"} {
		if err := st.Set(ctx, id, []byte("expired"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
		until(t, fmt.Sprint("expired ", i), func() bool {
			_, err := st.Get(ctx, id)
			return errors.Is(err, session.ErrNotFound)
		})
	}

	got := scanAll(t, st)
	if len(got) != n {
		t.Errorf("Scan reported %d records, want %d", len(got), n)
	}
	for id, data := range want {
		if got[id] != data {
			t.Fatalf("Scan reported %q for %q, want %q", got[id], id, data)
		}
	}
	if c, err := st.Count(ctx); err != nil || c != n {
		t.Errorf("Count = %d, %v; want %d", c, err, n)
	}
	if l := st.Len(); l != n+2 {
		t.Errorf("Len = %d, want %d (the expired records are not deleted yet)", l, n+2)
	}

	if err := st.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := st.Count(ctx); err != nil || c != 0 {
		t.Errorf("Count after Clear = %d, %v; want 0", c, err)
	}
	if got := scanAll(t, st); len(got) != 0 {
		t.Errorf("Scan after Clear reported %d records", len(got))
	}
	if l := st.Len(); l != 0 {
		t.Errorf("Len after Clear = %d, want 0: the expired records go too", l)
	}
	// The store is usable after Clear, with ids of either form.
	for _, id := range []string{middlewareID(), "again"} {
		if err := st.Set(ctx, id, []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := st.Count(ctx); c != 2 {
		t.Errorf("Count after two Sets after Clear = %d, want 2", c)
	}
}

// TestMemoryScanStops: Scan returns fn's error as it is (RunAdmin checks
// that it stops); a done context fails every administration and index
// method; fn may delete and write through the store, which would deadlock
// were a shard locked during the call.
func TestMemoryScanStops(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.New(memory.Config{}))
	for i := range 500 {
		if err := st.Set(ctx, fmt.Sprint(i), []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	errStop := errors.New("stop")
	if err := st.Scan(ctx, func(string, []byte) error { return errStop }); err != errStop {
		t.Errorf("Scan whose fn fails = %v, want fn's error as it is", err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	hour := time.Now().Add(time.Hour)
	for name, op := range map[string]func(context.Context) error{
		"Scan":   func(ctx context.Context) error { return st.Scan(ctx, func(string, []byte) error { return nil }) },
		"Count":  func(ctx context.Context) error { _, err := st.Count(ctx); return err },
		"Clear":  func(ctx context.Context) error { return st.Clear(ctx) },
		"Own":    func(ctx context.Context) error { return st.Own(ctx, "x", "y", hour) },
		"Disown": func(ctx context.Context) error { return st.Disown(ctx, "x", "y") },
		"Owned":  func(ctx context.Context) error { _, err := st.Owned(ctx, "x"); return err },
	} {
		if err := op(canceled); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a done context: %v", name, err)
		}
	}

	err := st.Scan(ctx, func(id string, data []byte) error {
		if err := st.Delete(ctx, id); err != nil {
			return err
		}
		return st.Set(ctx, "new-"+id, data, time.Hour)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := st.Count(ctx); err != nil || c < 500 {
		t.Errorf("Count = %d, %v; want at least the 500 records written during the scan", c, err)
	}
}

// TestMemoryAdminConcurrent mixes Scan, Count, Clear and the owner index
// with writes and the cleanup; run it with -race.
func TestMemoryAdminConcurrent(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.New(memory.Config{CleanupInterval: time.Millisecond}))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				id := middlewareID()
				if i%2 == 0 {
					id = fmt.Sprint(w, "/", i)
				}
				ttl := time.Duration(1+i%3) * time.Millisecond
				if err := st.Set(ctx, id, []byte{byte(i)}, ttl); err != nil {
					t.Error(err)
					return
				}
				owner := fmt.Sprint("owner", i%5)
				_ = st.Own(ctx, owner, id, time.Now().Add(ttl))
				if i%3 == 0 {
					_ = st.Disown(ctx, owner, id)
				}
				if _, err := st.Owned(ctx, owner); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			if err := st.Scan(ctx, func(string, []byte) error { return nil }); err != nil {
				t.Error(err)
			}
			if _, err := st.Count(ctx); err != nil {
				t.Error(err)
			}
			if _, err := st.DeleteExpired(ctx); err != nil {
				t.Error(err)
			}
			if i%10 == 0 {
				if err := st.Clear(ctx); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	wg.Wait()
}
