package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The mix: a signed-out user (a new visitor, or one who signed out) sees the
// sign-in page and signs in; a signed-in user, at each step, does one of:
//
//	70%  reads the page                            GET /
//	15%  increments the counter                    POST /count
//	 6%  sets a flash, follows the redirect        POST /flash, GET /
//	 4%  signs in again (a new id, same data)      POST /login, GET /
//	 5%  reads the page, then signs out            GET /, POST /logout, GET /
//
// After signing out, half of the users clear their cookies (a new visitor).
// About three requests in four are GET / (a read; a flash is consumed by one).
const (
	pctRead   = 70
	pctCount  = 15
	pctFlash  = 6
	pctLogin  = 4
	pctLogout = 5
)

// phase is one timed run of users: it stops when stop is set or, when limit
// is positive, once limit requests have been sent.
type phase struct {
	stop  atomic.Bool
	sent  atomic.Int64
	limit int64
}

func (p *phase) done() bool { return p.stop.Load() || (p.limit > 0 && p.sent.Load() >= p.limit) }

// stats are what one user saw in one phase.
type stats struct {
	requests int64 // sent while recording, answered or not
	errors   int64 // transport errors, wrong status, wrong page
	lost     int64 // acknowledged counter increments the server no longer shows
	hist     hist  // latency of the requests sent while recording
}

// errSamples keeps the first few error messages of a run.
type errSamples struct {
	mu   sync.Mutex
	msgs []string
}

func (e *errSamples) add(msg string) {
	e.mu.Lock()
	if len(e.msgs) < 8 {
		e.msgs = append(e.msgs, msg)
	}
	e.mu.Unlock()
}

type cookie struct {
	name  []byte
	value []byte
}

// user is one simulated browser: its own cookie jar, one request at a time.
type user struct {
	id       int
	hc       *fasthttp.HostClient
	base     string // "http://127.0.0.1:port"
	stateful bool   // check the pages (not for the baseline)
	rng      *rand.Rand
	samples  *errSamples

	req  fasthttp.Request
	resp fasthttp.Response
	jar  []cookie

	signedIn bool
	name     string
	logins   int
	count    int // the counter's value as the server last acknowledged it

	ph     *phase
	record bool // count requests and latency (false in warm-up and set-up)
	st     stats
}

func newUser(id int, hc *fasthttp.HostClient, base string, stateful bool, seed uint64, samples *errSamples) *user {
	return &user{id: id, hc: hc, base: base, stateful: stateful, rng: rand.New(rand.NewPCG(seed, uint64(id))), samples: samples}
}

func (u *user) fail(format string, args ...any) {
	u.st.errors++
	u.samples.add(fmt.Sprintf("user %d: ", u.id) + fmt.Sprintf(format, args...))
}

// do sends one request with the jar's cookies and stores the cookies the
// response sets. It returns false (an error counted) when no answer came.
func (u *user) do(method, path, form string) bool {
	req, resp := &u.req, &u.resp
	req.Reset()
	resp.Reset()
	req.Header.SetMethod(method)
	req.SetRequestURI(u.base + path)
	for _, c := range u.jar {
		req.Header.SetCookieBytesKV(c.name, c.value)
	}
	if form != "" {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(form)
	}
	if u.ph != nil {
		u.ph.sent.Add(1)
	}
	start := time.Now()
	err := u.hc.Do(req, resp)
	if u.record {
		u.st.hist.add(time.Since(start))
		u.st.requests++
	}
	if err != nil {
		u.fail("%s %s: %v", method, path, err)
		return false
	}
	resp.Header.VisitAllCookie(func(_, v []byte) { u.store(v) })
	return true
}

// dropBuffers lets the user's request and response buffers go, so that they
// are not in the heap when the server's is taken in this process.
func (u *user) dropBuffers() { u.req, u.resp = fasthttp.Request{}, fasthttp.Response{} }

// store keeps a Set-Cookie header in the jar, or removes the cookie it
// expires (an empty value, Max-Age ≤ 0 or an Expires in the past).
func (u *user) store(header []byte) {
	pair, attrs, _ := bytes.Cut(header, []byte{';'})
	name, value, ok := bytes.Cut(pair, []byte{'='})
	if !ok {
		return
	}
	name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
	remove := len(value) == 0
	for len(attrs) > 0 && !remove {
		var a []byte
		a, attrs, _ = bytes.Cut(attrs, []byte{';'})
		k, v, _ := bytes.Cut(bytes.TrimSpace(a), []byte{'='})
		switch {
		case bytes.EqualFold(k, []byte("max-age")):
			n, err := strconv.Atoi(string(v))
			remove = err == nil && n <= 0
		case bytes.EqualFold(k, []byte("expires")):
			t, err := fasthttp.ParseHTTPDate(v)
			remove = err == nil && t.Before(time.Now())
		}
	}
	for i, c := range u.jar {
		if bytes.Equal(c.name, name) {
			if remove {
				u.jar = append(u.jar[:i], u.jar[i+1:]...)
			} else {
				u.jar[i].value = append(c.value[:0], value...)
			}
			return
		}
	}
	if !remove {
		u.jar = append(u.jar, cookie{name: append([]byte(nil), name...), value: append([]byte(nil), value...)})
	}
}

