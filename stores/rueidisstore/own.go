package rueidisstore

import (
	"bytes"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fibersession/session"
)

// How a Get after this store's own write is kept from a stale cache.
//
// rueidis (read in its source, v1.0.34 to v1.0.59) serves DoCache from a
// cache that belongs to one connection ("pipe") of the node the key lives
// on: a miss sends CLIENT CACHING YES, MULTI, PTTL key, GET key, EXEC on the
// pipe that the key's slot picks (mux.DoCache: slot & (pipes-1)), and the
// server then tracks the key for that connection. A write of the key, from
// any connection, makes the server queue an "invalidate" push on the
// tracking connection before any later reply on it; that pipe's reader
// goroutine handles the push (deleting the entry) before it reads the next
// reply. But a plain Do picks a pipe at random when PipelineMultiplex > 0
// (mux.pipeline: slotfn), the default of a standalone client on a machine
// with two cores or more, so this store's SET usually travels on another
// pipe than the one whose cache holds the key, and its reply says nothing
// about whether that pipe's reader has handled the invalidation yet: the
// next DoCache may still find the old entry. Even on the same pipe (a
// Cluster client has one a node by default) Redis 7 sends the invalidation
// of a key that the writing connection tracks itself after the write's
// reply. Nor does rueidis's API offer a way to send a plain GET on the pipe
// a key's DoCache uses, which would order the reading after the push.
//
// So the store remembers what it wrote instead: after each write it keeps,
// per key, a mark with a hash of the bytes written (or "deleted", or
// "unknown" after a failed or refused write), and the next Get of a marked
// key checks what DoCache answers against it. Bytes equal to the write (or
// "not found" after a delete) are this write or a later state equal to it,
// whatever the cache's age: the answer stands and the mark goes. Anything
// else may be an entry from before the write: the Get asks the server with
// a plain GET and answers that; if the server's answer equals the cached
// one, the entry is current and the mark goes, else the mark stays for the
// next Get. Usually the invalidation has arrived long before, DoCache misses
// and refills the entry with one round trip on the tracking pipe, which
// confirms the write: read-your-writes costs no extra round trip.
//
// A mark need not outlive CacheTTL: an entry that holds a value from before
// the write was requested before the write's reply came back, and DoCache
// serves an entry only until its request time plus CacheTTL (lru.Flight sets
// the entry's expiry from the time of the miss; the server's PTTL can only
// shorten it). So marks expire CacheTTL plus a margin after the write, and
// the record of marks is bounded: a shard that fills up with live marks is
// emptied and, for as long as its marks would have lived, serves every Get
// of its keys with a plain GET.

const (
	shards        = 64   // a power of two
	marksPerShard = 1024 // 65,536 marks at most: about 10 MB with 43-character ids
	markMargin    = time.Second
	markWritten   = 1
	markDeleted   = 2
	markUnknown   = 3
)

// mark is what the store wrote to a key last.
type mark struct {
	seq   uint64 // unique per write, so that a Get forgets only the mark it checked
	sum   uint64 // maphash of the bytes written (markWritten)
	size  int    // their length
	kind  uint8
	until int64 // Unix ns after which the mark is of no use
}

// matches reports whether a read that found data (err nil) or nothing
// (session.ErrNotFound) shows the write the mark stands for.
func (m *mark) matches(seed maphash.Seed, data []byte, err error) bool {
	switch m.kind {
	case markWritten:
		return err == nil && len(data) == m.size && maphash.Bytes(seed, data) == m.sum
	case markDeleted:
		return errors.Is(err, session.ErrNotFound)
	}
	return false
}

// writes is the store's record of its own recent writes, and of failures
// that make its cache suspect.
type writes struct {
	life    int64 // how long a mark is kept, in ns: CacheTTL plus markMargin
	seed    maphash.Seed
	seq     atomic.Uint64
	suspect atomic.Uint64 // seq of the latest failure not followed by a successful plain GET; 0: none
	shard   [shards]struct {
		mu    sync.Mutex
		marks map[string]mark
		plain int64 // Unix ns: until then every Get of the shard's keys is a plain GET
	}
}

func newWrites(cacheTTL time.Duration) *writes {
	w := &writes{life: int64(cacheTTL + markMargin), seed: maphash.MakeSeed()}
	for i := range w.shard {
		w.shard[i].marks = make(map[string]mark)
	}
	return w
}

// of returns the index of key's shard.
func (w *writes) of(key string) int {
	return int(maphash.String(w.seed, key) & (shards - 1))
}

// lookup returns key's mark (nil when none), and whether the Get must be a
// plain GET: the shard overflowed, or a failure makes the cache suspect.
// epoch is the suspicion to clear when that plain GET succeeds.
func (w *writes) lookup(key string) (m *mark, plain bool, epoch uint64) {
	if epoch = w.suspect.Load(); epoch != 0 {
		return nil, true, epoch
	}
	now := time.Now().UnixNano()
	sh := &w.shard[w.of(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now < sh.plain {
		return nil, true, 0
	}
	if got, ok := sh.marks[key]; ok {
		if now < got.until {
			return &got, false, 0
		}
		delete(sh.marks, key)
	}
	return nil, false, 0
}

// add records a write of key: markWritten with its bytes, markDeleted, or
// markUnknown for a write that failed or was refused (what the key holds
// is not known).
func (w *writes) add(key string, kind uint8, data []byte) {
	m := mark{seq: w.seq.Add(1), kind: kind}
	if kind == markWritten {
		m.sum, m.size = maphash.Bytes(w.seed, data), len(data)
	}
	now := time.Now().UnixNano()
	m.until = now + w.life
	sh := &w.shard[w.of(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.marks[key]; !ok && len(sh.marks) >= marksPerShard {
		for k, old := range sh.marks {
			if now >= old.until {
				delete(sh.marks, k)
			}
		}
		if len(sh.marks) >= marksPerShard {
			// Every mark dropped here would have lived at most until
			// now + life: plain GETs cover the shard until then.
			clear(sh.marks)
			sh.plain = now + w.life
		}
	}
	sh.marks[key] = m
}

// forget drops key's mark if it is still the one with seq.
func (w *writes) forget(key string, seq uint64) {
	sh := &w.shard[w.of(key)]
	sh.mu.Lock()
	if m, ok := sh.marks[key]; ok && m.seq == seq {
		delete(sh.marks, key)
	}
	sh.mu.Unlock()
}

// bypass makes every Get a plain GET for as long as a mark would live
// (after Clear, which deletes keys without marking each).
func (w *writes) bypass() {
	until := time.Now().UnixNano() + w.life
	for i := range w.shard {
		sh := &w.shard[i]
		sh.mu.Lock()
		sh.plain = max(sh.plain, until)
		sh.mu.Unlock()
	}
}

// fail records that a call failed otherwise than with a Redis error reply
// (a broken or frozen connection, a timeout): until a plain GET sent after
// it succeeds, no Get trusts the cache, whose connection may have missed
// invalidations that rueidis has not noticed yet.
func (w *writes) fail() {
	w.suspect.Store(w.seq.Add(1))
}

// recovered ends the suspicion of epoch, unless a later failure renewed it.
func (w *writes) recovered(epoch uint64) {
	if epoch != 0 {
		w.suspect.CompareAndSwap(epoch, 0)
	}
}

// same reports whether two reads found the same: both nothing, or equal
// bytes.
func same(a []byte, aerr error, b []byte, berr error) bool {
	switch {
	case aerr == nil && berr == nil:
		return bytes.Equal(a, b)
	default:
		return errors.Is(aerr, session.ErrNotFound) && errors.Is(berr, session.ErrNotFound)
	}
}
