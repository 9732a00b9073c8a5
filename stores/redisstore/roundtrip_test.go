package redisstore_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

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
	st := newStore(t, c, testPrefix(t, admin))
	const idle, interval = 24 * time.Hour, time.Minute
	b := storetest.NewBrowser(t, storetest.NewApp(t, session.Config[string, string]{Store: st, IdleTimeout: idle, TouchInterval: interval}))

	// Warm up: a connection in the pool and the script in the server's
	// cache, so that neither is counted below.
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	b.Expect("POST", "/visit", "1")
	visits := 1
	signedIn := b.Cookie() // restored by the kinds that change it

	// The steps of the requests and of their preparation.
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
	// dueTouch cuts the record's TTL as if two touch intervals had passed
	// since the last write or touch; the next request then touches once.
	dueTouch := func() { admin.PExpire(ctx, st.Key(storetest.SessionID(signedIn)), idle-2*interval) }

	kinds := []struct {
		name   string
		n      int
		before func() // before each request, not counted
		req    func()
		want   []string // the store client's round trips per request
	}{
		{"no cookie, session not changed", 100, cookie(""), expect("GET", "/", "user= flash="), nil},
		{"sign-in without a session (new id, flash)", 100, cookie(""), expect("POST", "/login", "ok"), []string{"set"}},
		{"sign-in with a session (RegenerateID(true), flash)", 100, steps(cookie(""), expect("POST", "/visit", "1")), expect("POST", "/login", "ok"), []string{"get+pttl", "set", "evalsha", "del"}},
		{"read-only", 100, cookie(signedIn), read, []string{"get+pttl"}},
		{"one value changed", 100, cookie(signedIn), visit, []string{"get+pttl", "evalsha"}},
		{"read-only, touch due", 20, steps(cookie(signedIn), dueTouch), read, []string{"get+pttl", "evalsha"}},
		{"read-only right after a touch", 20, steps(cookie(signedIn), dueTouch, read), read, []string{"get+pttl"}},
		{"sign-out (Destroy)", 100, steps(cookie(""), expect("POST", "/login", "ok"), expect("GET", "/", "user=ada flash=Welcome back")), expect("POST", "/destroy", "ok"), []string{"get+pttl", "del"}},
	}

	var table strings.Builder
	table.WriteString("| request kind | requests | round trips per request (client) | client calls per request | server commands per request (INFO commandstats, which counts the script's own GET and SET too) |\n")
	table.WriteString("|---|---:|---:|---|---|\n")
	for _, k := range kinds {
		delta := make(map[string]int64)
		for i := range k.n {
			k.before()
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
