// Package memory is the in-process session store, the default of the session
// middleware. Records live in a sharded map; expired ones are invisible at
// once and deleted by a background cleanup that Close stops.
//
//	store := memory.New(memory.Config{})
//	defer store.Close()
//
// It implements session.Store with every optional capability: Touch, GetTTL,
// CompareAndSet, and io.Closer; for administration session.Scanner,
// session.Counter and session.Clearer (Scan, Count and Clear report and
// delete live records only; Scan copies a shard's live records out and
// calls its function with no lock held); and session.OwnerIndex (Own,
// Disown, Owned), which session.Manager.DestroyOwner and Devices use.
// Records are not shared between processes and do not survive a restart;
// use a networked store for that.
//
// Memory: an id of the middleware's form (43 characters of base64url) is kept
// as its 32 decoded bytes inside the map slot (8 as the key, 24 beside the
// record), with no string of its own; a record as one byte slice, copied to
// its exact size when the caller's has much unused capacity; its expiry as
// Unix nanoseconds. A session holding a small value costs about 230 bytes
// of heap at a million sessions (TestMemoryFootprint). Go maps never shrink,
// so the cleanup rebuilds a shard's maps once maps grown to their present
// count would be smaller, and the heap of an expired spike of sessions is
// given back.
//
// The owner index lies apart from the records, so a session without an
// owner costs nothing more: a map from owner to its ids and their until
// times, in 16 shards under locks of their own, made at the first Own. An
// owner's entries past their time are removed by its next Own and by the
// background cleanup, which also removes owners left with none.
package memory

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/fibersession/session/internal/errs"
	"github.com/fibersession/session/internal/sweep"
)

const (
	shardCount = 64 // 1 << (64 - 58), see Store.ref
	// Maps that never held more than shrinkMin records are not rebuilt.
	shrinkMin = 64
)

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
	mix     uint64 // random, from seed
	shards  [shardCount]shard
	owners  [ownerShardCount]ownerShard // the owner index (admin.go)
	cleanup *sweep.Loop
}

// shard holds a share of the records, each in one of three maps.
type shard struct {
	mu sync.RWMutex
	// keys files ids of the middleware's form, decoded (id.go), by their
	// first 8 bytes: a uint64 key is the map's fastest kind, and the id takes
	// no string of its own.
	keys map[uint64]keyed
	// clash holds such ids whose first 8 bytes an id in keys has already.
	// The middleware's ids are random, so it is practically always empty.
	clash map[key]item
	// other holds every other id. Its values are pointers so that writing
	// over a record never replaces the map's copy of the id with the caller's.
	other map[string]*item
	peak  int // the most records held since the maps were last rebuilt (their size follows it)
}

type item struct {
	data    []byte
	expires int64 // unix nanoseconds
}

// keyed is an item in shard.keys, with the last 24 bytes of its id.
type keyed struct {
	rest [keyLen - 8]byte
	item
}

// New returns an empty store and starts its background cleanup. It has no
// client and nothing that can fail, so it returns no error.
func New(cfg Config) *Store {
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = time.Minute
	}
	s := &Store{seed: maphash.MakeSeed()}
	s.mix = maphash.String(s.seed, "")
	for i := range s.shards {
		s.shards[i].keys = make(map[uint64]keyed)
		s.shards[i].clash = make(map[key]item)
		s.shards[i].other = make(map[string]*item)
	}
	s.cleanup = sweep.Start(cfg.CleanupInterval, s.DeleteExpired, nil, "memory")
	return s
}

// Where a record is, or goes (ref.at).
const (
	inKeys  = iota // shard.keys[ref.head()]
	inClash        // shard.clash[ref.k]
	inOther        // shard.other[ref.id]
)

// ref is an id as the store files it: decoded when it has the middleware's
// form, else the caller's string, which the store copies before keeping it.
type ref struct {
	k      key
	id     string
	packed bool  // k holds the id
	at     uint8 // set by find
	p      *item // set by find: the record in shard.other
}

func (r *ref) head() uint64            { return binary.LittleEndian.Uint64(r.k[:8]) }
func (r *ref) rest() *[keyLen - 8]byte { return (*[keyLen - 8]byte)(r.k[8:]) }

// ref sets r to id's ref and returns its shard: for an id of the
// middleware's form, the shard is chosen by its first 8 random bytes (mixed
// with the store's seed), for any other by its hash.
func (s *Store) ref(r *ref, id string) *shard {
	r.id = id
	if r.packed = decodeID(&r.k, id); r.packed {
		return &s.shards[(r.head()^s.mix)*0x9e3779b97f4a7c15>>58]
	}
	return &s.shards[maphash.String(s.seed, id)%shardCount]
}

func (sh *shard) len() int { return len(sh.keys) + len(sh.clash) + len(sh.other) }

// find returns the record under r and whether there is one, and sets r.at
// to where it is, or else to where it goes; the caller holds a lock.
func (sh *shard) find(r *ref) (item, bool) {
	if !r.packed {
		r.at = inOther
		if p, ok := sh.other[r.id]; ok {
			r.p = p
			return *p, true
		}
		return item{}, false
	}
	e, taken := sh.keys[r.head()]
	if taken && e.rest == *r.rest() {
		r.at = inKeys
		return e.item, true
	}
	r.at = inClash
	if len(sh.clash) > 0 {
		if it, ok := sh.clash[r.k]; ok {
			return it, true
		}
	}
	if !taken {
		r.at = inKeys
	}
	return item{}, false
}

