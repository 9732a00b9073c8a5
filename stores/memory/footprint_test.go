package memory_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/memory"
)

var footprint = flag.Bool("footprint", false, "run TestMemoryFootprint (one million sessions; about a minute and 1 GB); so does SESSION_FOOTPRINT=1")

// The footprint targets TestMemoryFootprint checks.
const (
	footprintSessions   = 1_000_000 // the spike
	footprintResident   = 10_000    // long-lived sessions present before, during and after it
	footprintPerSession = 300       // bytes of heap per session at the spike, at most
	footprintRetained   = 0.10      // heap after the sweep: at most this much above the heap before the spike
)

type footprintUser struct {
	ID   int64
	Name string
}

// handedOver is the memory store, noting the length and capacity of the
// first record the middleware hands it.
type handedOver struct {
	*memory.Store
	once     sync.Once
	len, cap int
}

func (h *handedOver) note(data []byte) { h.once.Do(func() { h.len, h.cap = len(data), cap(data) }) }

func (h *handedOver) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	h.note(data)
	return h.Store.Set(ctx, id, data, ttl)
}

func (h *handedOver) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	h.note(data)
	return h.Store.CompareAndSet(ctx, id, old, data, ttl)
}

// TestMemoryFootprint measures the Go heap (HeapAlloc after runtime.GC) that
// the memory store holds per live session, and how much of it comes back
// when the sessions expire and the background cleanup deletes them. Every
// session is made by a request through the middleware (Manager.FastHTTP)
// that stores a footprintUser with a 12-character name, so the store holds
// exactly the record bytes the core writes for such a session, under a real
// 43-character id. It is skipped unless asked for:
//
//	go test ./stores/memory -run TestMemoryFootprint -footprint -v
//	SESSION_FOOTPRINT=1 go test ./stores/memory -run TestMemoryFootprint -v
//
// It first stores footprintResident sessions that outlive the test (the
// "pre-spike" heap includes them), then footprintSessions that expire after
// at least 30 s (longer on a slow machine: the test waits for them), and
// checks that the spike costs at most footprintPerSession bytes a session
// and that, once the spike has expired and been swept, HeapAlloc is at most
// (1 + footprintRetained) times the pre-spike HeapAlloc.
func TestMemoryFootprint(t *testing.T) {
	if !*footprint && os.Getenv("SESSION_FOOTPRINT") != "1" {
		t.Skip("measures one million sessions; run with -footprint or SESSION_FOOTPRINT=1")
	}
	st := memory.New(memory.Config{CleanupInterval: time.Second})
	defer st.Close()
	key := []byte("footprint test key of at least 32 bytes")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var rec *handedOver
	manager := func(idle time.Duration) *session.Manager[footprintUser, string] {
		rec = &handedOver{Store: st}
		m, err := session.NewManager(session.Config[footprintUser, string]{
			Secrets: [][]byte{key}, Store: rec, Logger: log, IdleTimeout: idle,
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	resident := manager(24 * time.Hour)

	// One request through the middleware per session; ctx is reused, so its
	// buffers belong to the baseline.
	var ctx fasthttp.RequestCtx
	var n int64
	handler := func(ctx *fasthttp.RequestCtx) {
		s, err := session.FromRequest[footprintUser, string](ctx)
		if err != nil {
			t.Error(err)
			return
		}
		n++
		s.Set("user", footprintUser{ID: 1_000_000 + n, Name: fmt.Sprintf("user%08d", n%100_000_000)})
		ctx.SetUserValue("id", s.ID())
	}
	newSessions := func(m *session.Manager[footprintUser, string], count int) (first string) {
		h := m.FastHTTP(handler, func(_ *fasthttp.RequestCtx, err error) { t.Error(err) })
		for i := range count {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.ResetUserValues()
			ctx.Request.SetRequestURI("/login")
			h(&ctx)
			if t.Failed() {
				t.FailNow()
			}
			if i == 0 {
				first = ctx.UserValue("id").(string)
			}
		}
		ctx.ResetUserValues()
		return first
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}

	start := time.Now()
	firstResident := newSessions(resident, footprintResident)
	// The spike lives long enough to be measured whole: twice the time
	// filling it should take at the rate of the resident sessions, and at
	// least 30 s.
	spikeTTL := max(30*time.Second, (2 * time.Since(start) * footprintSessions / footprintResident).Round(time.Second))
	spike := manager(spikeTTL)
	pre := heap()

	start = time.Now()
	firstSpike := newSessions(spike, footprintSessions)
	filled := time.Since(start)
	peak := heap()
	if got, want := st.Len(), footprintResident+footprintSessions; got != want {
		t.Fatalf("Len = %d after the spike, want %d (filling took %s, longer than the spike TTL %s)", got, want, filled, spikeTTL)
	}
	kept, err := st.Get(context.Background(), firstSpike)
	if err != nil {
		t.Fatalf("first spike session: %v (filling took %s, longer than the spike TTL %s)", err, filled, spikeTTL)
	}
	per := float64(peak-pre) / footprintSessions

	// Wait for the spike to expire and for the background cleanup to delete it.
	time.Sleep(time.Until(start.Add(spikeTTL + filled)))
	deadline := time.Now().Add(30 * time.Second)
	for st.Len() != footprintResident {
		if time.Now().After(deadline) {
			t.Fatalf("Len = %d 30 s after the spike expired, want %d", st.Len(), footprintResident)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := heap()
	if _, err := st.Get(context.Background(), firstResident); err != nil {
		t.Fatalf("a resident session is gone: %v", err)
	}

	retained := (float64(after) - float64(pre)) / (float64(peak) - float64(pre))
	t.Logf("record: %d bytes under a %d-character id, handed over in a backing array of %d, kept in one of %d",
		rec.len, len(firstSpike), rec.cap, cap(kept))
	t.Logf("filled %d sessions through the middleware in %s (spike TTL %s)", footprintSessions, filled.Round(time.Millisecond), spikeTTL)
	t.Logf("HeapAlloc: pre-spike %.1f MiB (%d resident sessions), peak %.1f MiB, after the sweep %.1f MiB",
		mib(pre), footprintResident, mib(peak), mib(after))
	t.Logf("per session at the spike: %.1f bytes (target <= %d)", per, footprintPerSession)
	t.Logf("after the sweep: %+.1f%% of the pre-spike heap (bound +%.0f%%), %.1f%% of the spike retained",
		100*(float64(after)/float64(pre)-1), 100*footprintRetained, 100*retained)
	if per > footprintPerSession {
		t.Errorf("%.1f bytes of heap per session, want <= %d", per, footprintPerSession)
	}
	if float64(after) > float64(pre)*(1+footprintRetained) {
		t.Errorf("heap after the sweep %.1f MiB, want <= %.1f MiB (pre-spike %.1f MiB + %.0f%%)",
			mib(after), mib(pre)*(1+footprintRetained), mib(pre), 100*footprintRetained)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
