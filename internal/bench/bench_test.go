package bench

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestChecksNeedASession runs the scenarios against the baseline as if it
// had sessions: every one must fail, so a contender without the feature
// cannot pass a benchmark.
func TestChecksNeedASession(t *testing.T) {
	for _, s := range Scenarios {
		h, done := baseline(false)
		cl := NewClient(h, true)
		var err error
		if s.Setup != nil {
			err = s.Setup(cl)
		}
		for i := 0; i < 3 && err == nil; i++ {
			err = s.Op(cl)
		}
		done()
		if err == nil {
			t.Errorf("%s passes without a session", s.Name)
		}
	}
}

// TestRunReportsFailure checks that Run fails the benchmark (which
// testing.Benchmark reports as N == 0) when a check fails.
func TestRunReportsFailure(t *testing.T) {
	nosession := Contender{"nosession", true, func() (fasthttp.RequestHandler, func()) { return baseline(false) }}
	if r := testing.Benchmark(func(b *testing.B) { Run(b, Scenarios[1], nosession) }); r.N != 0 {
		t.Errorf("a failing benchmark reported N = %d", r.N)
	}
}
