package ttl

import (
	"testing"
	"time"
)

func TestRound(t *testing.T) {
	for _, tc := range []struct{ d, unit, want time.Duration }{
		{1500 * time.Millisecond, time.Second, 2 * time.Second},
		{2 * time.Second, time.Second, 2 * time.Second},
		{time.Nanosecond, time.Second, time.Second},
		{0, time.Second, time.Second},
		{-time.Hour, time.Second, time.Second},
		{1500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond},
		{time.Millisecond, time.Millisecond, time.Millisecond},
	} {
		if got := Round(tc.d, tc.unit); got != tc.want {
			t.Errorf("Round(%v, %v) = %v, want %v", tc.d, tc.unit, got, tc.want)
		}
	}
}
