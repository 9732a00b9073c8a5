package storetest

import (
	"io"
	"testing"
	"time"
)

// testClose closes a store of its own twice: the first Close must succeed,
// the second must return (with any error) without panicking or blocking.
func (s *suite) testClose(t *testing.T) {
	_, c := storeWith[io.Closer](t, s)
	type result struct {
		err      error
		panicked any
	}
	for i := 1; i <= 2; i++ {
		done := make(chan result, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- result{panicked: r}
				}
			}()
			done <- result{err: c.Close()}
		}()
		select {
		case r := <-done:
			switch {
			case r.panicked != nil:
				t.Fatalf("Close #%d panicked: %v", i, r.panicked)
			case i == 1 && r.err != nil:
				t.Fatalf("Close: %v", r.err)
			case r.err != nil:
				t.Logf("second Close: %v (allowed)", r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Close #%d did not return within 5s (a second Close must not block)", i)
		}
	}
}
