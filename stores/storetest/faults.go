package storetest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// FaultOptions tunes RunFaults to a client.
type FaultOptions struct {
	// Reconnect is how long requests may still fail once the server is
	// back, for clients that wait before they dial again (go-redis after a
	// run of failed dials, a NATS connection between reconnect attempts).
	// Zero: the first request after the server is back must succeed.
	Reconnect time.Duration
}

// RunFaults checks the middleware (NewApp with StoreTimeout timeout) over a
// store that reaches its server at target through a Proxy: newStoreAt
// returns a store whose client dials addr, the proxy's address, and
// releases the client with t.Cleanup (closing it stops its goroutines).
//
// Down: with the proxy stopped, every request that needs the store
// (reading, writing, signing in and out, starting a session) gets the
// ErrorHandler's 500 "Internal Server Error" within timeout plus a second,
// not a hang or a panic, and leaves the browser's cookie alone; a request
// that needs no store call is still served. Once the proxy is back,
// requests succeed again (at once, or within FaultOptions.Reconnect), with
// the same app and store, and the session signed in before the fault is
// still there.
//
// CutUnderLoad and FreezeUnderLoad: several browsers sign in, count visits
// and read their count concurrently while the proxy first cuts every
// connection and refuses new ones (Stop), then, in the second subtest,
// holds every connection open without forwarding a byte (Freeze). See
// faultLoad for what they check: in short, every request answers within
// timeout plus a second, each failure is the ErrorHandler's 500 with no
// cookie, the same app recovers, no acknowledged visit is lost and no count
// goes backwards.
//
// Last, once the subtests' cleanups have closed their clients and stopped
// their proxies, no goroutine is left over: runtime.NumGoroutine comes back
// to what it was before the first subtest.
//
// At most one FaultOptions value may be passed.
func RunFaults(t *testing.T, newStoreAt func(t *testing.T, addr string) session.Store, target string, timeout time.Duration, opts ...FaultOptions) {
	if timeout <= 0 || len(opts) > 1 {
		t.Fatal("storetest.RunFaults: the timeout must be positive, and at most one FaultOptions value")
	}
	var o FaultOptions
	if len(opts) == 1 {
		o = opts[0]
	}
	// fasthttp starts a goroutine of its own, for good, with the first
	// request it serves; have it running before counting.
	warm := fiber.New(fiber.Config{DisableStartupMessage: true})
	if resp, err := warm.Test(httptest.NewRequest("GET", "/", nil), -1); err == nil {
		resp.Body.Close()
	}
	goroutines := runtime.NumGoroutine()

	t.Run("Down", func(t *testing.T) { testDown(t, newStoreAt, target, timeout, o) })
	t.Run("CutUnderLoad", func(t *testing.T) { testUnderLoad(t, newStoreAt, target, timeout, o, false) })
	t.Run("FreezeUnderLoad", func(t *testing.T) { testUnderLoad(t, newStoreAt, target, timeout, o, true) })

	// The subtests' cleanups closed the clients and stopped the proxies;
	// what the clients still run (a cancelled query's cleanup, say) ends
	// soon after.
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines once the faults' clients were closed, %d before:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testDown is RunFaults' first part: one request of each kind with the
// server unreachable, then recovery.
func testDown(t *testing.T, newStoreAt func(t *testing.T, addr string) session.Store, target string, timeout time.Duration, o FaultOptions) {
	proxy := NewProxy(t, target)
	st := newStoreAt(t, proxy.Addr())
	b := NewBrowser(t, NewApp(t, session.Config[string, string]{Store: st, StoreTimeout: timeout}))
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	signedIn := b.Cookie()

	proxy.Stop()
	const failed = "Internal Server Error"
	bound := timeout + time.Second
	for _, r := range []struct {
		name, method, path string
		cookie             bool // send the signed-in cookie
		status             int
		body               string
	}{
		{"read", "GET", "/", true, 500, failed},
		{"write", "POST", "/visit", true, 500, failed},
		{"sign-in", "POST", "/login", true, 500, failed},
		{"new session", "POST", "/login", false, 500, failed},
		{"sign-out", "POST", "/logout", true, 500, failed},
		{"read again", "GET", "/", true, 500, failed}, // still down, still quick
		{"no store call", "GET", "/", false, http.StatusOK, "user= flash="},
	} {
		cookie := ""
		if r.cookie {
			cookie = signedIn
		}
		b.SetCookie(cookie)
		start := time.Now()
		status, body := b.Do(r.method, r.path)
		took := time.Since(start)
		if status != r.status || body != r.body {
			t.Errorf("%s (%s %s) with the server down = %d %q, want %d %q", r.name, r.method, r.path, status, body, r.status, r.body)
		}
		if took > bound {
			t.Errorf("%s (%s %s) with the server down took %v, want at most %v", r.name, r.method, r.path, took, bound)
		}
		if b.Cookie() != cookie {
			t.Errorf("%s (%s %s) with the server down changed the cookie from %q to %q", r.name, r.method, r.path, cookie, b.Cookie())
		}
	}

	// Back up: the same app recovers on its own.
	proxy.Start()
	b.SetCookie(signedIn)
	for deadline := time.Now().Add(o.Reconnect); ; time.Sleep(50 * time.Millisecond) {
		status, body := b.Do("GET", "/")
		if status == http.StatusOK {
			if body != "user=ada flash=" {
				t.Fatalf("after the server came back: %q, want the signed-in session %q", body, "user=ada flash=")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still fail %v after the server came back: %d %q", o.Reconnect, status, body)
		}
	}
	b.Expect("POST", "/visit", "1")
	b.Expect("POST", "/login", "ok")
	b.Expect("GET", "/", "user=ada flash=Welcome back")
	b.Expect("POST", "/logout", "ok")
	b.Expect("GET", "/", "user= flash=Signed out")
}

// faultBody is the answer of the ErrorHandler the load tests install.
const faultBody = "storetest: the session store failed"

// The load tests' browsers, and what each must see in every phase before
// the test moves on.
const (
	loadBrowsers   = 4
	warmSuccesses  = 2 // answered 200 before the fault
	faultFailures  = 3 // sent and answered during the fault
	afterSuccesses = 3 // sent after the server is back and answered 200
)

// The requests of a load browser, and the order it sends them in (each
// browser starts at another place in it).
type loadOp int

const (
	opVisit loadOp = iota // POST /count: the count, plus one
	opRead                // GET /count: "user=<user> visits=<count>"
	opLogin               // POST /login (NewApp's): the same values under a new id, the old one retired
)

var loadRound = []loadOp{opVisit, opRead, opVisit, opLogin, opVisit, opVisit, opRead, opLogin, opRead}

func (op loadOp) String() string {
	return [...]string{"POST /count", "GET /count", "POST /login"}[op]
}

// faultLoad is the shared state of a load test: the phases and what the
// browsers have seen. mu guards what is below it; progress is signalled
// after every answer.
type faultLoad struct {
	t        *testing.T
	app      *fiber.App
	what     string        // "cut" or "frozen"
	bound    time.Duration // the longest a request may take
	handled  atomic.Int64  // calls of the ErrorHandler
	failed   atomic.Bool   // a browser reported an error and stopped
	stop     atomic.Bool   // the browsers stop after their current request
	armed    atomic.Pointer[func()]
	progress chan struct{}

	mu           sync.Mutex
	firedBy      *loadBrowser // whose visit broke the connections, until it has seen the answer
	faultAt      time.Time    // the fault is in place (Stop or Freeze returned)
	restoreAt    time.Time    // just before Start or Thaw
	quiet        bool         // the browsers are done; every request must succeed
	failures     int          // 500s answered, all phases
	landed       int          // visits answered 500 whose write was found carried out
	lostBySignIn int          // sessions found gone after a failed sign-in
}

// loadBrowser is one browser of a load test. Its fields are its own
// goroutine's, except the counters the test reads under faultLoad.mu.
type loadBrowser struct {
	l      *faultLoad
	index  int
	cookie string
	next   int // index into loadRound

	signedIn bool
	// The count stored in the session the cookie names is within [lo, hi]:
	// lo is the last count this browser saw answered (by a visit or a
	// read), and hi adds one for each visit answered 500 since its last
	// acknowledged visit, whose write may still have been carried out.
	lo, hi int
	// atRisk: a sign-in of this session answered 500. It may have retired
	// the session's record (the new record written, the old one replaced
	// by a tombstone or deleted, and the answer lost), or may still do so
	// (the write held by a frozen connection or a client's reconnect
	// buffer), which signs the browser out: its cookie still names the old
	// id. The browser does not sign in again while at risk, so the loss, if
	// any, shows as a fresh session.
	atRisk bool

	// Under faultLoad.mu:
	ok, inFault, okAfter int // answered 200; failed during the fault; 200 after the restore
}

// testUnderLoad runs loadBrowsers browsers, each in a goroutine of its
// own, through NewApp over a store behind a proxy. Once they are busy, the
// next visit breaks the proxy (Stop, or Freeze when freeze is true) from
// its handler, after its session was read and before it is saved, so that
// a save is on its way when the connections break; the other browsers'
// requests are wherever they are. It checks:
//
//   - every request answers within timeout plus a second;
//   - a request that fails is answered by the ErrorHandler (the test's own,
//     which answers 500 faultBody and counts its calls) and sets no cookie;
//     the visit that broke the proxy fails, and so does every request sent
//     during the fault and answered before the restore;
//   - after the restore (Start or Thaw; after a freeze, the bytes held
//     meanwhile reach the server then) the same app serves every browser
//     again within FaultOptions.Reconnect plus ten seconds;
//   - no acknowledged visit is lost and no count goes backwards: a visit
//     answers at least one more than the last count the browser saw, and at
//     most one more for each of its visits that failed since its last
//     acknowledged one (a failed save may still have been carried out: see
//     the README's "When the store fails"); a read answers a count within
//     the same bounds; at the end, with no other traffic, a visit and a
//     read agree exactly;
//   - a session is never lost, unless a sign-in of it failed: a failed
//     rotation may have retired the old record all the same (logged and
//     counted).
func testUnderLoad(t *testing.T, newStoreAt func(t *testing.T, addr string) session.Store, target string, timeout time.Duration, o FaultOptions, freeze bool) {
	proxy := NewProxy(t, target)
	st := newStoreAt(t, proxy.Addr())
	t.Cleanup(proxy.Thaw) // before the client is closed, should the test end frozen
	l := &faultLoad{t: t, what: "cut", bound: timeout + time.Second, progress: make(chan struct{}, 1)}
	fault, restore := proxy.Stop, proxy.Start
	if freeze {
		l.what, fault, restore = "frozen", proxy.Freeze, proxy.Thaw
	}
	l.app = NewApp(t, session.Config[string, string]{
		Store:        st,
		StoreTimeout: timeout,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			l.handled.Add(1)
			return c.Status(http.StatusInternalServerError).SendString(faultBody)
		},
	})
	browsers := make([]*loadBrowser, loadBrowsers)
	l.app.Post("/count", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		v, _ := s.Get("visits")
		n, _ := strconv.Atoi(v)
		s.Set("visits", strconv.Itoa(n+1))
		if f := l.armed.Swap(nil); f != nil {
			i, _ := strconv.Atoi(c.Get("X-Browser"))
			l.mu.Lock()
			l.firedBy = browsers[i]
			l.mu.Unlock()
			(*f)()
		}
		return c.SendString(strconv.Itoa(n + 1))
	})
	l.app.Get("/count", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		v, _ := s.Get("visits")
		n, _ := strconv.Atoi(v)
		return c.SendString("user=" + u + " visits=" + strconv.Itoa(n))
	})

	for i := range browsers {
		b := &loadBrowser{l: l, index: i, next: i * 2 % len(loadRound)}
		browsers[i] = b
		if !b.send(opLogin) || !b.send(opVisit) {
			t.FailNow()
		}
	}
	var wg sync.WaitGroup
	defer func() {
		l.stop.Store(true)
		wg.Wait()
	}()
	for _, b := range browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !l.stop.Load() && b.send(b.choose()) {
			}
		}()
	}
	all := func(f func(b *loadBrowser) bool) func() bool {
		return func() bool {
			for _, b := range browsers {
				if !f(b) {
					return false
				}
			}
			return true
		}
	}

	if !l.waitFor("traffic before the fault", 30*time.Second, all(func(b *loadBrowser) bool { return b.ok >= warmSuccesses })) {
		return
	}
	breakIt := func() {
		fault()
		l.mu.Lock()
		l.faultAt = time.Now()
		l.mu.Unlock()
	}
	l.armed.Store(&breakIt)
	if !l.waitFor("a visit that breaks the connections", 30*time.Second, func() bool { return !l.faultAt.IsZero() }) {
		return
	}
	if !l.waitFor("failures with the connections "+l.what, 10*timeout+30*time.Second, all(func(b *loadBrowser) bool { return b.inFault >= faultFailures })) {
		return
	}
	l.mu.Lock()
	l.restoreAt = time.Now()
	l.mu.Unlock()
	restore()
	if !l.waitFor("recovery", o.Reconnect+10*time.Second, all(func(b *loadBrowser) bool { return b.okAfter >= afterSuccesses })) {
		return
	}
	l.stop.Store(true)
	wg.Wait()

	// The same app, quiet now: every browser's session holds at least its
	// last acknowledged count (a read), and a visit and a read then agree.
	l.mu.Lock()
	l.quiet = true
	l.mu.Unlock()
	for _, b := range browsers {
		if !b.signedIn && !b.send(opLogin) || !b.send(opRead) {
			return
		}
		if !b.signedIn && (!b.send(opLogin) || !b.send(opRead)) { // gone after a failed sign-in
			return
		}
		if !b.send(opVisit) || !b.send(opRead) {
			return
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.handled.Load(); n != int64(l.failures) {
		t.Errorf("the ErrorHandler ran %d times for %d failed requests", n, l.failures)
	}
	t.Logf("connections %s: %d requests answered 500, each by the ErrorHandler; %d visits answered 500 found carried out; %d sessions gone after a failed sign-in", l.what, l.failures, l.landed, l.lostBySignIn)
}

// waitFor waits until cond holds (checked under l.mu after every answer),
// and reports whether it did. It fails the test when limit passes first,
// and returns false at once when a browser has failed the test.
func (l *faultLoad) waitFor(what string, limit time.Duration, cond func() bool) bool {
	l.t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		if l.failed.Load() {
			return false
		}
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-l.progress:
		case <-timer.C:
			l.t.Errorf("%s: not seen within %v", what, limit)
			return false
		}
	}
}

