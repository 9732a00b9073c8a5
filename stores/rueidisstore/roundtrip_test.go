package rueidisstore_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

// privateRedis starts a redis-server of its own on a free loopback port and
// returns its address: its INFO commandstats then count this test's
// commands alone, whatever else runs against the shared server. The server
// is stopped (by its process id) when the test ends. Without redis-server
// on the PATH the test is skipped (fails with SESSION_REQUIRE_SERVERS=1).
func privateRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		storetest.Unavailable(t, "redis-server, for a private server", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--logfile", "")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not come up", addr)
		}
	}
}

// quietClient returns a client of addr that sends nothing on its own: no
// PING of idle connections (Dialer.KeepAlive < 0), and every connection
// it pipelines on open already (rueidis dials them when first used, and
// each dial runs HELLO, CLIENT TRACKING and CLIENT SETINFO), so that the
// server's counts are the requests' alone.
func quietClient(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	o := clientOptions(addr)
	o.ForceSingleClient = true
	o.Dialer = netDialer(2*time.Second, -1)
	c, err := rueidis.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// A plain command with a key goes to a connection picked at random:
	// 200 of them reach each of the 2^PipelineMultiplex connections (2 or
	// 4 by default) but once in 10^25.
	for i := range 200 {
		if err := c.Do(context.Background(), c.B().Get().Key("warm:"+strconv.Itoa(i)).Build()).Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.Fatal(err)
		}
	}
	return c
}

// tripClient is a rueidis.Client that records the round trips the store
// makes through it: one entry a command ("get", "set", "evalsha", "del"),
// one a DoMulti (its commands joined by "+"), and "cached get" for a
// DoCache that the cache did not answer (MULTI, CLIENT CACHING YES, PTTL,
// GET, EXEC in one round trip); a DoCache the cache answered is none.
type tripClient struct {
	rueidis.Client
	mu    sync.Mutex
	trips []string
}

func (c *tripClient) add(trip string) {
	c.mu.Lock()
	c.trips = append(c.trips, trip)
	c.mu.Unlock()
}

// take returns the round trips recorded since the last take.
func (c *tripClient) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.trips
	c.trips = nil
	return t
}

func (c *tripClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.add(strings.ToLower(cmd.Commands()[0]))
	return c.Client.Do(ctx, cmd)
}

func (c *tripClient) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	names := make([]string, len(multi))
	for i, cmd := range multi {
		names[i] = strings.ToLower(cmd.Commands()[0])
	}
	c.add(strings.Join(names, "+"))
	return c.Client.DoMulti(ctx, multi...)
}

func (c *tripClient) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	name := strings.ToLower(cmd.Commands()[0])
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.add("cached " + name)
	}
	return r
}

// serverCommands returns the commands the server runs for a round trip of
// tripClient: a DoCache miss is five; a Lua compare-and-set that writes
// runs its own GET and SET, which INFO commandstats counts too.
func serverCommands(trip string) []string {
	switch trip {
	case "cached get":
		return []string{"client|caching", "multi", "pttl", "get", "exec"}
	case "evalsha":
		return []string{"evalsha", "get", "set"}
	}
	return strings.Split(trip, "+")
}

// commandStats returns the calls per command from INFO commandstats
// ("cmdstat_get:calls=12,usec=..." gives "get": 12).
func commandStats(t *testing.T, c rueidis.Client) map[string]int64 {
	t.Helper()
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	stats := make(map[string]int64)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, field := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("commandstats line %q: %v", line, err)
				}
				stats[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	if len(stats) == 0 {
		t.Fatalf("no cmdstat_ lines in INFO commandstats: %q", info)
	}
	return stats
}

// counted runs req and returns the round trips of c during it and the
// commands the server ran meanwhile (INFO commandstats before and after,
// the first INFO left out).
func counted(t *testing.T, c *tripClient, admin rueidis.Client, req func()) ([]string, map[string]int64) {
	t.Helper()
	c.take()
	before := commandStats(t, admin)
	req()
	trips := c.take()
	delta := make(map[string]int64)
	for name, n := range commandStats(t, admin) {
		if d := n - before[name]; d != 0 && name != "info" {
			delta[name] = d
		}
	}
	return trips, delta
}

