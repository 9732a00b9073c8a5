package bench

import (
	"github.com/valyala/fasthttp"
	"testing"
)

func benchScenario(b *testing.B, name string) {
	for _, s := range Scenarios {
		if s.Name != name {
			continue
		}
		for _, c := range Contenders {
			b.Run(c.Name, func(b *testing.B) { Run(b, s, c) })
		}
		return
	}
	b.Fatalf("no scenario %q", name)
}

func BenchmarkNewSession(b *testing.B)    { benchScenario(b, "NewSession") }
func BenchmarkReadOnly(b *testing.B)      { benchScenario(b, "ReadOnly") }
func BenchmarkOneKeyChanged(b *testing.B) { benchScenario(b, "OneKeyChanged") }
func BenchmarkFlash(b *testing.B)         { benchScenario(b, "Flash") }
func BenchmarkRotate(b *testing.B)        { benchScenario(b, "Rotate") }

// TestScenarios runs every scenario a few times per contender, outside the
// benchmark loop, and checks that it does what it claims.
func TestScenarios(t *testing.T) { CheckAll(t, Contenders) }

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
