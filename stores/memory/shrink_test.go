package memory

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"
)

// checkShards checks that no shard holds maps grown for more records than
// it has, after most of them were deleted, and that the store holds exactly
// want.
func checkShards(t *testing.T, s *Store, want map[string]string) {
	t.Helper()
	for i := range s.shards {
		sh := &s.shards[i]
		if n := sh.len(); sh.peak >= shrinkMin && slots(n) < slots(sh.peak) {
			t.Fatalf("shard %d holds %d records in maps grown for %d", i, n, sh.peak)
		}
	}
	if got := s.Len(); got != len(want) {
		t.Fatalf("Len = %d, want %d", got, len(want))
	}
	for id, v := range want {
		if got, err := s.Get(context.Background(), id); err != nil || string(got) != v {
			t.Fatalf("Get(%q) = %q, %v; want %q", id, got, err, v)
		}
	}
}

// TestShrink deletes most records, by Delete and by expiry, and checks that
// DeleteExpired rebuilds the shards' maps and that they keep every live
// record, under ids of both forms.
func TestShrink(t *testing.T) {
	ctx := context.Background()
	s := New(Config{CleanupInterval: -1})
	defer s.Close()
	var ids []string
	raw := make([]byte, keyLen)
	for i := range 40_000 {
		if i%10 == 0 {
			ids = append(ids, fmt.Sprint("id-", i))
			continue
		}
		_, _ = rand.Read(raw)
		ids = append(ids, base64.RawURLEncoding.EncodeToString(raw))
	}
	for _, ttl := range []time.Duration{-1, time.Millisecond} {
		t.Run(fmt.Sprint("ttl=", ttl), func(t *testing.T) {
			live := map[string]string{}
			for i, id := range ids {
				if i%20 == 0 || ttl < 0 {
					v := fmt.Sprint("record ", i)
					if err := s.Set(ctx, id, []byte(v), time.Hour); err != nil {
						t.Fatal(err)
					}
					if i%20 == 0 {
						live[id] = v
					}
					continue
				}
				if err := s.Set(ctx, id, []byte("short"), ttl); err != nil {
					t.Fatal(err)
				}
			}
			for i := range s.shards {
				if sh := &s.shards[i]; sh.peak < sh.len() {
					t.Fatalf("shard %d: peak %d below its %d records", i, sh.peak, sh.len())
				}
			}
			if ttl < 0 {
				for i, id := range ids {
					if i%20 != 0 {
						if err := s.Delete(ctx, id); err != nil {
							t.Fatal(err)
						}
					}
				}
				if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
					t.Fatalf("DeleteExpired = %d, %v; want 0", n, err)
				}
			} else {
				time.Sleep(10 * time.Millisecond)
				if n, err := s.DeleteExpired(ctx); err != nil || n != int64(len(ids)-len(live)) {
					t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, len(ids)-len(live))
				}
			}
			checkShards(t, s, live)
		})
	}
}

func TestSlots(t *testing.T) {
	for n := range 100_000 {
		want := 8
		for want/8*7 < n {
			want *= 2
		}
		if got := slots(n); got != want {
			t.Fatalf("slots(%d) = %d, want %d", n, got, want)
		}
	}
}
