// Package memory is the in-process session store, the default of the session
// middleware. Records live in a sharded map; expired ones are invisible at
// once and deleted by a background cleanup that Close stops.
//
//	store := memory.New(memory.Config{})
//	defer store.Close()
//
// It implements session.Store with every optional capability: Touch, GetTTL,
// CompareAndSet, and io.Closer. Records are not shared between processes and
// do not survive a restart; use a networked store for that.
package memory

import (
	"bytes"
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/fibersession/session/internal/errs"
	"github.com/fibersession/session/internal/sweep"
)

const shardCount = 64

// Config holds the store's options. The zero value is ready to use.
type Config struct {
	// CleanupInterval is how often expired records are deleted in the
	// background. Default (zero): one minute. A negative value runs no
	// background cleanup: expired records are still never returned, and are
	// deleted when written over or by DeleteExpired.
	CleanupInterval time.Duration
}

// Store is a sharded in-memory store. The zero value is not usable; call New.
type Store struct {
	seed    maphash.Seed
	shards  [shardCount]shard
	cleanup *sweep.Loop
}

type shard struct {
	mu    sync.RWMutex
	items map[string]item
}

type item struct {
	data    []byte
	expires int64 // unix nanoseconds
}

// New returns an empty store and starts its background cleanup. It has no
// client and nothing that can fail, so it returns no error.
func New(cfg Config) *Store {
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = time.Minute
	}
	s := &Store{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].items = make(map[string]item)
	}
	s.cleanup = sweep.Start(cfg.CleanupInterval, s.DeleteExpired, nil, "memory")
	return s
}

func (s *Store) shard(id string) *shard {
	return &s.shards[maphash.String(s.seed, id)%shardCount]
}

// Get returns the record under id, or ErrNotFound when it is absent or expired.
// The returned slice is shared and must not be modified.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.GetTTL(ctx, id)
	return data, err
}

// GetTTL is Get that also returns the record's remaining time to live.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	sh := s.shard(id)
	sh.mu.RLock()
	it, ok := sh.items[id]
	sh.mu.RUnlock()
	now := time.Now().UnixNano()
	if !ok || it.expires <= now {
		return nil, 0, errs.ErrNotFound
	}
	return it.data, time.Duration(it.expires - now), nil
}

// Set stores data under id for ttl. The store keeps data without copying it.
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(id)
	sh.mu.Lock()
	if _, ok := sh.items[id]; !ok {
		id = strings.Clone(id) // a new key is kept: keep a copy
	}
	sh.items[id] = item{data: data, expires: time.Now().Add(ttl).UnixNano()}
	sh.mu.Unlock()
	return nil
}

// CompareAndSet stores data under id only if the live record equals old (nil
// old: only if there is no live record).
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	sh := s.shard(id)
	now := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, ok := sh.items[id]
	live := ok && it.expires > now.UnixNano()
	if old == nil && live || old != nil && (!live || !bytes.Equal(it.data, old)) {
		return false, nil
	}
	if !ok {
		id = strings.Clone(id) // a new key is kept: keep a copy
	}
	sh.items[id] = item{data: data, expires: now.Add(ttl).UnixNano()}
	return true, nil
}

// Touch sets the remaining time to live of a live record to ttl.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(id)
	now := time.Now()
	sh.mu.Lock()
	if it, ok := sh.items[id]; ok && it.expires > now.UnixNano() {
		it.expires = now.Add(ttl).UnixNano()
		sh.items[id] = it
	}
	sh.mu.Unlock()
	return nil
}

// Delete removes the record under id.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(id)
	sh.mu.Lock()
	delete(sh.items, id)
	sh.mu.Unlock()
	return nil
}

// Len reports the number of records held, expired ones not yet swept included.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.items)
		sh.mu.RUnlock()
	}
	return n
}

// DeleteExpired deletes every expired record now and reports how many, a
// shard at a time. The background cleanup calls it every
// Config.CleanupInterval. It stops early, with ctx's error, when ctx ends.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	var n int64
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		sh := &s.shards[i]
		now := time.Now().UnixNano()
		sh.mu.Lock()
		for id, it := range sh.items {
			if it.expires <= now {
				delete(sh.items, id)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n, nil
}

// Close stops the background cleanup and waits for it to exit. The store
// stays usable; Close may be called more than once.
func (s *Store) Close() error {
	s.cleanup.Stop()
	return nil
}