// expect checks the answer's status (and for a redirect its Location).
func (u *user) expect(method, path string, status int) bool {
	if got := u.resp.StatusCode(); got != status {
		u.fail("%s %s: status %d, want %d: %.80q", method, path, got, status, u.resp.Body())
		return false
	}
	if status == fasthttp.StatusSeeOther {
		if loc := u.resp.Header.Peek(fasthttp.HeaderLocation); string(loc) != "/" {
			u.fail("%s %s: redirect to %q, want /", method, path, loc)
			return false
		}
	}
	return true
}

// home reads the page and checks it: the user who is signed in, the counter
// as last acknowledged, and exactly the flash message want ("" for none).
// A counter below the acknowledged value is counted as lost writes.
func (u *user) home(want string) {
	if !u.do("GET", "/", "") || !u.expect("GET", "/", fasthttp.StatusOK) || !u.stateful {
		return
	}
	body := u.resp.Body()
	who, _ := between(body, `<strong id="user">`, "<")
	if u.signedIn && string(who) != u.name || !u.signedIn && len(who) != 0 {
		u.fail("GET /: signed in as %q, want %q (signed in: %v)", who, u.name, u.signedIn)
	}
	n, err := strconv.Atoi(string(mustBetween(body, `<span id="count">`, "<")))
	switch {
	case err != nil:
		u.fail("GET /: no counter: %v", err)
	case n < u.count:
		u.st.lost += int64(u.count - n)
		u.samples.add(fmt.Sprintf("user %d: GET /: counter %d, acknowledged %d", u.id, n, u.count))
		u.count = n
	case n > u.count:
		u.fail("GET /: counter %d, only %d acknowledged", n, u.count)
		u.count = n
	}
	flash, ok := between(body, `<p class="flash">`, "<")
	switch {
	case want == "" && ok:
		u.fail("GET /: flash %q, want none (shown twice?)", flash)
	case want != "" && string(flash) != want:
		u.fail("GET /: flash %q, want %q", flash, want)
	case bytes.Count(body, []byte(`class="flash"`)) > 1:
		u.fail("GET /: more than one flash")
	}
}

// login signs in (again: a new id with the same data) and follows the
// redirect to the page, which must welcome the user.
func (u *user) login() {
	if !u.signedIn {
		u.logins++
		u.name = "u" + strconv.Itoa(u.id) + "-" + strconv.Itoa(u.logins)
	}
	old := string(u.sessionCookie())
	if !u.do("POST", "/login", "name="+u.name) || !u.expect("POST", "/login", fasthttp.StatusSeeOther) {
		return
	}
	u.signedIn = true
	if cur := string(u.sessionCookie()); u.stateful && (cur == "" || cur == old) {
		u.fail("POST /login: the session cookie did not change")
	}
	u.home("Welcome, " + u.name)
}

// sessionCookie is the value of the session cookie ("session" or Fiber's
// "session_id"), nil when none.
func (u *user) sessionCookie() []byte {
	for _, c := range u.jar {
		if string(c.name) == "session" || string(c.name) == "session_id" {
			return c.value
		}
	}
	return nil
}

func (u *user) increment() {
	if !u.do("POST", "/count", "") || !u.expect("POST", "/count", fasthttp.StatusOK) {
		return
	}
	n, err := strconv.Atoi(string(u.resp.Body()))
	switch {
	case !u.stateful:
	case err != nil:
		u.fail("POST /count: %q: %v", u.resp.Body(), err)
	case n <= u.count:
		// The server counted from below what it acknowledged before.
		u.st.lost += int64(u.count + 1 - n)
		u.samples.add(fmt.Sprintf("user %d: POST /count: %d, acknowledged %d before", u.id, n, u.count))
		u.count = n
	case n > u.count+1:
		u.fail("POST /count: %d, only %d acknowledged before", n, u.count)
		u.count = n
	default:
		u.count = n
	}
}

func (u *user) flash() {
	if u.do("POST", "/flash", "") && u.expect("POST", "/flash", fasthttp.StatusSeeOther) {
		u.home("Saved!")
	}
}

// logout reads the page (a last check of the counter), signs out and follows
// the redirect; then, half of the time, the user clears the jar.
func (u *user) logout() {
	u.home("")
	if !u.do("POST", "/logout", "") || !u.expect("POST", "/logout", fasthttp.StatusSeeOther) {
		return
	}
	u.signedIn, u.count = false, 0
	u.home("Signed out")
	if u.rng.IntN(2) == 0 {
		u.jar = u.jar[:0]
	}
}

// step is one action of the mix.
func (u *user) step() {
	if !u.signedIn {
		u.home("") // the sign-in page
		u.login()
		return
	}
	switch r := u.rng.IntN(100); {
	case r < pctRead:
		u.home("")
	case r < pctRead+pctCount:
		u.increment()
	case r < pctRead+pctCount+pctFlash:
		u.flash()
	case r < pctRead+pctCount+pctFlash+pctLogin:
		u.login()
	default:
		u.logout()
	}
}

// run does steps (the mix, or reads only) until the phase is done.
func (u *user) run(ph *phase, record, readOnly bool) {
	u.ph, u.record = ph, record
	for !ph.done() {
		if readOnly {
			u.home("")
		} else {
			u.step()
		}
	}
	u.ph, u.record = nil, false
}

// between returns what lies in b between the first open and the next close.
func between(b []byte, open, close string) ([]byte, bool) {
	i := bytes.Index(b, []byte(open))
	if i < 0 {
		return nil, false
	}
	b = b[i+len(open):]
	j := bytes.Index(b, []byte(close))
	if j < 0 {
		return nil, false
	}
	return b[:j], true
}

func mustBetween(b []byte, open, close string) []byte {
	v, _ := between(b, open, close)
	return v
}
