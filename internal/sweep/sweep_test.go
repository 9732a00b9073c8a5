package sweep

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoop(t *testing.T) {
	var runs atomic.Int64
	cancelled := make(chan struct{})
	l := Start(time.Millisecond, func(ctx context.Context) {
		if runs.Add(1) == 3 {
			<-ctx.Done() // Stop interrupts a run in progress
			close(cancelled)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	l.Stop()
	select {
	case <-cancelled:
	default:
		t.Fatal("Stop did not cancel the run in progress")
	}
	n := runs.Load()
	time.Sleep(10 * time.Millisecond)
	if runs.Load() != n {
		t.Error("the loop ran after Stop returned")
	}
}

func TestNoInterval(t *testing.T) {
	l := Start(0, func(context.Context) { t.Error("ran without an interval") })
	l.Stop()
}