// put stores it under r where find said; the caller holds the write lock
// and called find under it.
func (sh *shard) put(r *ref, it item) {
	switch {
	case r.at == inKeys:
		sh.keys[r.head()] = keyed{rest: *r.rest(), item: it}
	case r.at == inClash:
		sh.clash[r.k] = it
	case r.p != nil:
		*r.p = it
	default:
		p := new(item)
		*p = it
		sh.other[strings.Clone(r.id)] = p // the map keeps the id: keep a copy
	}
	if n := sh.len(); n > sh.peak {
		sh.peak = n
	}
}

// del deletes the record that find found under r; the caller holds the
// write lock and called find under it.
func (sh *shard) del(r *ref) {
	switch r.at {
	case inKeys:
		delete(sh.keys, r.head())
	case inClash:
		delete(sh.clash, r.k)
	default:
		delete(sh.other, r.id)
	}
}

// shrink rebuilds the shard's maps when maps grown to their present count
// would have fewer slots (slots), as Go maps never give back the memory of
// deleted entries. The caller holds the write lock. DeleteExpired calls it
// once per shard on every run, which visits every record anyway: a rebuild,
// which copies the records left, at most doubles the run's work.
func (sh *shard) shrink() {
	n := sh.len()
	if sh.peak < shrinkMin || slots(n) >= slots(sh.peak) {
		return
	}
	keys := make(map[uint64]keyed, len(sh.keys))
	for h, e := range sh.keys {
		keys[h] = e
	}
	clash := make(map[key]item, len(sh.clash))
	for k, it := range sh.clash {
		clash[k] = it
	}
	other := make(map[string]*item, len(sh.other))
	for id, p := range sh.other {
		other[id] = p
	}
	sh.keys, sh.clash, sh.other, sh.peak = keys, clash, other, n
}

// slots returns the number of slots of a map grown to hold n entries: the
// least power of two they fill to at most 7/8 (Go's swiss tables; older
// maps are close).
func slots(n int) int {
	return max(8, 1<<bits.Len(uint((8*n+6)/7-1))) // 8n/7 rounded up, then to a power of two
}

// keep returns the slice the store keeps for data: data itself, or an exactly
// sized copy when data's backing array is much longer than data, so that a
// record does not hold memory it does not use for as long as it lives.
func keep(data []byte) []byte {
	if waste := cap(data) - len(data); waste > 32 && waste > len(data)/8 {
		return append(make([]byte, 0, len(data)), data...)
	}
	return data
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
	var r ref
	sh := s.ref(&r, id)
	sh.mu.RLock()
	it, ok := sh.find(&r)
	sh.mu.RUnlock()
	now := time.Now().UnixNano()
	if !ok || it.expires <= now {
		return nil, 0, errs.ErrNotFound
	}
	return it.data, time.Duration(it.expires - now), nil
}

// Set stores data under id for ttl. The store keeps data without copying it,
// unless data's backing array is much longer than data (more than 32 bytes
// and an eighth of data unused): then it keeps an exactly sized copy.
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data = keep(data)
	var r ref
	sh := s.ref(&r, id)
	expires := time.Now().Add(ttl).UnixNano()
	sh.mu.Lock()
	sh.find(&r)
	sh.put(&r, item{data: data, expires: expires})
	sh.mu.Unlock()
	return nil
}

// CompareAndSet stores data under id only if the live record equals old (nil
// old: only if there is no live record). It keeps data as Set does.
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	data = keep(data)
	var r ref
	sh := s.ref(&r, id)
	now := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, ok := sh.find(&r)
	live := ok && it.expires > now.UnixNano()
	if old == nil && live || old != nil && (!live || !bytes.Equal(it.data, old)) {
		return false, nil
	}
	sh.put(&r, item{data: data, expires: now.Add(ttl).UnixNano()})
	return true, nil
}

// Touch sets the remaining time to live of a live record to ttl.
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var r ref
	sh := s.ref(&r, id)
	now := time.Now()
	sh.mu.Lock()
	if it, ok := sh.find(&r); ok && it.expires > now.UnixNano() {
		it.expires = now.Add(ttl).UnixNano()
		sh.put(&r, it)
	}
	sh.mu.Unlock()
	return nil
}

// Delete removes the record under id.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var r ref
	sh := s.ref(&r, id)
	sh.mu.Lock()
	if _, ok := sh.find(&r); ok {
		sh.del(&r)
	}
	sh.mu.Unlock()
	return nil
}

// Len reports the number of records held, expired ones not yet swept included.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += sh.len()
		sh.mu.RUnlock()
	}
	return n
}

// DeleteExpired deletes every expired record now and reports how many, a
// shard at a time, and rebuilds the maps of a shard left with far fewer
// records than they were grown for (after expiry or Delete). Then it removes
// the owner index entries whose time has passed (not counted). The
// background cleanup calls it every Config.CleanupInterval. It stops early,
// with ctx's error, when ctx ends.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	var n int64
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		sh := &s.shards[i]
		now := time.Now().UnixNano()
		sh.mu.Lock()
		for h, e := range sh.keys {
			if e.expires <= now {
				delete(sh.keys, h)
				n++
			}
		}
		for k, it := range sh.clash {
			if it.expires <= now {
				delete(sh.clash, k)
				n++
			}
		}
		for id, p := range sh.other {
			if p.expires <= now {
				delete(sh.other, id)
				n++
			}
		}
		sh.shrink()
		sh.mu.Unlock()
	}
	return n, s.pruneOwners(ctx)
}

// Close stops the background cleanup and waits for it to exit. The store
// stays usable; Close may be called more than once.
func (s *Store) Close() error {
	s.cleanup.Stop()
	return nil
}
