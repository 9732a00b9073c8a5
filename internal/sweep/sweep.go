// Package sweep runs a store's deletion of expired records in the background.
// The stores of this repository share it (the internal rule allows every
// package under github.com/fibersession/session, in any of its modules).
package sweep

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Loop calls a function every interval until Stop.
type Loop struct {
	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

// Start calls deleteExpired every interval in a goroutine of its own, with a
// context that Stop cancels. An error it returns, unless Stop caused it, is
// logged as a warning to log (when not nil) under the store's name. An
// interval of zero or less starts nothing.
func Start(interval time.Duration, deleteExpired func(context.Context) (int64, error), log *slog.Logger, name string) *Loop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Loop{stop: cancel, done: make(chan struct{})}
	if interval <= 0 {
		close(l.done)
		return l
	}
	go l.run(ctx, interval, func() {
		if _, err := deleteExpired(ctx); err != nil && ctx.Err() == nil && log != nil {
			log.Warn(name+": deleting expired sessions failed; the next run tries again", "err", err)
		}
	})
	return l
}

func (l *Loop) run(ctx context.Context, interval time.Duration, fn func()) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() == nil { // select picks at random when Stop and a tick are both ready
				fn()
			}
		}
	}
}

// Stop cancels a run in progress, ends the loop and waits until its goroutine
// has returned. It may be called more than once.
func (l *Loop) Stop() {
	l.once.Do(l.stop)
	<-l.done
}
