package main

import (
	"fmt"
	"io"
	"time"
)

// readTarget is the read-route throughput this library's memory variant must
// reach, as a share of the no-session baseline's.
const readTarget = 0.85

func find(rs []result, name string) *result {
	for i := range rs {
		if rs[i].Variant == name && rs[i].Skipped == "" {
			return &rs[i]
		}
	}
	return nil
}

func durStr(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func bytesStr(n uint64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
}

// cpuStr is CPU time per request in microseconds.
func cpuStr(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func rpsStr(x float64) string {
	if x <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", x)
}

// ratios are the comparisons the README reports.
type ratios struct {
	ReadVsBaseline  float64 // ours/memory read req/s ÷ baseline's; 0 when unknown
	MixedVsBaseline float64
	ReadCPUVsBase   float64 // baseline's read CPU/req ÷ ours/memory's: throughput per CPU
	ReadVsFiber     float64 // ours/memory ÷ fiber/memory
	MixedVsFiber    float64
	RedisReadVsFib  float64 // ours/redis ÷ fiber/redis
	RedisMixedVsFib float64
}

func ratio(a, b *result, f func(*result) float64) float64 {
	if a == nil || b == nil || f(b) <= 0 {
		return 0
	}
	return f(a) / f(b)
}

func computeRatios(rs []result) ratios {
	read := func(r *result) float64 { return r.Read.RPS }
	mixed := func(r *result) float64 { return r.Mixed.RPS }
	base, om, fm := find(rs, "baseline"), find(rs, "ours/memory"), find(rs, "fiber/memory")
	or, fr := find(rs, "ours/redis"), find(rs, "fiber/redis")
	return ratios{
		ReadVsBaseline:  ratio(om, base, read),
		MixedVsBaseline: ratio(om, base, mixed),
		ReadCPUVsBase:   ratio(base, om, func(r *result) float64 { return float64(r.Read.CPU) }),
		ReadVsFiber:     ratio(om, fm, read),
		MixedVsFiber:    ratio(om, fm, mixed),
		RedisReadVsFib:  ratio(or, fr, read),
		RedisMixedVsFib: ratio(or, fr, mixed),
	}
}

// report prints the table and the comparisons; it returns whether the
// correctness targets (no error, no lost write) were met, which a variant
// that failed to run (for another reason than a missing Redis) also misses.
func report(w io.Writer, header string, rs []result) bool {
	fmt.Fprintln(w, header)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| variant | mixed req/s | p50 | p99 | CPU/req | read req/s | p50 | p99 | CPU/req | errors | lost writes | server heap |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	ok := true
	var skipped []string
	for _, r := range rs {
		if r.Failed {
			ok = false
		}
		if r.Skipped != "" {
			skipped = append(skipped, fmt.Sprintf("%s skipped: %s", r.Variant, r.Skipped))
			continue
		}
		heap := bytesStr(r.Heap)
		if r.RSS > 0 {
			heap += " (RSS " + bytesStr(r.RSS) + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %s |\n", r.Variant,
			rpsStr(r.Mixed.RPS), durStr(r.Mixed.P50), durStr(r.Mixed.P99), cpuStr(r.Mixed.CPU),
			rpsStr(r.Read.RPS), durStr(r.Read.P50), durStr(r.Read.P99), cpuStr(r.Read.CPU),
			r.Errors, r.Lost, heap)
		if r.Errors != 0 || r.Lost != 0 {
			ok = false
		}
	}
	fmt.Fprintln(w)
	for _, s := range skipped {
		fmt.Fprintln(w, s)
	}
	x := computeRatios(rs)
	if x.ReadVsBaseline > 0 {
		verdict := "met"
		if x.ReadVsBaseline < readTarget {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "read route: ours/memory at %.1f%% of the no-session baseline's requests/s (target ≥ %.0f%%: %s)\n",
			100*x.ReadVsBaseline, 100*readTarget, verdict)
	}
	if x.ReadCPUVsBase > 0 {
		fmt.Fprintf(w, "read route: ours/memory at %.1f%% of the baseline's requests per CPU second (CPU/req %s vs %s)\n",
			100*x.ReadCPUVsBase, cpuStr(find(rs, "ours/memory").Read.CPU), cpuStr(find(rs, "baseline").Read.CPU))
	}
	if x.ReadVsFiber > 0 {
		fmt.Fprintf(w, "read route: ours/memory %.2f× fiber/memory", x.ReadVsFiber)
		if x.RedisReadVsFib > 0 {
			fmt.Fprintf(w, "; ours/redis %.2f× fiber/redis", x.RedisReadVsFib)
		}
		fmt.Fprintln(w)
	}
	if x.MixedVsBaseline > 0 {
		fmt.Fprintf(w, "mixed: ours/memory at %.1f%% of the no-session baseline", 100*x.MixedVsBaseline)
		if x.MixedVsFiber > 0 {
			fmt.Fprintf(w, ", %.2f× fiber/memory", x.MixedVsFiber)
		}
		if x.RedisMixedVsFib > 0 {
			fmt.Fprintf(w, "; ours/redis %.2f× fiber/redis", x.RedisMixedVsFib)
		}
		fmt.Fprintln(w)
	}
	verdict := "met"
	if !ok {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "errors and lost acknowledged writes: target 0: %s\n", verdict)
	for _, r := range rs {
		for _, s := range r.Samples {
			fmt.Fprintf(w, "  %s: %s\n", r.Variant, s)
		}
	}
	return ok
}
