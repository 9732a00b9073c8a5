package memory

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// entry is a live record copied out of a shard by Scan: an id of the
// middleware's form stays decoded in k until the shard is unlocked.
type entry struct {
	k    key
	id   string // "" when k holds the id
	data []byte
}

// Scan calls fn with the id and record of every live record, a shard at a
// time: it copies the shard's live entries out under its read lock, releases
// it, and only then calls fn, so fn may use the store. It stops at the first
// error fn returns and returns it, or with ctx's error when ctx ends. data is
// the stored record itself, shared and never to be modified; a record written
// or deleted during the scan may or may not be reported.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	var batch []entry
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch = s.shards[i].live(batch[:0], time.Now().UnixNano())
		for j := range batch {
			e := &batch[j]
			id := e.id
			if id == "" {
				id = base64.RawURLEncoding.EncodeToString(e.k[:])
			}
			if err := fn(id, e.data); err != nil {
				return err
			}
		}
	}
	return nil
}

// live appends the shard's records that have not expired at now to batch.
func (sh *shard) live(batch []entry, now int64) []entry {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	for h, e := range sh.keys {
		if e.expires > now {
			b := entry{data: e.data}
			binary.LittleEndian.PutUint64(b.k[:8], h)
			copy(b.k[8:], e.rest[:])
			batch = append(batch, b)
		}
	}
	for k, it := range sh.clash {
		if it.expires > now {
			batch = append(batch, entry{k: k, data: it.data})
		}
	}
	for id, p := range sh.other {
		if p.expires > now {
			batch = append(batch, entry{id: id, data: p.data})
		}
	}
	return batch
}

// Count returns the number of live records (expired ones not yet deleted are
// not counted; Len counts them). Owner index entries are not records.
func (s *Store) Count(ctx context.Context) (int, error) {
	n := 0
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		sh := &s.shards[i]
		now := time.Now().UnixNano()
		sh.mu.RLock()
		for _, e := range sh.keys {
			if e.expires > now {
				n++
			}
		}
		for _, it := range sh.clash {
			if it.expires > now {
				n++
			}
		}
		for _, p := range sh.other {
			if p.expires > now {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n, nil
}

// Clear deletes every record and the whole owner index, a shard at a time: a
// record written during the call may survive it. The maps are replaced by
// empty ones, so their memory is given back at once.
func (s *Store) Clear(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.keys = make(map[uint64]keyed)
		sh.clash = make(map[key]item)
		sh.other = make(map[string]*item)
		sh.peak = 0
		sh.mu.Unlock()
	}
	for i := range s.owners {
		ix := &s.owners[i]
		ix.mu.Lock()
		ix.m, ix.peak = nil, 0
		ix.mu.Unlock()
	}
	return nil
}

// ownerShardCount is the number of shards of the owner index, so that the
// cleanup's pruning and the Owns of unrelated owners do not wait on one lock.
const ownerShardCount = 16

// ownerShard holds a share of the owner index. Its map is made by the first
// Own, so a store whose sessions have no owner holds no index at all.
type ownerShard struct {
	mu   sync.Mutex
	m    map[string]*owned // by owner
	peak int               // the most owners held since m was made
}

// owned is one owner's entries.
type owned struct {
	ids  map[string]int64 // session id to until, Unix nanoseconds
	next int64            // no entry's until is earlier: prune has work only from then
	peak int              // the most entries held since ids was made
}

func (s *Store) ownerShard(owner string) *ownerShard {
	return &s.owners[maphash.String(s.seed, owner)%ownerShardCount]
}

// unixNano is t in Unix nanoseconds, clamped to int64 (t.UnixNano is
// undefined outside the years 1678 to 2262).
func unixNano(t time.Time) int64 {
	switch sec := t.Unix(); {
	case sec >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	case sec <= math.MinInt64/int64(time.Second):
		return math.MinInt64
	}
	return t.UnixNano()
}

// Own adds id to owner's sessions until the time until, or moves an existing
// entry to until (an until that has passed removes it), and removes the
// owner's entries whose time has passed. The index keeps copies of owner
// and id.
func (s *Store) Own(ctx context.Context, owner, id string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u, now := unixNano(until), time.Now().UnixNano()
	ix := s.ownerShard(owner)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	o := ix.m[owner]
	if o == nil {
		if u <= now {
			return nil
		}
		if ix.m == nil {
			ix.m = make(map[string]*owned)
		}
		o = &owned{ids: make(map[string]int64, 1), next: u}
		ix.m[strings.Clone(owner)] = o
		ix.peak = max(ix.peak, len(ix.m))
	}
	if u > now {
		// Assigning to a present string key stores the given key in the
		// map: a copy, never the caller's string.
		o.ids[strings.Clone(id)] = u
		o.next = min(o.next, u)
		o.peak = max(o.peak, len(o.ids))
	} else {
		delete(o.ids, id)
	}
	ix.prune(owner, o, now)
	return nil
}

// prune removes owner's entries whose time has passed at now, rebuilds its
// map when far smaller than it grew, and removes the owner when it has none
// left. The caller holds ix.mu.
func (ix *ownerShard) prune(owner string, o *owned, now int64) {
	if now >= o.next {
		o.next = math.MaxInt64
		for id, u := range o.ids {
			if u <= now {
				delete(o.ids, id)
			} else {
				o.next = min(o.next, u)
			}
		}
	}
	switch n := len(o.ids); {
	case n == 0:
		delete(ix.m, owner)
	case o.peak >= shrinkMin && slots(n) < slots(o.peak):
		ids := make(map[string]int64, n)
		for id, u := range o.ids {
			ids[id] = u
		}
		o.ids, o.peak = ids, n
	}
}

// shrink rebuilds the map of owners once far smaller than it grew. The
// caller holds ix.mu.
func (ix *ownerShard) shrink() {
	n := len(ix.m)
	if n == 0 {
		ix.m, ix.peak = nil, 0
		return
	}
	if ix.peak < shrinkMin || slots(n) >= slots(ix.peak) {
		return
	}
	m := make(map[string]*owned, n)
	for owner, o := range ix.m {
		m[owner] = o
	}
	ix.m, ix.peak = m, n
}

// Disown removes ids from owner's sessions; missing entries are ignored.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ix := s.ownerShard(owner)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	o := ix.m[owner]
	if o == nil {
		return nil
	}
	for _, id := range ids {
		delete(o.ids, id)
	}
	if len(o.ids) == 0 {
		delete(ix.m, owner)
	}
	return nil
}

// Owned returns the ids of owner's sessions whose time has not passed, in no
// particular order.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	ix := s.ownerShard(owner)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	o := ix.m[owner]
	if o == nil {
		return nil, nil
	}
	ids := make([]string, 0, len(o.ids))
	for id, u := range o.ids {
		if u > now {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// pruneOwners removes the owner index entries whose time has passed, a
// shard at a time; DeleteExpired calls it after the records.
func (s *Store) pruneOwners(ctx context.Context) error {
	for i := range s.owners {
		if err := ctx.Err(); err != nil {
			return err
		}
		ix := &s.owners[i]
		now := time.Now().UnixNano()
		ix.mu.Lock()
		for owner, o := range ix.m {
			ix.prune(owner, o, now)
		}
		ix.shrink()
		ix.mu.Unlock()
	}
	return nil
}
