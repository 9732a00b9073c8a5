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

// TestOwnerPrune: Owned leaves out an owner's entries past their time while
// the index still holds them; they are removed by the owner's next Own, and
// by DeleteExpired, which also drops owners left with none; an Own that
// moves an entry's until to the past removes it; Disown of an owner's last
// entry drops the owner, and Disown of an unknown owner creates none.
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
	if ids, err := s.Owned(ctx, "a"); err != nil || len(ids) != 0 {
		t.Errorf("Owned = %q, %v once the entries' time passed; want none", ids, err)
	}
	if n, _ := s.entries("a"); n != 3 {
		t.Fatalf("%d entries before the next Own, want the 3 past their time: the test cannot show Own removing them", n)
	}
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
	// Moving an entry's until to the past removes it.
	if err := s.Own(ctx, "a", "later", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Own(ctx, "a", "long", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.Owned(ctx, "a"); err != nil || len(ids) != 1 || ids[0] != "later" {
		t.Errorf("Owned after moving an entry's until to the past = %q, %v; want [later]", ids, err)
	}
	if n, _ := s.entries("a"); n != 1 {
		t.Errorf("%d entries after moving one's until to the past, want 1", n)
	}
	if err := s.Disown(ctx, "a", "later"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.entries("a"); ok {
		t.Error("an owner without entries is still held after Disown")
	}
	if err := s.Disown(ctx, "nobody", "x"); err != nil {
		t.Errorf("Disown of an unknown owner: %v", err)
	}
	if _, ok := s.entries("nobody"); ok {
		t.Error("a Disown of an unknown owner created the owner")
	}
	// Owning with an until that has passed holds nothing.
	if err := s.Own(ctx, "c", "past", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.entries("c"); ok {
		t.Error("an Own with an until that has passed created the owner")
	}
}

// TestOwnerIndexLazy: a store whose sessions have no owner holds no owner
// index at all, and Clear gives the index's maps back.
func TestOwnerIndexLazy(t *testing.T) {
	ctx := context.Background()
	s := New(Config{CleanupInterval: -1})
	defer s.Close()
	maps := func() int {
		n := 0
		for i := range s.owners {
			ix := &s.owners[i]
			ix.mu.Lock()
			if ix.m != nil {
				n++
			}
			ix.mu.Unlock()
		}
		return n
	}
	for i := range 100 {
		if err := s.Set(ctx, fmt.Sprint(i), []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Owned(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := maps(); n != 0 {
		t.Errorf("%d owner shards hold a map, and no session has an owner", n)
	}
	for i := range 100 {
		if err := s.Own(ctx, fmt.Sprint("owner", i), fmt.Sprint(i), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if maps() == 0 {
		t.Fatal("no owner shard holds a map after 100 Own: the test cannot show Clear freeing them")
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n := maps(); n != 0 {
		t.Errorf("%d owner shards still hold a map after Clear", n)
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
