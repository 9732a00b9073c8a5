package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ctxerr"
)

// stallTimeout bounds each wait for the server during a watch whose context
// has no deadline, as the JetStream context's default timeout bounds the
// other calls.
const stallTimeout = 5 * time.Second

// errStalled is the cause of a watch that heard nothing from the server for
// stallTimeout.
var errStalled = fmt.Errorf("the server sent nothing for %v: %w", stallTimeout, context.DeadlineExceeded)

// clearWorkers is how many purges Clear keeps in flight.
const clearWorkers = 16

// The keys of a store with prefix P = D + R, where D is P up to and
// including its last '.' (or "") and R is the rest:
//
//	session:      P<id>                        one token after D
//	chunk:        P<id>.<chunk set>.<n>        three tokens after D
//	owner index:  P=owner.<owner>              two tokens after D
//
// A watcher filters on whole tokens, so the store watches D* for its
// sessions, D*.*.* for its chunks and P=owner.* for its owner index, and
// keeps the keys whose first token after D starts with R.

// ownerMark follows the prefix in an owner index key.
const ownerMark = "=owner."

// split returns the part of the prefix up to and including its last '.',
// and the rest.
func (s *Store) split() (dir, rest string) {
	i := strings.LastIndexByte(s.prefix, '.') + 1
	return s.prefix[:i], s.prefix[i:]
}

// sessionID returns the id of the session key key, a key matched by the
// filter D*, or false when the key is not one of the store's.
func (s *Store) sessionID(key string) (string, bool) {
	if !strings.HasPrefix(key, s.prefix) || len(key) == len(s.prefix) {
		return "", false
	}
	return key[len(s.prefix):], true
}

// isChunk reports whether key, a key matched by the filter D*.*.*, is a
// chunk key of the store: P<id>.<chunk set in base 36>.<n in decimal>, the
// numbers written as chunks.key writes them.
func (s *Store) isChunk(key string) bool {
	rest, ok := strings.CutPrefix(key, s.prefix)
	if !ok {
		return false
	}
	id, nums, _ := strings.Cut(rest, ".")
	set, n, _ := strings.Cut(nums, ".")
	if id == "" {
		return false
	}
	u, err := strconv.ParseUint(set, 36, 64)
	if err != nil || strconv.FormatUint(u, 36) != set {
		return false
	}
	u, err = strconv.ParseUint(n, 10, 32)
	return err == nil && strconv.FormatUint(u, 10) == n
}

// watch calls fn with the key, value (nil with meta) and revision of the
// latest value of every key that matches filter and holds a value, as the
// bucket delivers them, until it has delivered the last of the values the
// keys held when the watch began or fn returns an error (returned as it is).
// Other errors name op. With a context that has no deadline, each wait for
// the server (not the time spent in fn) is bounded by stallTimeout.
func (s *Store) watch(ctx context.Context, op, filter string, meta bool, fn func(key string, value []byte, rev uint64) error) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, op, err)
	}
	// The watcher lives as long as wctx: nats.go unsubscribes it when
	// wctx ends.
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var stall *time.Timer
	if _, ok := ctx.Deadline(); !ok {
		stall = time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
		defer stall.Stop()
	}
	fail := func(err error) error {
		if ctx.Err() == nil && wctx.Err() != nil {
			err = context.Cause(wctx)
		}
		return ctxerr.Wrap(ctx, op, err)
	}
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if meta {
		opts = append(opts, jetstream.MetaOnly())
	}
	w, err := s.kv.Watch(wctx, filter, opts...)
	if err != nil {
		return fail(err)
	}
	defer func() {
		// The watcher's goroutine may be blocked handing over an entry:
		// take what it still sends until it closes the channel.
		_ = w.Stop()
		for range w.Updates() {
		}
	}()
	for {
		if err := wctx.Err(); err != nil { // ended during fn
			return fail(err)
		}
		if stall != nil {
			stall.Reset(stallTimeout)
		}
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case e, ok = <-w.Updates():
		case <-wctx.Done():
			return fail(wctx.Err())
		}
		if stall != nil {
			stall.Stop()
		}
		switch {
		case !ok && wctx.Err() != nil:
			return fail(wctx.Err())
		case !ok:
			return fail(errors.New("the watcher stopped (connection closed?)"))
		case e == nil: // every value there was at the start is delivered
			return nil
		}
		if err := fn(e.Key(), e.Value(), e.Revision()); err != nil {
			return err
		}
	}
}

