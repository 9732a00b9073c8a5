package memory_test

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/fibersession/session/stores/memory"
)

// TestMemoryKeepsNoCallerMemory checks that the store keeps no id that shares
// memory with the caller's (the session.Store contract): a caller may reuse
// that memory after the call, also after a write over an existing record.
// A Go map given a string key that is already present keeps the new string,
// so a store that writes over a record with the caller's id would keep it.
func TestMemoryKeepsNoCallerMemory(t *testing.T) {
	ctx := context.Background()
	for _, id := range []string{
		"vZ4b2c0k1Jx-Zr6vU0m3yq2yq1e8m5M_ZcQKx8s3hXw", // the middleware's form
		"some-other-id",
	} {
		t.Run(id, func(t *testing.T) {
			st := memory.New(memory.Config{CleanupInterval: -1})
			defer st.Close()
			buf := []byte(id)
			alias := unsafe.String(&buf[0], len(buf)) // the caller's memory
			if err := st.Set(ctx, alias, []byte("a"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := st.Set(ctx, alias, []byte("b"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.CompareAndSet(ctx, alias, []byte("b"), []byte("c"), time.Hour); err != nil || !ok {
				t.Fatalf("CompareAndSet = %v, %v", ok, err)
			}
			if err := st.Touch(ctx, alias, 2*time.Hour); err != nil {
				t.Fatal(err)
			}
			for i := range buf {
				buf[i] = 'x'
			}
			if got, left, err := st.GetTTL(ctx, id); err != nil || string(got) != "c" || left <= time.Hour {
				t.Fatalf("GetTTL after the caller reused its memory = %q, %s, %v; want \"c\", ~2h", got, left, err)
			}
			if err := st.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			if n := st.Len(); n != 0 {
				t.Fatalf("Len = %d after Delete, want 0", n)
			}
		})
	}
}

// TestMemoryCopiesOversizedRecords checks that a record whose backing array
// is much longer than the record is kept as an exactly sized copy, and that
// any other record is kept as it is.
func TestMemoryCopiesOversizedRecords(t *testing.T) {
	ctx := context.Background()
	st := memory.New(memory.Config{CleanupInterval: -1})
	defer st.Close()
	for _, tc := range []struct {
		len, cap int
		copied   bool
	}{
		{66, 150, true}, // what the core's encoder hands over for a small session
		{66, 66, false},
		{66, 98, false}, // 32 bytes unused: kept
		{1000, 1100, false},
		{1000, 1200, true},
		{0, 64, true},
	} {
		data := make([]byte, tc.len, tc.cap)
		for i := range data {
			data[i] = byte(i)
		}
		if err := st.Set(ctx, "id", data, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, "id")
		if err != nil || string(got) != string(data) || got == nil {
			t.Fatalf("len %d cap %d: Get = %v, %v", tc.len, tc.cap, got, err)
		}
		same := cap(got) == cap(data) && (tc.len == 0 || &got[0] == &data[0])
		if same == tc.copied {
			t.Errorf("len %d cap %d: copied = %v (got cap %d), want %v", tc.len, tc.cap, !same, cap(got), tc.copied)
		}
	}
}
