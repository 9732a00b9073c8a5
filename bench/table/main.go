// Command table runs the bench scenarios with testing.Benchmark and prints a
// Markdown table of the medians.
//
//	go run ./bench/table -count 3 -benchtime 1s
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/fibersession/session/internal/bench"
)

type result struct{ ns, bytes, allocs float64 }

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

func main() {
	testing.Init()
	count := flag.Int("count", 1, "run each benchmark `n` times and report the median")
	benchtime := flag.String("benchtime", "1s", "run each benchmark for this `duration` (or Nx iterations)")
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil || *count < 1 {
		fmt.Fprintln(os.Stderr, "table: bad -benchtime or -count:", err)
		os.Exit(2)
	}

	// Rounds run every benchmark once, so that drift hits all contenders alike.
	runs := map[[2]string][][3]float64{}
	for round := range *count {
		for _, s := range bench.Scenarios {
			for _, c := range bench.Contenders {
				fmt.Fprintf(os.Stderr, "round %d/%d: %s/%s\n", round+1, *count, s.Name, c.Name)
				r := testing.Benchmark(func(b *testing.B) { bench.Run(b, s, c) })
				if r.N == 0 {
					fmt.Fprintf(os.Stderr, "table: %s/%s failed its check (run go test ./bench)\n", s.Name, c.Name)
					os.Exit(1)
				}
				k := [2]string{s.Name, c.Name}
				runs[k] = append(runs[k], [3]float64{float64(r.T.Nanoseconds()) / float64(r.N), float64(r.AllocedBytesPerOp()), float64(r.AllocsPerOp())})
			}
		}
	}
	res := map[[2]string]result{}
	for k, rs := range runs {
		var col [3][]float64
		for _, r := range rs {
			for i := range col {
				col[i] = append(col[i], r[i])
			}
		}
		res[k] = result{median(col[0]), median(col[1]), median(col[2])}
	}

	fmt.Printf("%s %s/%s, GOMAXPROCS %d, -count %d (median), -benchtime %s. Flash is two requests per op.\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), *count, *benchtime)
	fmt.Println("| scenario | contender | ns/op | B/op | allocs/op | vs Fiber | vs baseline (no session) |")
	fmt.Println("|---|---|--:|--:|--:|--:|--:|")
	for _, s := range bench.Scenarios {
		fib, base := res[[2]string{s.Name, "fiber"}], res[[2]string{s.Name, "baseline"}]
		for _, c := range bench.Contenders {
			r := res[[2]string{s.Name, c.Name}]
			ratio := fib.ns / r.ns
			vs := fmt.Sprintf("%.1f× faster", ratio)
			switch {
			case c.Name == "fiber":
				vs = "1.0×"
			case ratio < 1:
				vs = fmt.Sprintf("%.1f× slower", 1/ratio)
			}
			above := fmt.Sprintf("%.1f× (%+.2f µs, %+.0f allocs)", r.ns/base.ns, (r.ns-base.ns)/1000, r.allocs-base.allocs)
			if c.Name == "baseline" {
				above = ""
			}
			fmt.Printf("| %s | %s | %.0f | %.0f | %.0f | %s | %s |\n",
				s.Name, c.Name, r.ns, r.bytes, r.allocs, vs, above)
		}
	}
}