// scanBatch is how many keys Scan gathers before it reads their records.
const scanBatch = 1000

// Scan calls fn with the id and record of each live session under the
// store's prefix, until fn returns an error, which Scan then returns. A
// watcher on the bucket delivers the keys alone (no values), and Scan reads
// the records of every scanBatch of them with a Get each: the watcher can
// run ahead of fn by as much as the server's flow control lets it, and that
// is then keys, not records. It skips expired records, values the store did
// not write, chunk keys and the owner index; a chunked record is read from
// its chunks. fn may call the store's methods, Delete included.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	dir, _ := s.split()
	batch := make([]string, 0, scanBatch)
	flush := func() error {
		for _, key := range batch {
			if err := ctx.Err(); err != nil {
				return ctxerr.Wrap(ctx, "natsstore: scan", err)
			}
			id, _ := s.sessionID(key)
			e, err := s.read(ctx, key)
			switch {
			case errors.Is(err, session.ErrNotFound): // deleted or expired since, or not the store's
				continue
			case err != nil:
				return err
			}
			if err := fn(id, e.data); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	err := s.watch(ctx, "natsstore: scan", dir+"*", true, func(key string, _ []byte, _ uint64) error {
		if _, ok := s.sessionID(key); !ok {
			return nil
		}
		if batch = append(batch, key); len(batch) == scanBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// Count returns the number of live sessions under the store's prefix. It is
// exact as of the watch (records expired but still in the bucket are not
// counted), so it reads every record's value, though not the chunks of
// chunked records.
func (s *Store) Count(ctx context.Context) (int, error) {
	dir, _ := s.split()
	n := 0
	err := s.watch(ctx, "natsstore: count", dir+"*", false, func(key string, v []byte, rev uint64) error {
		if _, ok := s.sessionID(key); ok {
			if e := parse(rev, v); e.live(time.Now()) {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Clear purges every session key, chunk key and owner index key under the
// store's prefix, clearWorkers at a time, and no other key of the bucket.
// Purging leaves a marker per key, which the bucket TTL removes, as Delete
// does.
func (s *Store) Clear(ctx context.Context) error {
	dir, _ := s.split()
	passes := []struct {
		filter string
		match  func(string) bool
	}{
		{dir + "*", func(key string) bool { _, ok := s.sessionID(key); return ok }},
		{dir + "*.*.*", s.isChunk},
		{s.prefix + ownerMark + "*", func(string) bool { return true }},
	}
	for _, p := range passes {
		if err := s.purgeAll(ctx, p.filter, p.match); err != nil {
			return err
		}
	}
	return nil
}

// purgeAll purges the keys that match filter and match.
func (s *Store) purgeAll(ctx context.Context, filter string, match func(string) bool) error {
	const op = "natsstore: clear"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		purgeErr error // the first purge that failed
	)
	keys := make(chan string)
	for range clearWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keys {
				if err := s.kv.Purge(ctx, key); err != nil {
					mu.Lock()
					if purgeErr == nil {
						purgeErr = ctxerr.Wrap(ctx, op+": purge", err)
					}
					mu.Unlock()
					cancel() // stops the watch
				}
			}
		}()
	}
	err := s.watch(ctx, op, filter, true, func(key string, _ []byte, _ uint64) error {
		if !match(key) {
			return nil
		}
		select {
		case keys <- key:
			return nil
		case <-ctx.Done():
			return ctxerr.Wrap(ctx, op, ctx.Err())
		}
	})
	close(keys)
	wg.Wait()
	if purgeErr != nil {
		return purgeErr
	}
	return err
}
