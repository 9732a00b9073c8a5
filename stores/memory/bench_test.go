package memory_test

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fibersession/session/stores/memory"
)

// The store's own benchmarks: one call on a store holding benchRecords
// sessions under 43-character ids, with a 67-byte record (the size the
// middleware writes for a session holding one small struct). The calls take
// the ids in a random order, as requests do, not in the order they were
// stored (which would find them next to one another in memory).
//
//	go test ./stores/memory -run '^$' -bench . -benchmem
const (
	benchRecords = 100_000
	benchLen     = 67
)

func benchIDs(b *testing.B, n int) []string {
	b.Helper()
	ids := make([]string, n)
	raw := make([]byte, 32)
	for i := range ids {
		_, _ = crand.Read(raw)
		ids[i] = base64.RawURLEncoding.EncodeToString(raw)
	}
	return ids
}

// benchStore returns a store holding a record under each of benchRecords ids.
func benchStore(b *testing.B) (*memory.Store, []string, []byte) {
	b.Helper()
	st := memory.New(memory.Config{CleanupInterval: -1})
	b.Cleanup(func() { _ = st.Close() })
	ids := benchIDs(b, benchRecords)
	data := make([]byte, benchLen)
	for _, id := range ids {
		if err := st.Set(context.Background(), id, data, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	b.ReportAllocs()
	b.ResetTimer()
	return st, ids, data
}

func BenchmarkGet(b *testing.B) {
	st, ids, _ := benchStore(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := st.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetMissing(b *testing.B) {
	st, _, _ := benchStore(b)
	ids := benchIDs(b, 1024)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := st.Get(ctx, ids[i%len(ids)]); err == nil {
			b.Fatal("found")
		}
	}
}

func BenchmarkGetTTL(b *testing.B) {
	st, ids, _ := benchStore(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, _, err := st.GetTTL(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetTTLParallel(b *testing.B) {
	st, ids, _ := benchStore(b)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := int(next.Add(1) * 7919)
		for pb.Next() {
			i++
			if _, _, err := st.GetTTL(ctx, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSet overwrites existing records with an exactly sized slice.
func BenchmarkSet(b *testing.B) {
	st, ids, data := benchStore(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := st.Set(ctx, ids[i%len(ids)], data, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetOversized overwrites existing records with a slice whose
// backing array is 120 bytes longer than the record, as the core's encoder
// makes them.
func BenchmarkSetOversized(b *testing.B) {
	st, ids, _ := benchStore(b)
	data := make([]byte, benchLen, benchLen+120)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.Set(ctx, ids[i%len(ids)], data, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetNew adds records under new ids (a store that grows from empty;
// map growth included) and deletes them again in batches, outside the timer.
func BenchmarkSetNew(b *testing.B) {
	st, _, data := benchStore(b)
	ids := benchIDs(b, benchRecords)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(ids)
		if j == 0 && i > 0 {
			b.StopTimer()
			for _, id := range ids {
				_ = st.Delete(ctx, id)
			}
			b.StartTimer()
		}
		if err := st.Set(ctx, ids[j], data, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompareAndSet(b *testing.B) {
	st, ids, data := benchStore(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if ok, err := st.CompareAndSet(ctx, ids[i%len(ids)], data, data, time.Hour); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkTouch(b *testing.B) {
	st, ids, _ := benchStore(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := st.Touch(ctx, ids[i%len(ids)], time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeleteExpired sweeps a store of benchRecords live records, none
// of them expired.
func BenchmarkDeleteExpired(b *testing.B) {
	st, _, _ := benchStore(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if n, err := st.DeleteExpired(ctx); err != nil || n != 0 {
			b.Fatal(n, err)
		}
	}
}
