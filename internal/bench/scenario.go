package bench

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// Scenario is one benchmark: Setup runs before the timer, Op once per
// iteration. Op verifies that the scenario really happened (the user was
// found, the flash arrived, the id changed) and returns an error if not.
type Scenario struct {
	Name  string              // in benchmark names and the table
	Setup func(*Client) error // before the timer; nil for none
	Op    func(*Client) error // once per iteration
}

// Scenarios are benchmarked in this order.
var Scenarios = []Scenario{
	{"NewSession", nil, func(cl *Client) error {
		cl.jar = cl.jar[:0] // a new visitor
		return login(cl)
	}},
	{"ReadOnly", login, func(cl *Client) error {
		return cl.expect("GET", "/me", ada.Name)
	}},
	{"OneKeyChanged", login, func(cl *Client) error {
		st, body := cl.Do("POST", "/visit")
		cl.visits++
		cl.num = strconv.AppendInt(cl.num[:0], cl.visits, 10)
		if st != fiber.StatusOK || cl.Stateful && !bytes.Equal(body, cl.num) {
			return fmt.Errorf("POST /visit: got %d %q, want 200 %q", st, body, cl.num)
		}
		return nil
	}},
	{"Flash", login, func(cl *Client) error { // two requests per op
		if err := cl.expect("POST", "/flash", "ok"); err != nil {
			return err
		}
		return cl.expect("GET", "/show", notice.Text)
	}},
	{"Rotate", login, func(cl *Client) error {
		cl.prev = append(cl.prev[:0], cl.jar...)
		if err := cl.expect("POST", "/rotate", ada.Name); err != nil {
			return err
		}
		if cl.Stateful && (len(cl.jar) == 0 || bytes.Equal(cl.jar, cl.prev)) {
			return fmt.Errorf("POST /rotate: cookie %q did not change", cl.jar)
		}
		return nil
	}},
}

// Run benchmarks scenario s against contender c.
func Run(b *testing.B, s Scenario, c Contender) {
	cl := start(b, s, c)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.Op(cl); err != nil {
			b.Fatalf("%s/%s: %v", s.Name, c.Name, err)
		}
	}
}

// start builds c's app, released when tb ends, and returns a client of it
// after s's Setup.
func start(tb testing.TB, s Scenario, c Contender) *Client {
	tb.Helper()
	h, done := c.New()
	tb.Cleanup(done)
	cl := NewClient(h, c.Stateful)
	if s.Setup != nil {
		if err := s.Setup(cl); err != nil {
			tb.Fatalf("%s/%s setup: %v", s.Name, c.Name, err)
		}
	}
	return cl
}

// RunAll benchmarks every scenario against every contender, as
// sub-benchmarks named scenario/contender.
func RunAll(b *testing.B, contenders []Contender) {
	for _, s := range Scenarios {
		for _, c := range contenders {
			b.Run(s.Name+"/"+c.Name, func(b *testing.B) { Run(b, s, c) })
		}
	}
}

// after checks, for the contenders with a session, what the scenario's Op
// cannot check without extra requests in the timed loop.
var after = map[string]func(t testing.TB, cl *Client){
	"NewSession": func(t testing.TB, cl *Client) {
		if err := cl.expect("GET", "/me", ada.Name); err != nil {
			t.Errorf("the new session has no user: %v", err)
		}
	},
	"ReadOnly": func(t testing.TB, cl *Client) {
		cl.SetCookie("")
		if st, _ := cl.Do("GET", "/me"); st != fiber.StatusUnauthorized {
			t.Errorf("GET /me without a cookie: status %d, want 401", st)
		}
	},
	"Flash": func(t testing.TB, cl *Client) {
		if err := cl.expect("GET", "/show", "none"); err != nil {
			t.Errorf("the flash was not consumed: %v", err)
		}
	},
	"Rotate": func(t testing.TB, cl *Client) {
		cl.SetCookie(string(cl.prev))
		if st, _ := cl.Do("GET", "/me"); st != fiber.StatusUnauthorized {
			t.Errorf("GET /me with the rotated-away cookie: status %d, want 401", st)
		}
	},
}

// Check runs scenario s a few times against contender c, outside a
// benchmark, and fails t unless it does what it claims, including what Op
// cannot check inside the timed loop (for contenders with a session).
func Check(t testing.TB, s Scenario, c Contender) {
	t.Helper()
	cl := start(t, s, c)
	for i := range 3 {
		if err := s.Op(cl); err != nil {
			t.Fatalf("%s/%s op %d: %v", s.Name, c.Name, i, err)
		}
	}
	if check := after[s.Name]; check != nil && c.Stateful {
		check(t, cl)
	}
}

// CheckAll checks every scenario against every contender, as subtests
// named scenario/contender.
func CheckAll(t *testing.T, contenders []Contender) {
	for _, s := range Scenarios {
		for _, c := range contenders {
			t.Run(s.Name+"/"+c.Name, func(t *testing.T) { Check(t, s, c) })
		}
	}
}
