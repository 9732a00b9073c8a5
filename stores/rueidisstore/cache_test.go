package rueidisstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/rueidisstore"
	"github.com/fibersession/session/stores/storetest"
)

// TestReadYourWrites: a Get right after this store's own write of the key
// (Set, CompareAndSet with and without an old record, Delete) answers that
// write, though the key was in the cache and the server's invalidation may
// still be on its way: 4 goroutines, 1,000 writes each, each followed at
// once by a Get, each key cached again before the next write. Against the
// standalone server or, with SESSION_REDIS_CLUSTER, the Cluster. The log
// says how often the cache still answered the old value and a plain GET
// was needed.
func TestReadYourWrites(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st := newStore(t, c, testPrefix(t, c))
	const workers, rounds = 4, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("ryw-", w)
			var cur []byte // what the key holds; nil: nothing
			for i := range rounds {
				for range 2 { // the second Get answers from the cache
					got, err := st.Get(ctx, id)
					if cur == nil && !errors.Is(err, session.ErrNotFound) || cur != nil && string(got) != string(cur) {
						t.Errorf("worker %d, round %d: Get before the write = %q, %v; want %q", w, i, got, err, cur)
						return
					}
				}
				next := []byte(fmt.Sprint("record ", w, " ", i))
				var err error
				switch i % 4 {
				case 0:
					err = st.Set(ctx, id, next, time.Hour)
				case 1:
					var ok bool
					ok, err = st.CompareAndSet(ctx, id, cur, next, time.Hour)
					if err == nil && !ok {
						err = errors.New("CompareAndSet did not write")
					}
				case 2:
					err, next = st.Delete(ctx, id), nil
				case 3: // after the Delete: the nil old of a new record
					var ok bool
					ok, err = st.CompareAndSet(ctx, id, nil, next, time.Hour)
					if err == nil && !ok {
						err = errors.New("CompareAndSet(nil old) did not write")
					}
				}
				if err != nil {
					t.Errorf("worker %d, round %d: write: %v", w, i, err)
					return
				}
				cur = next
				got, err := st.Get(ctx, id)
				if cur == nil && !errors.Is(err, session.ErrNotFound) || cur != nil && string(got) != string(cur) {
					t.Errorf("worker %d, round %d: Get right after the write = %q, %v; want %q", w, i, got, err, cur)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d writes, each read back at once: the cache still held the old value %d times, and a plain GET answered", workers*rounds, st.Rechecks())
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	i := int(float64(len(ds))*p+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// TestInvalidationDelay measures how long after instance A's write of a
// record instance B, which has the record in its cache, first reads the
// new one: 500 rounds, from A's Set returning to B's first Get that
// answers the new bytes (which includes B's round trip that reads the new
// record into its cache). B polls its cache with a 20µs sleep between
// attempts, so that rueidis's reader goroutines, which apply the
// invalidation, get a processor on a two-core machine (a loop that only
// yields with runtime.Gosched measured ten times more). The bound asserted
// is generous (p99 under 50ms) so that a loaded machine does not fail the
// test; the figures are logged.
func TestInvalidationDelay(t *testing.T) {
	ctx := context.Background()
	ca, cb := newClient(t), newClient(t)
	prefix := testPrefix(t, ca)
	a, b := newStore(t, ca, prefix), newStore(t, cb, prefix)
	const rounds = 500
	id := randomID()
	if err := a.Set(ctx, id, []byte("0"), time.Hour); err != nil {
		t.Fatal(err)
	}
	delays := make([]time.Duration, 0, rounds)
	polls := 0
	for i := 1; i <= rounds; i++ {
		// B holds the current record in its cache.
		for range 2 {
			if got, err := b.Get(ctx, id); err != nil || string(got) != strconv.Itoa(i-1) {
				t.Fatalf("round %d: B reads %q, %v before the write; want %q", i, got, err, strconv.Itoa(i-1))
			}
		}
		want := strconv.Itoa(i)
		if err := a.Set(ctx, id, []byte(want), time.Hour); err != nil {
			t.Fatal(err)
		}
		written := time.Now()
		for {
			got, err := b.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) == want {
				delays = append(delays, time.Since(written))
				break
			}
			if string(got) != strconv.Itoa(i-1) {
				t.Fatalf("round %d: B reads %q, want %q or %q", i, got, strconv.Itoa(i-1), want)
			}
			polls++
			if time.Since(written) > 5*time.Second {
				t.Fatalf("round %d: B still reads the old record 5s after the write", i)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	slices.Sort(delays)
	p50, p99 := percentile(delays, 0.50), percentile(delays, 0.99)
	t.Logf("invalidation delay over %d rounds (from A's Set returning to B's first Get of the new record, B's round trip to read it included; B polls its cache with 20µs sleeps): p50 %v, p99 %v, max %v; B's cache still answered the old record %d times in all", rounds, p50, p99, delays[len(delays)-1], polls)
	if p99 > 50*time.Millisecond {
		t.Errorf("invalidation delay p99 %v, want under 50ms", p99)
	}
}

// TestEviction: with a cache of 64 KiB a connection, reading 8 MiB of
// records (4,096 of 2 KiB, each read three times) answers every record
// right: the least recently used entries are evicted, never served in
// place of others. The heap that stays in use afterwards is logged, next
// to the same reads through a client with rueidis's default cache (128 MiB
// a connection).
func TestEviction(t *testing.T) {
	ctx := context.Background()
	const n, size = 4096, 2 << 10
	record := func(i, round int) []byte {
		b := make([]byte, size)
		copy(b, fmt.Sprintf("record %d round %d ", i, round))
		for j := 32; j < size; j++ {
			b[j] = byte(i + j)
		}
		return b
	}
	run := func(cacheSize int) (heap int64) {
		c := newClientWith(t, func(o *rueidis.ClientOption) { o.CacheSizeEachConn = cacheSize })
		st := newStore(t, c, testPrefix(t, c))
		for i := range n {
			if err := st.Set(ctx, strconv.Itoa(i), record(i, 0), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for round := range 3 {
			for i := range n {
				got, err := st.Get(ctx, strconv.Itoa(i))
				if want := record(i, 0); err != nil || string(got) != string(want) {
					t.Fatalf("cache of %d bytes, round %d: Get(%d) = %.20q... (%d bytes), %v; want %.20q...", cacheSize, round, i, got, len(got), err, want)
				}
			}
		}
		// A write through the store is read back, evicted or not.
		if err := st.Set(ctx, "0", record(0, 1), time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Get(ctx, "0"); err != nil || string(got) != string(record(0, 1)) {
			t.Fatalf("cache of %d bytes: Get after a write = %.20q, %v", cacheSize, got, err)
		}
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(c)
		return int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	small := run(64 << 10)
	large := run(0) // rueidis's default
	t.Logf("heap in use after reading %d records of %d bytes (%d MiB) three times: %+d KiB with CacheSizeEachConn 64 KiB, %+d KiB with the default 128 MiB", n, size, n*size>>20, small>>10, large>>10)
}

// staleWindow cuts or freezes the store's connections (fault), writes the
// record through another client, and reads it through the store every
// millisecond: it returns how long the store still answered the old record
// from its cache, and fails the test if it answers the old record again
// once a Get failed (the store has noticed) or later than within.
func staleWindow(t *testing.T, freeze bool, within time.Duration, opt func(*rueidis.ClientOption)) {
	ctx := context.Background()
	direct := newStandalone(t)
	prefix := testPrefix(t, direct)
	w := newStore(t, direct, prefix)
	proxy := storetest.NewProxy(t, redisAddr)
	o := faultOptions(proxy.Addr())
	opt(&o)
	c, err := rueidis.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Cleanup(proxy.Thaw)
	st := newStore(t, c, prefix)
	id := randomID()
	if err := w.Set(ctx, id, []byte("old"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 2 { // cached
		if got, err := st.Get(ctx, id); err != nil || string(got) != "old" {
			t.Fatalf("Get = %q, %v", got, err)
		}
	}
	what, fault, restore := "cut", proxy.Stop, proxy.Start
	if freeze {
		what, fault, restore = "frozen", proxy.Freeze, proxy.Thaw
	}
	fault()
	faultAt := time.Now()
	if err := w.Set(ctx, id, []byte("new"), time.Hour); err != nil {
		t.Fatal(err)
	}
	var lastStale, noticed time.Duration
	stale, failed := 0, 0
	for time.Since(faultAt) < within+time.Second {
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		got, err := st.Get(c, id)
		cancel()
		at := time.Since(faultAt)
		switch {
		case err != nil:
			if failed == 0 {
				noticed = at
			}
			failed++
		case string(got) == "old":
			if failed > 0 {
				t.Fatalf("connections %s: the old record answered %v after the fault, though a Get failed at %v", what, at, noticed)
			}
			stale++
			lastStale = at
		default:
			t.Fatalf("connections %s: Get = %q while the server is unreachable", what, got)
		}
		time.Sleep(time.Millisecond)
	}
	if failed == 0 {
		t.Fatalf("connections %s: no Get failed in %v", what, within+time.Second)
	}
	if lastStale > within {
		t.Errorf("connections %s: the old record answered until %v after the fault, want within %v", what, lastStale, within)
	}
	t.Logf("connections %s: the cache answered the old record %d times, the last %v after the fault; the first Get failed %v after it", what, stale, lastStale.Round(time.Millisecond), noticed.Round(time.Millisecond))
	restore()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := st.Get(ctx, id)
		if err == nil {
			if string(got) != "new" {
				t.Fatalf("connections %s, then restored: Get = %q, want \"new\"", what, got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections %s, then restored: Get still fails: %v", what, err)
		}
	}
}

// TestConnectionLoss: when the connections that carry the cache's
// invalidations are cut, or freeze, while another client changes a cached
// record, the store answers the old record only until it notices (rueidis
// drops a connection's cache when it breaks, or when a PING goes
// unanswered for ConnWriteTimeout; the store stops trusting its cache after
// a failed call), never after, and answers the new record once the server
// is back. The windows are logged; with the fault tests' options (a PING
// every 100ms of an idle connection, answered within 250ms) a cut is
// noticed at once and a freeze within about 450ms (two KeepAlives and
// ConnWriteTimeout).
func TestConnectionLoss(t *testing.T) {
	if redisCluster != nil {
		t.Skip("SESSION_REDIS_CLUSTER is set: the test proxies one standalone server (SESSION_REDIS_ADDR) and runs without it")
	}
	// The bounds asserted leave room for a loaded machine.
	t.Run("Cut", func(t *testing.T) { staleWindow(t, false, 500*time.Millisecond, func(*rueidis.ClientOption) {}) })
	t.Run("Freeze", func(t *testing.T) { staleWindow(t, true, 2*time.Second, func(*rueidis.ClientOption) {}) })
}

// TestFailureStopsCache: with rueidis's slow defaults for noticing a frozen
// connection (a PING every second when idle, answered within 10 seconds),
// a cached record changed by another client is answered from the cache
// during a freeze only until one of the store's calls fails: then every
// Get asks the server (and fails while it is frozen), and the first GET
// that succeeds after the thaw answers the new record.
func TestFailureStopsCache(t *testing.T) {
	if redisCluster != nil {
		t.Skip("SESSION_REDIS_CLUSTER is set: the test proxies one standalone server (SESSION_REDIS_ADDR) and runs without it")
	}
	ctx := context.Background()
	direct := newStandalone(t)
	prefix := testPrefix(t, direct)
	w := newStore(t, direct, prefix)
	proxy := storetest.NewProxy(t, redisAddr)
	o := clientOptions(proxy.Addr())
	o.ForceSingleClient = true
	o.DisableRetry = true
	c, err := rueidis.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Cleanup(proxy.Thaw)
	st := newStore(t, c, prefix)
	id := randomID()
	if err := w.Set(ctx, id, []byte("old"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := st.Get(ctx, id); err != nil || string(got) != "old" {
			t.Fatalf("Get = %q, %v", got, err)
		}
	}
	get := func() ([]byte, error) {
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		return st.Get(c, id)
	}
	proxy.Freeze()
	if err := w.Set(ctx, id, []byte("new"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := get(); err != nil || string(got) != "old" {
		t.Fatalf("Get right after the freeze = %q, %v; want the old record from the cache (nothing has noticed yet)", got, err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = st.Set(short, randomID(), []byte("x"), time.Hour)
	cancel()
	if err == nil {
		t.Fatal("Set with the connections frozen succeeded")
	}
	for i := range 3 {
		if got, err := get(); err == nil {
			t.Fatalf("Get %d after a failed Set = %q, want an error: the cache is not to be trusted", i, got)
		}
	}
	proxy.Thaw()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := get()
		if err == nil {
			if string(got) != "new" {
				t.Fatalf("Get after the thaw = %q, want \"new\"", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get still fails after the thaw: %v", err)
		}
	}
	// Trusted again: the record is read from the cache.
	if got, err := get(); err != nil || string(got) != "new" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

// TestCacheTTLBound: when the server's invalidations never reach the
// cache (here, the store's client asks the server to send them to another
// connection: CLIENT TRACKING ON OPTIN REDIRECT <id>), a record that
// another client changed is answered from the cache for at most CacheTTL
// after the Get that read it from the server, and the new one after that.
func TestCacheTTLBound(t *testing.T) {
	if redisCluster != nil {
		t.Skip("SESSION_REDIS_CLUSTER is set: the redirection of invalidations needs one server (SESSION_REDIS_ADDR)")
	}
	ctx := context.Background()
	direct := newStandalone(t)
	sink, release := direct.Dedicate() // the connection the invalidations go to
	t.Cleanup(release)
	sinkID, err := sink.Do(ctx, sink.B().ClientId().Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	c := newStandaloneWith(t, func(o *rueidis.ClientOption) {
		o.ClientTrackingOptions = []string{"OPTIN", "REDIRECT", strconv.FormatInt(sinkID, 10)}
	})
	prefix := testPrefix(t, direct)
	const cacheTTL = 300 * time.Millisecond
	st, err := rueidisstore.New(ctx, c, rueidisstore.Config{Prefix: prefix, CacheTTL: cacheTTL})
	if err != nil {
		t.Fatal(err)
	}
	w := newStore(t, direct, prefix)
	id := randomID()
	if err := w.Set(ctx, id, []byte("old"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, id); err != nil || string(got) != "old" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	// The entry expires CacheTTL after the Get that read it began; it has
	// begun by now.
	read := time.Now()
	if err := w.Set(ctx, id, []byte("new"), time.Hour); err != nil {
		t.Fatal(err)
	}
	stale := 0
	for {
		before := time.Now()
		got, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) == "new" {
			break
		}
		if before.Sub(read) > cacheTTL {
			t.Fatalf("the old record answered %v after it was read, past CacheTTL (%v)", before.Sub(read), cacheTTL)
		}
		stale++
		time.Sleep(5 * time.Millisecond)
	}
	if stale == 0 {
		t.Fatal("the new record answered at once: the invalidation reached the cache, and the test shows nothing")
	}
	t.Logf("without invalidations, the old record answered %d times, the new one %v after the old was read (CacheTTL %v)", stale, time.Since(read).Round(time.Millisecond), cacheTTL)
}
