package main

import (
	"fmt"
	"html"
	"os"
	"strings"
)

// The chart: one panel per figure, a horizontal bar per variant, written as
// SVG text by hand.

const (
	svgWidth  = 800
	labelW    = 120 // the variant names' column
	barMaxW   = 400
	barH      = 18
	barGap    = 6
	panelHead = 30 // a panel's title line
	panelGap  = 18
)

// barColor gives each contender a hue (this library teal, Fiber's orange,
// the baseline grey), darker for memory than for Redis.
func barColor(variant string) string {
	switch variant {
	case "baseline":
		return "#8c8c8c"
	case "ours/memory":
		return "#17706b"
	case "ours/redis":
		return "#3fb0a8"
	case "fiber/memory":
		return "#c0651b"
	case "fiber/redis":
		return "#eea15d"
	}
	return "#5b6dcd"
}

type panel struct {
	title string
	value func(*result) float64
	text  func(*result) string
	mark  float64 // > 0: a dashed line at this value
	markT string
}

// svgChart returns the chart of rs (the variants that ran) under title.
func svgChart(title, subtitle string, rs []result) string {
	var ran []*result
	for i := range rs {
		if rs[i].Skipped == "" {
			ran = append(ran, &rs[i])
		}
	}
	x := computeRatios(rs)
	var mark float64
	if b := find(rs, "baseline"); b != nil {
		mark = readTarget * b.Read.RPS
	}
	readText := func(r *result) string {
		s := rpsStr(r.Read.RPS)
		if r.Variant == "ours/memory" && x.ReadVsBaseline > 0 {
			s += fmt.Sprintf("  (%.1f%% of baseline", 100*x.ReadVsBaseline)
			if x.ReadVsFiber > 0 {
				s += fmt.Sprintf(", %.1f× Fiber", x.ReadVsFiber)
			}
			s += ")"
		}
		return s
	}
	panels := []panel{
		{"Read route (GET / signed in): requests/s, higher is better", func(r *result) float64 { return r.Read.RPS }, readText, mark, "85% of baseline"},
		{"Read route: CPU time per request (users, server and kernel), lower is better", func(r *result) float64 { return float64(r.Read.CPU) },
			func(r *result) string { return cpuStr(r.Read.CPU) }, 0, ""},
		{"Mixed workload: requests/s, higher is better", func(r *result) float64 { return r.Mixed.RPS },
			func(r *result) string { return rpsStr(r.Mixed.RPS) }, 0, ""},
		{"Mixed workload: p99 latency (ms), lower is better", func(r *result) float64 { return float64(r.Mixed.P99) / 1e6 },
			func(r *result) string { return durStr(r.Mixed.P99) }, 0, ""},
		{"Server Go heap after GC, with the sessions left (MiB), lower is better", func(r *result) float64 { return float64(r.Heap) / (1 << 20) },
			func(r *result) string { return bytesStr(r.Heap) }, 0, ""},
	}

	rowsH := len(ran)*(barH+barGap) - barGap
	top := 56
	height := top + len(panels)*(panelHead+rowsH+panelGap) + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold" fill="#222">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#555">%s</text>`+"\n", html.EscapeString(subtitle))
	y := top
	for _, p := range panels {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold" fill="#333">%s</text>`+"\n", y+16, html.EscapeString(p.title))
		y += panelHead
		maxV := p.mark
		for _, r := range ran {
			maxV = max(maxV, p.value(r))
		}
		if maxV <= 0 {
			maxV = 1
		}
		for i, r := range ran {
			ry := y + i*(barH+barGap)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#222">%s</text>`+"\n", labelW-8, ry+13, html.EscapeString(r.Variant))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", labelW, ry, barW(p.value(r), maxV), barH, barColor(r.Variant))
		}
		// The mark over the bars, the values (on a white halo) over the mark.
		if p.mark > 0 {
			mx := labelW + barW(p.mark, maxV)
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c62828" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n", mx, y-4, mx, y+rowsH+4)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="10" fill="#c62828">%s</text>`+"\n", mx, y-6, html.EscapeString(p.markT))
		}
		for i, r := range ran {
			ry := y + i*(barH+barGap)
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#222" stroke="#fff" stroke-width="3" paint-order="stroke">%s</text>`+"\n", labelW+barW(p.value(r), maxV)+6, ry+13, html.EscapeString(p.text(r)))
		}
		y += rowsH + panelGap
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// barW is the width of a bar of value v on a scale whose largest is maxV.
func barW(v, maxV float64) int { return int(float64(barMaxW)*v/maxV + 0.5) }

func writeSVG(path, title, subtitle string, rs []result) error {
	return os.WriteFile(path, []byte(svgChart(title, subtitle, rs)), 0o644)
}
