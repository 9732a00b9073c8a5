package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// RunCleanup checks a store's background removal of expired records. open
// returns a store over an empty table whose cleanup runs every interval;
// rows counts the records the backend holds, expired ones included. The
// cleanup must remove an expired record on its own and keep a live one, and
// after Close (which may be called twice) the store still works but no
// longer removes anything.
func RunCleanup(t *testing.T, open func(t *testing.T, interval time.Duration) session.Store, rows func(t *testing.T) int) {
	t.Helper()
	const interval = 10 * time.Millisecond
	ctx := context.Background()
	st := open(t, interval)
	closer, ok := st.(session.Closer)
	if !ok {
		t.Fatal("a store with a background cleanup must be a session.Closer")
	}
	set(t, st, newID(t), []byte("live"), time.Hour)
	set(t, st, newID(t), []byte("short"), time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for rows(t) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the background cleanup left %d records within 5s, want the live one", rows(t))
		}
		time.Sleep(interval)
	}
	for i := range 2 {
		if err := closer.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	id := newID(t)
	if err := st.Set(ctx, id, []byte("short"), time.Millisecond); err != nil {
		t.Fatalf("Set after Close: %v", err)
	}
	// Proving a negative: a cleanup still running would remove the record
	// within a few intervals.
	time.Sleep(10 * interval)
	if n := rows(t); n != 2 {
		t.Errorf("%d records 10 intervals after Close, want 2: the cleanup still runs", n)
	}
}
