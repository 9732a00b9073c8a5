package storetest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Goroutines returns how many goroutines have fn, a function as a stack
// trace names it (such as
// "github.com/fibersession/session/stores/mysql.(*Store).cleanup"), in their
// stack. Counting a store's own goroutine this way is unaffected by the
// goroutines that drivers and pools start and end on their own schedule.
func Goroutines(fn string) int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, fn+"(") {
			count++
		}
	}
	return count
}

// WantGoroutines fails t unless Goroutines(fn) is want within a second: a
// goroutine just started may not have entered fn yet, and one that has
// signalled that it is done (as a store's Close waits for) may take a moment
// to return.
func WantGoroutines(t testing.TB, fn string, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		n := Goroutines(fn)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines run %s, want %d", n, fn, want)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
