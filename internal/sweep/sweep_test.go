package sweep

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoop(t *testing.T) {
	var runs atomic.Int64
	cancelled := make(chan struct{})
	l := Start(time.Millisecond, func(ctx context.Context) (int64, error) {
		if runs.Add(1) == 3 {
			<-ctx.Done() // Stop interrupts a run in progress
			close(cancelled)
			return 0, ctx.Err()
		}
		return 0, nil
	}, nil, "test")
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
	l := Start(0, func(context.Context) (int64, error) { t.Error("ran without an interval"); return 0, nil }, nil, "test")
	l.Stop()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsErrors checks that a failed run is logged with the store's name,
// and that the error of a run that Stop cancelled is not.
func TestLogsErrors(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	failed := make(chan struct{})
	var once sync.Once
	l := Start(time.Millisecond, func(ctx context.Context) (int64, error) {
		once.Do(func() { close(failed) })
		return 0, errors.New("database is locked")
	}, log, "teststore")
	<-failed
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "database is locked") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	if got := logs.String(); !strings.Contains(got, "teststore: deleting expired sessions failed") || !strings.Contains(got, "database is locked") {
		t.Errorf("log %q does not name the store and the error", got)
	}

	logs = syncBuffer{}
	running := make(chan struct{})
	var started sync.Once
	l = Start(time.Millisecond, func(ctx context.Context) (int64, error) {
		started.Do(func() { close(running) })
		<-ctx.Done()
		return 0, ctx.Err()
	}, log, "teststore")
	<-running
	l.Stop()
	if got := logs.String(); got != "" {
		t.Errorf("a run cancelled by Stop was logged: %q", got)
	}
}
