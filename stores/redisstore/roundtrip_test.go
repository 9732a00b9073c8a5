package redisstore_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/redisstore"
	"github.com/fibersession/session/stores/storetest"
)

// tripCounter is a go-redis hook that records every round trip a client
// makes: one entry per command, one per pipeline (its commands joined by
// "+").
type tripCounter struct {
	mu    sync.Mutex
	trips []string
}

func (h *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (h *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, c := range cmds {
			names[i] = c.Name()
		}
		h.add(strings.Join(names, "+"))
		return next(ctx, cmds)
	}
}

func (h *tripCounter) add(name string) {
	h.mu.Lock()
	h.trips = append(h.trips, name)
	h.mu.Unlock()
}

// take returns the round trips recorded since the last take.
func (h *tripCounter) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.trips
	h.trips = nil
	return t
}

// commandStats returns the calls per command from INFO commandstats
// ("cmdstat_get:calls=12,usec=..." gives "get": 12).
func commandStats(t *testing.T, c redis.UniversalClient) map[string]int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	stats := make(map[string]int64)
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
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

// TestRoundTrips measures the round trips a request through the middleware
// costs with this store, per kind of request. The counts asserted are the
// client's own (a go-redis hook on the store's client: one per command, one
// per pipeline). The server's INFO commandstats deltas are only logged, as a
// Markdown table, because other test binaries may use the same Redis at the
// same time; run the test alone (-run RoundTrips -v) for a clean table.
func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	admin := newClient(t)  // INFO and TTL changes; not counted
	c := newClient(t)      // the store's client
	hook := &tripCounter{} // counts c's round trips
	c.AddHook(hook)
	st := redisstore.New(c, redisstore.Config{Prefix: testPrefix(t, admin)})
	const idle, interval = 24 * time.Hour, time.Minute
	b := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: st, IdleTimeout: idle, TouchInterval: interval}))

	// Warm up: a connection in the pool and the script in the server's
	// cache, so that neither is counted below.
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	b.Expect("POST", "/visit", "1")
	visits := 1
	var signedIn string // the signed-in cookie, restored by kinds that change it
	signedIn = b.Cookie()

	type kind struct {
		name   string
		n      int
		before func() // before each request, not counted
		req    func()
		want   []string // the store client's round trips per request
	}
	kinds := []kind{
		{
			name: "no cookie, session not changed", n: 100,
			before: func() { b.SetCookie("") },
			req:    func() { b.Expect("GET", "/", "user= flash=") },
			want:   nil,
		},
		{
			name: "sign-in without a session (new id, flash)", n: 100,
			before: func() { b.SetCookie("") },
			req:    func() { b.Expect("POST", "/login", "ok") },
			want:   []string{"set"},
		},
		{
			name: "sign-in with a session (RegenerateID(true), flash)", n: 100,
			before: func() {
				b.SetCookie("")
				b.Expect("POST", "/visit", "1")
			},
			req:  func() { b.Expect("POST", "/login", "ok") },
			want: []string{"get+pttl", "set", "del"},
		},
		{
			name: "read-only", n: 100,
			before: func() { b.SetCookie(signedIn) },
			req:    func() { b.Expect("GET", "/", "user=ada flash=") },
			want:   []string{"get+pttl"},
		},
		{
			name: "one value changed", n: 100,
			before: func() { b.SetCookie(signedIn) },
			req: func() {
				visits++
				b.Expect("POST", "/visit", strconv.Itoa(visits))
			},
			want: []string{"get+pttl", "evalsha"},
		},
		{
			// The record's TTL is cut as if two touch intervals had passed
			// since the last write or touch; the request then touches once.
			name: "read-only, touch due", n: 20,
			before: func() {
				b.SetCookie(signedIn)
				admin.PExpire(ctx, st.Key(storetest.SessionID(signedIn)), idle-2*interval)
			},
			req:  func() { b.Expect("GET", "/", "user=ada flash=") },
			want: []string{"get+pttl", "pexpire"},
		},
		{
			name: "read-only right after a touch", n: 20,
			before: func() {
				b.SetCookie(signedIn)
				admin.PExpire(ctx, st.Key(storetest.SessionID(signedIn)), idle-2*interval)
				b.Expect("GET", "/", "user=ada flash=") // touches
			},
			req:  func() { b.Expect("GET", "/", "user=ada flash=") },
			want: []string{"get+pttl"},
		},
		{
			name: "sign-out (Destroy)", n: 100,
			before: func() {
				b.SetCookie("")
				b.Expect("POST", "/login", "ok")
				b.Expect("GET", "/", "user=ada flash=Welcome back")
			},
			req:  func() { b.Expect("POST", "/destroy", "ok") },
			want: []string{"get+pttl", "del"},
		},
	}

	var table strings.Builder
	table.WriteString("| request kind | requests | round trips per request (client) | client calls per request | server commands per request (INFO commandstats, which counts the script's own GET and SET too) |\n")
	table.WriteString("|---|---:|---:|---|---|\n")
	for _, k := range kinds {
		delta := make(map[string]int64)
		for i := range k.n {
			if k.before != nil {
				k.before()
			}
			hook.take()
			// The server's counts are taken around the request alone, so
			// that the preparation in before is not counted. The first INFO
			// is in the difference; it is left out.
			statsBefore := commandStats(t, admin)
			k.req()
			got := hook.take()
			for name, n := range commandStats(t, admin) {
				delta[name] += n - statsBefore[name]
			}
			if !slices.Equal(got, k.want) {
				t.Errorf("%s, request %d: round trips %q, want %q", k.name, i, got, k.want)
			}
		}
		delete(delta, "info")
		fmt.Fprintf(&table, "| %s | %d | %d | %s | %s |\n", k.name, k.n, len(k.want), calls(k.want), perRequest(delta, k.n))
	}
	t.Logf("round trips per request through the middleware with the Redis store:\n\n%s", table.String())

	// At most one touch per interval also holds without help: a record
	// touched a moment ago is not touched again.
	b.SetCookie(signedIn)
	if ttl := admin.PTTL(ctx, st.Key(storetest.SessionID(signedIn))).Val(); ttl < idle-interval {
		t.Errorf("after the touches the record has %v left, want at least %v", ttl, idle-interval)
	}
}

// calls formats a request's round trips for the table.
func calls(trips []string) string {
	if len(trips) == 0 {
		return "none"
	}
	out := make([]string, len(trips))
	for i, t := range trips {
		if strings.Contains(t, "+") {
			t = strings.ToUpper(strings.ReplaceAll(t, "+", " + ")) + " (pipeline)"
		} else {
			t = strings.ToUpper(t)
		}
		out[i] = t
	}
	return strings.Join(out, ", ")
}

// perRequest formats commandstats deltas divided by the number of requests,
// for example "get 2, pttl 1, evalsha 1, set 1".
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
