package natsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/natsstore"
	"github.com/fibersession/session/stores/storetest"
)

var natsURL = storetest.Addr("SESSION_NATS_URL", "nats://127.0.0.1:4222")

// connect connects to url (skipping or failing the test when NATS is
// unreachable) and closes the connection when the test ends.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(2 * time.Second)}, opts...)...)
	if err != nil {
		storetest.Unavailable(t, "NATS at "+url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// bucket creates a key-value bucket with a unique name and the given TTL
// on nc's server, deleted when the test ends.
func bucket(t testing.TB, nc *nats.Conn, ttl time.Duration) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := "fibersession_test_" + randHex(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := natsstore.CreateBucket(ctx, js, name, ttl)
	if err != nil {
		storetest.Unavailable(t, "NATS JetStream at "+nc.ConnectedUrl(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, name); err != nil {
			t.Errorf("deleting bucket %s: %v", name, err)
		}
	})
	return js, kv
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func newStore(t testing.TB, kv jetstream.KeyValue, cfg natsstore.Config) *natsstore.Store {
	t.Helper()
	st, err := natsstore.New(context.Background(), kv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The suite's longest TTL is 30 days; the bucket must allow it.
const suiteBucketTTL = 31 * 24 * time.Hour

func TestConformance(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, suiteBucketTTL)
	// Expiries are kept in whole milliseconds, so a record may live up to
	// 1ms shorter than its TTL and GetTTL may read up to 1ms low.
	opts := storetest.Options{TTLGranularity: time.Millisecond}
	// The Close subtest is skipped: the store owns no resources (the
	// connection is the caller's), so it does not implement session.Closer.
	for _, tc := range []struct {
		name string
		cfg  natsstore.Config
	}{
		{"Default", natsstore.Config{}},
		// Every record over 1000 bytes is chunked: the 1 MiB value, the
		// shared-id writers' values, the large compare-and-set.
		{"SmallChunks", natsstore.Config{Prefix: "chunked.", ChunkSize: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t, kv, tc.cfg)
			storetest.Run(t, func(*testing.T) session.Store { return st }, opts)
		})
	}
}

// TestExpiredButStored pins the TTL mapping: a record past its own expiry is
// absent for the store while the bucket still holds it, and the bucket TTL
// removes it later.
func TestExpiredButStored(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Second)
	st := newStore(t, kv, natsstore.Config{})
	ctx := context.Background()
	const id = "expiring"
	if err := st.Set(ctx, id, []byte("short"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, id); err != nil || string(got) != "short" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := st.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after the record's ttl: %v, want ErrNotFound", err)
	}
	if _, err := kv.Get(ctx, id); err != nil {
		t.Fatalf("the bucket no longer holds the expired record (%v): the test cannot show the expiry check", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the bucket TTL (1s) did not remove the record within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTTLLongerThanBucket(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	st := newStore(t, kv, natsstore.Config{})
	ctx := context.Background()
	if err := st.Set(ctx, "fits", []byte("v"), time.Hour); err != nil {
		t.Fatalf("Set with the bucket's TTL: %v", err)
	}
	for name, op := range map[string]func() error{
		"Set": func() error { return st.Set(ctx, "long", []byte("v"), 2*time.Hour) },
		"CompareAndSet": func() error {
			_, err := st.CompareAndSet(ctx, "long", nil, []byte("v"), 2*time.Hour)
			return err
		},
		"Touch": func() error { return st.Touch(ctx, "fits", 2*time.Hour) },
	} {
		if err := op(); !errors.Is(err, natsstore.ErrTTLTooLong) {
			t.Errorf("%s with a ttl over the bucket's: %v, want ErrTTLTooLong", name, err)
		}
	}
	if _, err := st.Get(ctx, "long"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a refused write was stored: %v", err)
	}
}

func TestConfig(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	for _, tc := range []struct {
		cfg natsstore.Config
		ok  bool
	}{
		{natsstore.Config{}, true},
		{natsstore.Config{Prefix: "app.sessions."}, true},
		{natsstore.Config{Prefix: "a-b_c=d/e"}, true},
		{natsstore.Config{Prefix: ".leading"}, false},
		{natsstore.Config{Prefix: "double..dot"}, false},
		{natsstore.Config{Prefix: "wild*"}, false},
		{natsstore.Config{Prefix: "wild>"}, false},
		{natsstore.Config{Prefix: "with space"}, false},
		{natsstore.Config{ChunkSize: -1}, false},
	} {
		_, err := natsstore.New(context.Background(), kv, tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("New(%+v): error %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
	if _, err := natsstore.New(context.Background(), nil, natsstore.Config{}); err == nil {
		t.Error("New(nil KeyValue) succeeded")
	}
}

func TestPrefixIsolation(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	a := newStore(t, kv, natsstore.Config{Prefix: "a."})
	b := newStore(t, kv, natsstore.Config{Prefix: "b."})
	ctx := context.Background()
	const id = "same-id"
	if err := a.Set(ctx, id, []byte("from a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("store b sees store a's record: %v", err)
	}
	if ok, err := b.CompareAndSet(ctx, id, nil, []byte("from b"), time.Minute); err != nil || !ok {
		t.Fatalf("b.CompareAndSet(nil) = %v, %v", ok, err)
	}
	if err := b.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, id); err != nil || string(got) != "from a" {
		t.Fatalf("a.Get after b.Delete = %q, %v", got, err)
	}
	// Create over the purge marker Delete left.
	if ok, err := b.CompareAndSet(ctx, id, nil, []byte("again"), time.Minute); err != nil || !ok {
		t.Fatalf("b.CompareAndSet(nil) after b.Delete = %v, %v", ok, err)
	}
	if got, err := b.Get(ctx, id); err != nil || string(got) != "again" {
		t.Fatalf("b.Get = %q, %v", got, err)
	}
	if _, err := kv.Get(ctx, "a."+id); err != nil {
		t.Fatalf("key a.%s: %v", id, err)
	}
}

// TestChunkedContention runs compare-and-set retry loops on a record split
// into many chunks, then checks that no increment was lost and that only
// the final record's chunks are left in the bucket.
func TestChunkedContention(t *testing.T) {
	nc := connect(t, natsURL)
	_, kv := bucket(t, nc, time.Hour)
	st := newStore(t, kv, natsstore.Config{ChunkSize: 4})
	ctx := context.Background()
	const id, workers, increments = "chunky", 4, 8
	if err := st.Set(ctx, id, []byte("#"), time.Hour); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range increments {
				for {
					cur, err := st.Get(ctx, id)
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					next := append(slices.Clip(cur), byte('a'+w))
					ok, err := st.CompareAndSet(ctx, id, cur, next, time.Hour)
					if err != nil {
						t.Errorf("CompareAndSet: %v", err)
						return
					}
					if ok {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	got, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		if n := strings.Count(string(got), string(rune('a'+w))); n != increments {
			t.Errorf("worker %d: %d of %d increments kept in %q", w, n, increments, got)
		}
	}
	// The first Set's chunks are replaced by the first CompareAndSet, which
	// purges them; every failed attempt purges its own.
	want := (len(got) + 3) / 4
	if n := countKeys(t, kv, id+".>"); n != want {
		t.Errorf("%d chunk keys in the bucket, want %d (the live record's)", n, want)
	}
	if err := st.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, kv, id+".>"); n != 0 {
		t.Errorf("%d chunk keys left after Delete", n)
	}
}

func countKeys(t *testing.T, kv jetstream.KeyValue, filter string) int {
	t.Helper()
	lister, err := kv.ListKeysFiltered(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	return n
}

// ------------------------------------------------------------- middleware

// sessionBucketTTL outlasts the middleware's default absolute timeout, as
// the bucket TTL must.
const sessionBucketTTL = 8 * 24 * time.Hour

// TestMiddleware runs the middleware-level checks under a prefix, with a
// look at the prefixed key in the bucket, and a value the store never
// writes under a session's key.
func TestMiddleware(t *testing.T) {
	_, kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	storetest.RunMiddleware(t, func(t *testing.T) session.Store {
		return newStore(t, kv, natsstore.Config{Prefix: "web."})
	}, storetest.MiddlewareOptions{
		Stored: func(t *testing.T, id string) bool {
			_, err := kv.Get(context.Background(), "web."+id)
			if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatal(err)
			}
			return err == nil
		},
		Corrupt: map[string]func(t *testing.T, id string){
			// Bytes the store did not write: no expiry header.
			"RawValue": func(t *testing.T, id string) {
				if _, err := kv.Put(context.Background(), "web."+id, []byte("garbage")); err != nil {
					t.Fatal(err)
				}
			},
		},
	})
}

// TestSeveralInstances: two apps, each with its own connection and store,
// on one bucket.
func TestSeveralInstances(t *testing.T) {
	_, kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	storetest.RunSeveralInstances(t, func(t *testing.T) session.Store {
		js, err := jetstream.New(connect(t, natsURL))
		if err != nil {
			t.Fatal(err)
		}
		own, err := js.KeyValue(context.Background(), kv.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		return newStore(t, own, natsstore.Config{})
	})
}

// ------------------------------------------------------------------ fault

// proxied returns a store on kv's bucket through a connection to addr
// (a proxy) that reconnects through addr alone, for ever, every 100ms.
func proxied(t *testing.T, kv jetstream.KeyValue, addr string, opts ...nats.Option) (*nats.Conn, *natsstore.Store) {
	t.Helper()
	nc := connect(t, "nats://"+addr, append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.IgnoreDiscoveredServers(), // reconnect through the proxy only
	}, opts...)...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pkv, err := js.KeyValue(context.Background(), kv.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	return nc, newStore(t, pkv, natsstore.Config{})
}

// TestServerDown runs the fault checks with and without the client's
// reconnect buffer: requests made while disconnected wait in the buffer
// until StoreTimeout, or fail at once without it.
func TestServerDown(t *testing.T) {
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	_, kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"ReconnectBuffer", nil},
		{"NoReconnectBuffer", []nats.Option{nats.ReconnectBufSize(-1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunFaults(t, func(t *testing.T, addr string) session.Store {
				_, st := proxied(t, kv, addr, tc.opts...)
				return st
			}, u.Host, time.Second, storetest.FaultOptions{Reconnect: 10 * time.Second})
		})
	}
}

// TestNoReconnectBufferFailsFast: without the reconnect buffer, a request
// made while the client knows it is disconnected fails at once, well within
// StoreTimeout.
func TestNoReconnectBufferFailsFast(t *testing.T) {
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	_, kv := bucket(t, connect(t, natsURL), sessionBucketTTL)
	proxy := storetest.NewProxy(t, u.Host)
	nc, st := proxied(t, kv, proxy.Addr(), nats.ReconnectBufSize(-1))
	const timeout = 2 * time.Second
	b := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: st, StoreTimeout: timeout}))
	b.Expect("POST", "/login", "ok")

	proxy.Stop()
	for deadline := time.Now().Add(5 * time.Second); nc.Status() != nats.RECONNECTING; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("client status %v 5s after the proxy stopped, want RECONNECTING", nc.Status())
		}
	}
	start := time.Now()
	if status, body := b.Do("GET", "/"); status != 500 || body != "Internal Server Error" {
		t.Errorf("GET / while reconnecting = %d %q, want 500 %q", status, body, "Internal Server Error")
	}
	if d := time.Since(start); d > timeout/4 {
		t.Errorf("a request while reconnecting without a buffer took %v, want an immediate failure", d)
	}
}
