package memory

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/fibersession/session/internal/errs"
)

// TestClash stores ids whose first 8 decoded bytes are the same, so that all
// but one go to a shard's clash map, and checks every operation on them,
// also after the one in the keys map is deleted and its place taken again.
func TestClash(t *testing.T) {
	ctx := context.Background()
	s := New(Config{CleanupInterval: -1})
	defer s.Close()
	raw := make([]byte, keyLen)
	_, _ = rand.Read(raw)
	ids := make([]string, 4)
	for i := range ids {
		_, _ = rand.Read(raw[8:])
		ids[i] = base64.RawURLEncoding.EncodeToString(raw)
	}
	var r, ri ref
	sh := s.ref(&r, ids[0])
	for _, id := range ids[1:] {
		if shi := s.ref(&ri, id); !ri.packed || ri.head() != r.head() || shi != sh {
			t.Fatalf("%s and %s do not share a place", ids[0], id)
		}
	}
	want := func(id, data string, left time.Duration) {
		t.Helper()
		got, ttl, err := s.GetTTL(ctx, id)
		if data == "" {
			if !errors.Is(err, errs.ErrNotFound) {
				t.Fatalf("GetTTL(%s) = %q, %v; want ErrNotFound", id, got, err)
			}
			return
		}
		if err != nil || string(got) != data || ttl <= left-time.Minute || ttl > left {
			t.Fatalf("GetTTL(%s) = %q, %s, %v; want %q, %s", id, got, ttl, err, data, left)
		}
	}
	maps := func(keys, clash int) {
		t.Helper()
		if len(sh.keys) != keys || len(sh.clash) != clash || s.Len() != keys+clash {
			t.Fatalf("keys %d, clash %d, Len %d; want %d, %d", len(sh.keys), len(sh.clash), s.Len(), keys, clash)
		}
	}
	for i, id := range ids[:3] {
		if err := s.Set(ctx, id, []byte{'a' + byte(i)}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	maps(1, 2)
	want(ids[0], "a", time.Hour)
	want(ids[1], "b", time.Hour)
	want(ids[2], "c", time.Hour)
	want(ids[3], "", 0)

	// Every operation on an id in clash.
	if ok, err := s.CompareAndSet(ctx, ids[1], []byte("b"), []byte("B"), time.Hour); err != nil || !ok {
		t.Fatalf("CompareAndSet = %v, %v", ok, err)
	}
	if ok, err := s.CompareAndSet(ctx, ids[3], nil, []byte("d"), time.Hour); err != nil || !ok {
		t.Fatalf("CompareAndSet of an absent id = %v, %v", ok, err)
	}
	if err := s.Touch(ctx, ids[2], 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	maps(1, 3)
	want(ids[1], "B", time.Hour)
	want(ids[2], "c", 2*time.Hour)
	want(ids[3], "d", time.Hour)

	// The id in keys goes: those in clash stay there and are still found,
	// written and deleted there; a new one takes the free place in keys.
	if err := s.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	maps(0, 3)
	want(ids[0], "", 0)
	want(ids[1], "B", time.Hour)
	if err := s.Set(ctx, ids[1], []byte("b2"), 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, ids[3], 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	maps(0, 3)
	want(ids[1], "b2", 3*time.Hour)
	want(ids[3], "d", 3*time.Hour)
	if err := s.Delete(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	maps(0, 2)
	if err := s.Set(ctx, ids[0], []byte("a2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	maps(1, 2)
	want(ids[0], "a2", time.Hour)
	want(ids[1], "b2", 3*time.Hour)
	want(ids[2], "", 0)

	// Expiry and the rebuild keep them apart.
	if err := s.Set(ctx, ids[1], []byte("short"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	want(ids[1], "", 0)
	sh.peak = 1 << 20 // force a rebuild
	if n, err := s.DeleteExpired(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1", n, err)
	}
	if sh.peak != 2 {
		t.Fatalf("peak %d after the rebuild, want 2", sh.peak)
	}
	maps(1, 1)
	want(ids[0], "a2", time.Hour)
	want(ids[3], "d", 3*time.Hour)
}
