package main

import (
	"math/bits"
	"time"
)

// hist is a latency histogram with 32 buckets per power of two (within 3%):
// values below 64 ns have a bucket each; a value v ≥ 64 ns, with e =
// bits.Len64(v)-6, falls in bucket 64 + (e-1)·32 + (v>>e - 32).
type hist struct {
	counts [64 + 40*32]uint32
	n      uint64
}

func bucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6
	i := 64 + (e-1)*32 + int(v>>uint(e)) - 32
	return min(i, len(hist{}.counts)-1)
}

// mid is the middle of bucket i.
func mid(i int) time.Duration {
	if i < 64 {
		return time.Duration(i)
	}
	e := (i-64)/32 + 1
	m := uint64((i-64)%32 + 32)
	return time.Duration(m<<uint(e) + (uint64(1)<<uint(e))/2)
}

func (h *hist) add(d time.Duration) {
	h.counts[bucket(d)]++
	h.n++
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile is the q-quantile (0 < q ≤ 1), 0 when empty.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += uint64(c); seen >= rank {
			return mid(i)
		}
	}
	return mid(len(h.counts) - 1)
}