// TestRoundTrips counts the round trips of requests through the middleware
// with the store and its cache, per kind of request, on a private server
// (privateRedis) so that the server's counts are exact: the store's client
// records its round trips (tripClient), and INFO commandstats must show
// exactly the commands those round trips carry. A read-only request whose
// session is in the cache makes none; the first read of a session makes
// one (a DoCache miss); the writes are redisstore's (SET ... NX for a new
// id, EVALSHA for a change or a tombstone, DEL for a sign-out). The counts
// are logged as a Markdown table.
func TestRoundTrips(t *testing.T) {
	addr := privateRedis(t)
	admin := quietClient(t, addr) // INFO; not counted
	c := &tripClient{Client: quietClient(t, addr)}
	st := newStore(t, c, "rt:")
	cfg := session.Config[string, string]{Store: st, IdleTimeout: 24 * time.Hour, TouchInterval: time.Minute}
	b := storetest.NewBrowser(t, storetest.NewApp(t, cfg))
	// Another instance, for sessions this one has never read.
	other := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: newStore(t, quietClient(t, addr), "rt:")}))

	// Warm up: the connections open, the scripts in the server's cache.
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	b.Expect("POST", "/visit", "1")
	visits := 1
	signedIn := b.Cookie() // restored by the kinds that change it

	expect := func(method, path, want string) func() { return func() { b.Expect(method, path, want) } }
	cookie := func(value string) func() { return func() { b.SetCookie(value) } }
	steps := func(fs ...func()) func() {
		return func() {
			for _, f := range fs {
				f()
			}
		}
	}
	read := expect("GET", "/", "user=ada flash=")
	visit := func() {
		visits++
		b.Expect("POST", "/visit", strconv.Itoa(visits))
	}
	// A session started by the other instance, unknown to this one's cache.
	fromOther := func() {
		other.SetCookie("")
		other.Expect("POST", "/visit", "1")
		b.SetCookie(other.Cookie())
	}
	// After this store's own write, the next Get's round trip is a DoCache
	// miss, or (when the invalidation has not reached the cache yet) the
	// cached old record and a plain GET: one round trip either way.
	afterWrite := []string{"cached get", "get"}
	// settle reads the browser's session until a read is answered from the
	// cache: in the second case above, the old record stays in the cache
	// until the invalidation arrives, and the next Get makes a round trip
	// again. Requests through app.Test take about 40µs, less than the
	// invalidation may take to be applied.
	settle := func() {
		for range 1000 {
			c.take()
			b.Expect("GET", "/", "user=ada flash=")
			if len(c.take()) == 0 {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
		t.Fatal("the session is not answered from the cache after 1000 reads")
	}
	cached := steps(cookie(signedIn), settle)

	kinds := []struct {
		name   string
		n      int
		before func() // before each request, not counted
		req    func()
		want   [][]string // the round trips per request; a round trip may be one of several
	}{
		{"no cookie, session not changed", 100, cookie(""), expect("GET", "/", "user= flash="), nil},
		{"read-only, session in the cache", 100, cached, read, nil},
		{"read-only, first read of the session by this instance", 100, fromOther, expect("GET", "/", "user= flash="), [][]string{{"cached get"}}},
		{"one value changed, session in the cache", 100, cached, visit, [][]string{{"evalsha"}}},
		{"one value changed, right after another", 100, steps(cookie(signedIn), visit), visit, [][]string{afterWrite, {"evalsha"}}},
		{"read-only, right after a change", 100, steps(cookie(signedIn), visit), read, [][]string{afterWrite}},
		{"sign-in without a session (new id, flash)", 100, cookie(""), expect("POST", "/login", "ok"), [][]string{{"set"}}},
		{"sign-in with a session (RegenerateID(true), flash)", 100, steps(cookie(""), expect("POST", "/visit", "1")), expect("POST", "/login", "ok"), [][]string{{"cached get"}, {"set"}, {"evalsha"}, {"del"}}},
		{"sign-out (Destroy), session in the cache", 100, steps(cookie(""), expect("POST", "/login", "ok"), expect("GET", "/", "user=ada flash=Welcome back"), settle), expect("POST", "/destroy", "ok"), [][]string{{"del"}}},
	}

	var table strings.Builder
	table.WriteString("| request kind | requests | round trips per request | store client's calls (first request) | server commands per request (INFO commandstats; a script's own GET and SET included) |\n")
	table.WriteString("|---|---:|---:|---|---|\n")
	for _, k := range kinds {
		total := make(map[string]int64)
		var first []string
		for i := range k.n {
			k.before()
			trips, delta := counted(t, c, admin, k.req)
			if i == 0 {
				first = trips
			}
			ok := len(trips) == len(k.want)
			want := make(map[string]int64)
			for j := 0; ok && j < len(trips); j++ {
				ok = slices.Contains(k.want[j], trips[j])
				for _, cmd := range serverCommands(trips[j]) {
					want[cmd]++
				}
			}
			if !ok {
				t.Errorf("%s, request %d: round trips %q, want %q", k.name, i, trips, k.want)
			} else if !maps.Equal(delta, want) {
				t.Errorf("%s, request %d: the server ran %v for the round trips %q, want %v", k.name, i, delta, trips, want)
			}
			for name, d := range delta {
				total[name] += d
			}
		}
		fmt.Fprintf(&table, "| %s | %d | %d | %s | %s |\n", k.name, k.n, len(k.want), calls(first), perRequest(total, k.n))
	}
	t.Logf("round trips per request through the middleware with the rueidis store (cache on):\n\n%s", table.String())
	t.Logf("Gets that found their own write missing from the cache and asked the server: %d", st.Rechecks())
}

// calls formats a request's round trips for the table.
func calls(trips []string) string {
	if len(trips) == 0 {
		return "none"
	}
	out := make([]string, len(trips))
	for i, t := range trips {
		if t == "cached get" {
			out[i] = "DoCache GET (miss)"
		} else {
			out[i] = strings.ToUpper(t)
		}
	}
	return strings.Join(out, ", ")
}

// perRequest formats commandstats deltas divided by the number of requests,
// for example "GET 2, EVALSHA 1, SET 1".
func perRequest(delta map[string]int64, n int) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(delta)) {
		if d := delta[name]; d != 0 {
			v := float64(d) / float64(n)
			out = append(out, strings.ToUpper(name)+" "+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// TestTouchOncePerInterval: read-only requests of one session, sent one
// after the other for 1.5 seconds with TouchInterval 250ms, extend it by a
// conditional rewrite (EVALSHA) at most once per interval, counted by the
// store's client and by the private server's INFO commandstats; between
// touches they make no round trip but the one read after each touch. The
// middleware's clock cannot be set from outside its package, so the test
// runs on the real one.
func TestTouchOncePerInterval(t *testing.T) {
	addr := privateRedis(t)
	admin := quietClient(t, addr)
	c := &tripClient{Client: quietClient(t, addr)}
	st := newStore(t, c, "touch:")
	const interval, span = 250 * time.Millisecond, 1500 * time.Millisecond
	b := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: st, IdleTimeout: time.Hour, TouchInterval: interval}))
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back") // writes: the flash is gone
	// Until a read is answered from the cache (see TestRoundTrips' settle).
	for i := 0; ; i++ {
		c.take()
		b.Expect("GET", "/", "user=ada flash=")
		if len(c.take()) == 0 {
			break
		}
		if i == 1000 {
			t.Fatal("the session is not answered from the cache after 1000 reads")
		}
		time.Sleep(100 * time.Microsecond)
	}
	requests := 0
	var elapsed time.Duration
	trips, delta := counted(t, c, admin, func() {
		start := time.Now()
		for time.Since(start) < span {
			b.Expect("GET", "/", "user=ada flash=")
			requests++
		}
		elapsed = time.Since(start)
	})
	touches, misses, rechecks := 0, 0, 0
	for _, trip := range trips {
		switch trip {
		case "evalsha":
			touches++
		case "cached get":
			misses++
		case "get":
			rechecks++
		default:
			t.Errorf("unexpected round trip %q", trip)
		}
	}
	most := int(elapsed/interval) + 1
	t.Logf("%d read-only requests in %v with TouchInterval %v: %d touches (EVALSHA; server: %d); %d DoCache misses and %d plain GETs (the cache still held the record from before a touch), the other %d requests answered from the cache", requests, elapsed.Round(time.Millisecond), interval, touches, delta["evalsha"], misses, rechecks, requests-misses-rechecks)
	if touches > most || touches < 2 {
		t.Errorf("%d touches in %v, want between 2 and %d (at most one per %v)", touches, elapsed, most, interval)
	}
	if delta["evalsha"] != int64(touches) {
		t.Errorf("the server ran EVALSHA %d times, the client sent it %d times", delta["evalsha"], touches)
	}
	// Each touch's invalidation empties the cache's entry once, and one
	// DoCache reads the record again.
	if misses > touches {
		t.Errorf("%d DoCache misses for %d touches: more than one after each", misses, touches)
	}
	// The session was extended: the record lives about an IdleTimeout.
	ms, err := admin.Do(context.Background(), admin.B().Pttl().Key(st.Key(b.ID())).Build()).AsInt64()
	if err != nil || ms < (time.Hour-interval-time.Second).Milliseconds() {
		t.Errorf("PTTL of the session = %dms, %v; want about an hour", ms, err)
	}
}

var _ rueidis.Client = (*tripClient)(nil)