// choose returns the browser's next request.
func (b *loadBrowser) choose() loadOp {
	if !b.signedIn {
		return opLogin
	}
	for {
		op := loadRound[b.next]
		b.next = (b.next + 1) % len(loadRound)
		if op != opLogin || !b.atRisk {
			return op
		}
	}
}

// send sends op, checks the answer against what the browser knows, and
// reports whether the browser may go on (false: it failed the test).
func (b *loadBrowser) send(op loadOp) bool {
	l := b.l
	method, path := "POST", "/count"
	switch op {
	case opRead:
		method = "GET"
	case opLogin:
		path = "/login"
	}
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("X-Browser", strconv.Itoa(b.index))
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: b.cookie})
	}
	start := time.Now()
	resp, err := l.app.Test(req, int((l.bound + 30*time.Second).Milliseconds()))
	if err != nil {
		return b.fail("%s: %v", op, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end := time.Now()
	if err != nil {
		return b.fail("%s: reading the body: %v", op, err)
	}
	if took := end.Sub(start); took > l.bound {
		return b.fail("%s took %v, want at most %v (StoreTimeout plus a second)", op, took, l.bound)
	}
	cookie, sent := b.cookie, false
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			cookie, sent = c.Value, true
			if c.MaxAge < 0 || !c.Expires.IsZero() && c.Expires.Before(time.Now()) {
				cookie = ""
			}
		}
	}

	l.mu.Lock()
	inFault := !l.faultAt.IsZero() && start.After(l.faultAt) && (l.restoreAt.IsZero() || end.Before(l.restoreAt))
	afterRestore := !l.restoreAt.IsZero() && start.After(l.restoreAt)
	fired := l.firedBy == b
	if fired {
		l.firedBy = nil
	}
	quiet := l.quiet
	l.mu.Unlock()

	switch {
	case resp.StatusCode == http.StatusInternalServerError && string(body) == faultBody:
		if quiet {
			return b.fail("%s answered 500 with the server back and no other traffic", op)
		}
		if sent {
			return b.fail("%s answered 500 and set the cookie %q", op, cookie)
		}
		switch op {
		case opVisit:
			b.hi++
		case opLogin:
			b.atRisk = true
		}
		b.counted(func() {
			l.failures++
			if inFault {
				b.inFault++
			}
		})
		return true
	case resp.StatusCode != http.StatusOK:
		return b.fail("%s = %d %q, want 200, or 500 %q from the ErrorHandler", op, resp.StatusCode, body, faultBody)
	case fired:
		return b.fail("%s = 200 %q, but the connections broke before its save", op, body)
	case inFault:
		return b.fail("%s = 200 %q, sent and answered while the connections were %s", op, body, l.what)
	}

	switch op {
	case opLogin:
		if string(body) != "ok" || !sent || cookie == "" || cookie == b.cookie {
			return b.fail("sign-in = 200 %q, set-cookie %v %q; want \"ok\" and a new cookie", body, sent, cookie)
		}
		// Nothing pending can touch the new id: a failed request's late
		// write or delete names an older one.
		b.signedIn, b.atRisk = true, false
	case opVisit:
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return b.fail("visit = 200 %q, want a count", body)
		}
		if sent && cookie != b.cookie { // a fresh session: the old record is gone
			if !b.lost(n == 1, "a visit started a new session (count %d)", n) {
				return false
			}
			b.lo, b.hi = n, n
			break
		}
		if n < b.lo+1 || n > b.hi+1 {
			return b.fail("visit = %d, want within [%d, %d]: the last count seen was %d, and %d visits failed since the last acknowledged one", n, b.lo+1, b.hi+1, b.lo, b.hi-b.lo)
		}
		if n > b.lo+1 {
			b.counted(func() { l.landed += n - b.lo - 1 })
		}
		b.lo, b.hi = n, n
	case opRead:
		user, count, ok := strings.Cut(string(body), " visits=")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || sent && cookie != b.cookie {
			return b.fail("read = 200 %q, set-cookie %v %q; want \"user=<user> visits=<count>\" and the same cookie", body, sent, cookie)
		}
		if user != "user=ada" {
			if !b.lost(user == "user=" && n == 0, "a read found %q", body) {
				return false
			}
			break
		}
		if n < b.lo || n > b.hi {
			return b.fail("read = %d, want within [%d, %d]", n, b.lo, b.hi)
		}
		if n > b.lo {
			b.counted(func() { l.landed += n - b.lo })
		}
		b.lo = n
	}
	b.cookie = cookie
	b.counted(func() {
		b.ok++
		if afterRestore {
			b.okAfter++
		}
	})
	return true
}

// lost handles a session found gone (fresh: what was seen is a fresh
// session), which is allowed only after a failed sign-in.
func (b *loadBrowser) lost(fresh bool, format string, a ...any) bool {
	what := fmt.Sprintf(format, a...)
	if !b.atRisk || !fresh {
		return b.fail("the session was lost: %s; last count seen %d", what, b.lo)
	}
	b.l.t.Logf("browser %d: the session is gone after a sign-in answered 500 (its retirement of the old id was carried out): %s", b.index, what)
	b.counted(func() { b.l.lostBySignIn++ })
	b.signedIn, b.atRisk, b.lo, b.hi = false, false, 0, 0
	return true
}

// counted runs f under the load's lock and signals progress.
func (b *loadBrowser) counted(f func()) {
	b.l.mu.Lock()
	f()
	b.l.mu.Unlock()
	b.l.signal()
}

func (l *faultLoad) signal() {
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

// fail reports an error of the browser's and stops it.
func (b *loadBrowser) fail(format string, a ...any) bool {
	b.l.t.Errorf("browser %d: "+format, append([]any{b.index}, a...)...)
	b.l.failed.Store(true)
	b.l.signal()
	return false
}
