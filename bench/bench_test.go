// Package bench_test benchmarks this session middleware against Fiber v2's
// built-in middleware/session and against no session at all, through the
// harness in internal/bench:
//
//	go test ./bench -run '^$' -bench . -benchmem
//	go run ./bench/table -count 5   # the README's table
package bench_test

import (
	"testing"

	"github.com/fibersession/session/internal/bench"
)

func benchScenario(b *testing.B, name string) {
	for _, s := range bench.Scenarios {
		if s.Name != name {
			continue
		}
		for _, c := range bench.Contenders {
			b.Run(c.Name, func(b *testing.B) { bench.Run(b, s, c) })
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
func TestScenarios(t *testing.T) { bench.CheckAll(t, bench.Contenders) }
