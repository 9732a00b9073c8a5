package memory_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"slices"
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
// capabilities and the owner index; a namespace is a store of its own.
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

// TestMemoryAdmin writes 10,000 records (ids of the middleware's form and
// others), an expired one and owner index entries, and checks Scan, Count and
// Clear, and that another store is untouched.
func TestMemoryAdmin(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.New(memory.Config{CleanupInterval: -1}))
	other := closed(t, memory.New(memory.Config{CleanupInterval: -1}))
	const n = 10_000
	want := make(map[string]string, n)
	for i := range n {
		id := middlewareID()
		switch i % 4 {
		case 1:
			id = fmt.Sprint("other-", i) // kept as a string
		case 2:
			id = id[:42] + "B" // 43 base64url characters, not canonical: kept as a string
		}
		data := fmt.Sprint("record ", i, " \x00\xff")
		want[id] = data
		if err := st.Set(ctx, id, []byte(data), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Set(ctx, "kept", []byte("other store"), time.Hour); err != nil {
		t.Fatal(err)
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
	for id := range want {
		if err := st.Own(ctx, "user", id, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		break
	}
	if err := other.Own(ctx, "user", "kept", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if got := scanAll(t, st); len(got) != n {
		t.Errorf("Scan reported %d records, want %d", len(got), n)
	} else {
		for id, data := range want {
			if got[id] != data {
				t.Fatalf("Scan reported %q for %q, want %q", got[id], id, data)
			}
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
		t.Errorf("Len after Clear = %d", l)
	}
	if ids, err := st.Owned(ctx, "user"); err != nil || len(ids) != 0 {
		t.Errorf("Owned after Clear = %q, %v; want none", ids, err)
	}
	if got, err := other.Get(ctx, "kept"); err != nil || string(got) != "other store" {
		t.Errorf("another store's record after Clear: %q, %v", got, err)
	}
	if ids, err := other.Owned(ctx, "user"); err != nil || !slices.Equal(ids, []string{"kept"}) {
		t.Errorf("another store's index after Clear: %q, %v", ids, err)
	}
	// The store is usable after Clear.
	if err := st.Set(ctx, "again", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Count(ctx); c != 1 {
		t.Errorf("Count after a Set after Clear = %d, want 1", c)
	}
}

// TestMemoryScanStops: an error from fn stops Scan, which returns it; a done
// context stops it too; fn may use the store (Scan holds no lock).
func TestMemoryScanStops(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.New(memory.Config{}))
	for i := range 500 {
		if err := st.Set(ctx, fmt.Sprint(i), []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	errStop := errors.New("stop")
	calls := 0
	err := st.Scan(ctx, func(string, []byte) error {
		if calls++; calls == 3 {
			return errStop
		}
		return nil
	})
	if err != errStop || calls != 3 {
		t.Errorf("Scan = %v after %d calls; want %v after 3", err, calls, errStop)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.Scan(canceled, func(string, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a done context: %v", err)
	}
	if _, err := st.Count(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Count with a done context: %v", err)
	}
	if err := st.Clear(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Clear with a done context: %v", err)
	}

	// fn deletes and writes through the store: it would deadlock were a
	// shard locked during the call.
	err = st.Scan(ctx, func(id string, data []byte) error {
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

// TestMemoryOwnerIndex checks Own, Owned and Disown.
func TestMemoryOwnerIndex(t *testing.T) {
	ctx := context.Background()
	st := closed(t, memory.New(memory.Config{}))
	owned := func(owner string) []string {
		t.Helper()
		ids, err := st.Owned(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	hour := time.Now().Add(time.Hour)

	t.Run("RoundTrip", func(t *testing.T) {
		a, b, c := middlewareID(), "b", middlewareID()
		for _, id := range []string{a, b, c, a} { // a twice: one entry
			if err := st.Own(ctx, "alice", id, hour); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{a, b, c}
		slices.Sort(want)
		if got := owned("alice"); !slices.Equal(got, want) {
			t.Errorf("Owned = %q, want %q", got, want)
		}
		if err := st.Disown(ctx, "alice", b, "missing"); err != nil {
			t.Fatal(err)
		}
		want = slices.DeleteFunc(want, func(id string) bool { return id == b })
		if got := owned("alice"); !slices.Equal(got, want) {
			t.Errorf("Owned after Disown = %q, want %q", got, want)
		}
		if err := st.Disown(ctx, "alice", a, c); err != nil {
			t.Fatal(err)
		}
		if got := owned("alice"); len(got) != 0 {
			t.Errorf("Owned after disowning all = %q", got)
		}
		if err := st.Disown(ctx, "nobody", "x"); err != nil {
			t.Errorf("Disown of an unknown owner: %v", err)
		}
		if got := owned("nobody"); len(got) != 0 {
			t.Errorf("Owned of an unknown owner = %q", got)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		if err := st.Own(ctx, "bob", "past", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := owned("bob"); len(got) != 0 {
			t.Errorf("Owned = %q, want no entry with a past until", got)
		}
		if err := st.Own(ctx, "bob", "long", hour); err != nil {
			t.Fatal(err)
		}
		// Moving an entry's until to the past removes it.
		if err := st.Own(ctx, "bob", "long", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := owned("bob"); len(got) != 0 {
			t.Errorf("Owned after moving its until to the past = %q", got)
		}
		if err := st.Own(ctx, "bob", "short", time.Now().Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		until(t, "past its until", func() bool { return len(owned("bob")) == 0 })
		if err := st.Own(ctx, "bob", "long", hour); err != nil {
			t.Fatal(err)
		}
		if got := owned("bob"); !slices.Equal(got, []string{"long"}) {
			t.Errorf("Owned = %q, want [long]", got)
		}
		// That the Own removed "short" is checked in TestOwnerPrune.
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		want := make([]string, 100)
		for i := range want {
			want[i] = middlewareID()
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				if err := st.Own(ctx, "carol", id, hour); err != nil {
					t.Error(err)
				}
			}(want[i])
		}
		wg.Wait()
		slices.Sort(want)
		if got := owned("carol"); !slices.Equal(got, want) {
			t.Errorf("Owned has %d of the 100 ids owned concurrently", len(got))
		}
	})

	t.Run("Separate", func(t *testing.T) {
		owners := []string{"d", "dd", "d:", ":d", "d:*", "*", "d*", "d/e", "d/", "\x00", "\x00\xff", "\xff", "d\x00", ""}
		for i, o := range owners {
			if err := st.Own(ctx, o, fmt.Sprint("sep-", i), hour); err != nil {
				t.Fatal(err)
			}
		}
		for i, o := range owners {
			if got, want := owned(o), []string{fmt.Sprint("sep-", i)}; !slices.Equal(got, want) {
				t.Errorf("Owned(%q) = %q, want %q", o, got, want)
			}
		}
		if err := st.Disown(ctx, "d", "sep-1", "sep-2"); err != nil { // ids of other owners
			t.Fatal(err)
		}
		for i, o := range owners {
			if got := owned(o); len(got) != 1 {
				t.Errorf("Owned(%q) after a Disown of another owner = %q, want [sep-%d]", o, got, i)
			}
		}
	})

	t.Run("NotRecords", func(t *testing.T) {
		if c, err := st.Count(ctx); err != nil || c != 0 {
			t.Errorf("Count = %d, %v; the index is not records", c, err)
		}
		if got := scanAll(t, st); len(got) != 0 {
			t.Errorf("Scan reported %d records; the index is not records", len(got))
		}
	})

	t.Run("DoneContext", func(t *testing.T) {
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if err := st.Own(canceled, "x", "y", hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Own: %v", err)
		}
		if err := st.Disown(canceled, "x", "y"); !errors.Is(err, context.Canceled) {
			t.Errorf("Disown: %v", err)
		}
		if _, err := st.Owned(canceled, "x"); !errors.Is(err, context.Canceled) {
			t.Errorf("Owned: %v", err)
		}
	})
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
