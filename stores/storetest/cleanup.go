package storetest

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/fibersession/session"
)

// ExpiredDeleter is the cleanup method of stores that hold expired records
// until they delete them (the memory and SQL stores): DeleteExpired deletes
// every expired record now and reports how many.
type ExpiredDeleter interface {
	// DeleteExpired deletes every expired record and reports how many.
	DeleteExpired(ctx context.Context) (int64, error)
}

// RunCleanup checks a store's deletion of expired records, on demand and in
// the background. open returns a store over an empty table (or map) of its
// own, whose background cleanup runs every interval (never when interval is
// negative), and a function that counts the records the table holds,
// expired ones included. The store must be an ExpiredDeleter and an
// io.Closer.
//
// DeleteExpired must delete exactly the expired records and keep the live
// ones. The background cleanup must delete an expired record on its own and
// keep a live one, and after Close (which may be called twice) the store
// still works but no longer deletes anything.
func RunCleanup(t *testing.T, open func(t *testing.T, interval time.Duration) (st session.Store, rows func() int)) {
	t.Helper()
	t.Run("DeleteExpired", func(t *testing.T) {
		st, rows := open(t, -1)
		d, ok := st.(ExpiredDeleter)
		if !ok {
			t.Fatal("store has no DeleteExpired method")
		}
		live := newID(t)
		set(t, st, live, []byte("live"), time.Hour)
		set(t, st, newID(t), []byte("short"), time.Millisecond)
		set(t, st, newID(t), []byte("short"), time.Millisecond)
		time.Sleep(50 * time.Millisecond) // let the two short TTLs pass
		n, err := d.DeleteExpired(ctx)
		if err != nil || n != 2 {
			t.Fatalf("DeleteExpired = %d, %v; want 2, nil", n, err)
		}
		if got := rows(); got != 1 {
			t.Errorf("%d records left, want the live one", got)
		}
		wantData(t, st, live, []byte("live"))
		if n, err := d.DeleteExpired(ctx); err != nil || n != 0 {
			t.Errorf("DeleteExpired again = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("Background", func(t *testing.T) {
		const interval = 10 * time.Millisecond
		st, rows := open(t, interval)
		closer, ok := st.(io.Closer)
		if !ok {
			t.Fatal("a store with a background cleanup must be an io.Closer")
		}
		set(t, st, newID(t), []byte("live"), time.Hour)
		set(t, st, newID(t), []byte("short"), time.Millisecond)
		deadline := time.Now().Add(5 * time.Second)
		for rows() != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("the background cleanup left %d records within 5s, want the live one", rows())
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
		if n := rows(); n != 2 {
			t.Errorf("%d records 10 intervals after Close, want 2: the cleanup still runs", n)
		}
	})
}
