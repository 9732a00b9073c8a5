package memory

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// entries returns the number of entries the index holds for owner, past
// their time or not, and whether it holds the owner at all.
func (s *Store) entries(owner string) (int, bool) {
	ix := s.ownerShard(owner)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	o := ix.m[owner]
	if o == nil {
		return 0, false
	}
	return len(o.ids), true
}

// waitPast waits, without sleeping, until t has passed.
func waitPast(tb testing.TB, t time.Time) {
	deadline := time.Now().Add(5 * time.Second)
	for !time.Now().After(t) {
		if time.Now().After(deadline) {
			tb.Fatal("the clock does not move")
		}
		runtime.Gosched()
	}
}

// TestOwnerPrune: an owner's entries past their time are removed by its next
// Own, and by DeleteExpired, which also drops owners left with none; Disown
// of an owner's last entry drops the owner.
func TestOwnerPrune(t *testing.T) {
	ctx := context.Background()
	s := New(Config{CleanupInterval: -1})
	defer s.Close()

	soon := time.Now().Add(time.Millisecond)
	for i := range 3 {
		if err := s.Own(ctx, "a", fmt.Sprint("short", i), soon); err != nil {
			t.Fatal(err)
		}
		if err := s.Own(ctx, "b", fmt.Sprint("short", i), soon); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.entries("a"); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	waitPast(t, soon)
	if err := s.Own(ctx, "a", "long", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.entries("a"); n != 1 {
		t.Errorf("%d entries after the next Own, want 1: those past their time are removed", n)
	}
	if n, ok := s.entries("b"); n != 3 || !ok {
		t.Errorf("another owner has %d entries, want its 3 until the cleanup", n)
	}
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	if n, ok := s.entries("b"); ok {
		t.Errorf("an owner with only entries past their time is still held after DeleteExpired (%d entries)", n)
	}
	if n, _ := s.entries("a"); n != 1 {
		t.Errorf("DeleteExpired left %d entries of a live owner, want 1", n)
	}
	if err := s.Disown(ctx, "a", "long"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.entries("a"); ok {
		t.Error("an owner without entries is still held after Disown")
	}
	// Owning with an until that has passed holds nothing.
	if err := s.Own(ctx, "c", "past", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.entries("c"); ok {
		t.Error("an Own with an until that has passed created the owner")
	}
}

// TestOwnerShrink: the index's maps are rebuilt once far smaller than they
// grew, as the records' are.
func TestOwnerShrink(t *testing.T) {
	ctx := context.Background()
	s := New(Config{CleanupInterval: -1})
	defer s.Close()
	soon := time.Now().Add(time.Millisecond)
	for i := range 4000 {
		if err := s.Own(ctx, "big", fmt.Sprint(i), soon); err != nil {
			t.Fatal(err)
		}
		if err := s.Own(ctx, fmt.Sprint("owner", i), "x", soon); err != nil {
			t.Fatal(err)
		}
	}
	waitPast(t, soon)
	if err := s.Own(ctx, "big", "long", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ix := s.ownerShard("big")
	ix.mu.Lock()
	o := ix.m["big"]
	if o.peak != 1 || len(o.ids) != 1 {
		t.Errorf("an owner's map is not rebuilt: peak %d, %d entries", o.peak, len(o.ids))
	}
	ix.mu.Unlock()
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	held := 0
	for i := range s.owners {
		ix := &s.owners[i]
		ix.mu.Lock()
		held += len(ix.m)
		if ix.peak > max(len(ix.m), shrinkMin) {
			t.Errorf("owner shard %d: peak %d with %d owners, want rebuilt", i, ix.peak, len(ix.m))
		}
		ix.mu.Unlock()
	}
	if held != 1 {
		t.Errorf("%d owners held after DeleteExpired, want 1", held)
	}
}

func TestUnixNano(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(1, 5), 1e9 + 5},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 1<<63 - 1},
		{time.Time{}, -1 << 63},
	} {
		if got := unixNano(tc.t); got != tc.want {
			t.Errorf("unixNano(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}
