package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session/internal/ctxerr"
	"github.com/fibersession/session/internal/rediskey"
)

// OwnerKey returns the Redis key of owner's index: Prefix + "owner:" + owner
// in unpadded base64url, so that no owner can name another's key, a pattern
// or a record's key.
func (s *Store) OwnerKey(owner string) string {
	return rediskey.Owner(s.prefix, owner)
}

// isIndex reports whether key, which starts with the prefix, is an owner's
// index rather than a record.
func (s *Store) isIndex(key string) bool {
	return rediskey.IsIndex(s.prefix, key)
}

// nodes returns the clients to SCAN to see every key: each master of a
// Cluster, each live shard of a Ring, or else the store's client (a
// standalone server, or the master behind Sentinel).
func (s *Store) nodes(ctx context.Context) ([]redis.Cmdable, error) {
	var (
		mu    sync.Mutex
		nodes []redis.Cmdable
	)
	add := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		nodes = append(nodes, c)
		mu.Unlock()
		return nil
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, add); err != nil {
			return nil, err
		}
	case *redis.Ring:
		if err := c.ForEachShard(ctx, add); err != nil {
			return nil, err
		}
	default:
		nodes = append(nodes, s.client)
	}
	return nodes, nil
}

// scan calls each with the keys under the prefix, as one SCAN returns them
// (about rediskey.ScanCount a batch), on every node in turn, until each returns an
// error, which scan returns as it is. A failed command's error is wrapped
// with op.
func (s *Store) scan(ctx context.Context, op string, each func(keys []string) error) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "redisstore: "+op, err)
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return ctxerr.Wrap(ctx, "redisstore: "+op, err)
	}
	pattern := rediskey.Match(s.prefix)
	for _, node := range nodes {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, pattern, rediskey.ScanCount).Result()
			if err != nil {
				return ctxerr.Wrap(ctx, "redisstore: "+op, err)
			}
			if len(keys) > 0 {
				if err := each(keys); err != nil {
					return err
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}

// records keeps the keys of records from keys, in place.
func (s *Store) records(keys []string) []string {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, s.prefix) && !s.isIndex(k) {
			keys[n] = k
			n++
		}
	}
	return keys[:n]
}

// sharded reports whether the client spreads keys over several servers, so
// that a command must not name keys of different slots or shards.
func (s *Store) sharded() bool {
	switch s.client.(type) {
	case *redis.ClusterClient, *redis.Ring:
		return true
	}
	return false
}

// Scan calls fn with the id and record of every session under the prefix,
// a batch at a time: one SCAN MATCH prefix* COUNT 1000, then a pipeline of
// one GET a key (which a Cluster client splits by node), on every master of
// a Cluster (one after the other) or shard of a Ring. It stops at the first
// error fn returns and returns it. Owner indexes, keys gone or expired
// between SCAN and GET and keys that are not strings are skipped. data is
// valid only during the call.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	var gets []*redis.StringCmd
	return s.scan(ctx, "scan", func(keys []string) error {
		keys = s.records(keys)
		if len(keys) == 0 {
			return nil
		}
		pipe := s.client.Pipeline()
		gets = gets[:0]
		for _, k := range keys {
			gets = append(gets, pipe.Get(ctx, k))
		}
		_, _ = pipe.Exec(ctx) // each command's error is looked at below
		for i, get := range gets {
			data, err := get.Bytes()
			switch {
			case errors.Is(err, redis.Nil), err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
				continue
			case err != nil:
				return ctxerr.Wrap(ctx, "redisstore: scan", err)
			}
			if err := fn(keys[i][len(s.prefix):], data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Count returns the number of keys of records under the prefix (SCAN
// MATCH prefix* on every master of a Cluster or shard of a Ring; not
// DBSIZE, which would count every key of the database). Owner indexes are
// not counted.
func (s *Store) Count(ctx context.Context) (int, error) {
	n := 0
	err := s.scan(ctx, "count", func(keys []string) error {
		n += len(s.records(keys))
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Clear deletes every key under the prefix, records and owner indexes,
// and nothing else: SCAN MATCH prefix* COUNT 1000, then UNLINK of the
// batch's keys (one UNLINK a key in a pipeline with a Cluster or a Ring, as
// one command cannot name keys of different slots), on every master. A
// record written during the call may survive it.
func (s *Store) Clear(ctx context.Context) error {
	sharded := s.sharded()
	return s.scan(ctx, "clear", func(keys []string) error {
		n := 0
		for _, k := range keys {
			if strings.HasPrefix(k, s.prefix) {
				keys[n] = k
				n++
			}
		}
		keys = keys[:n]
		if len(keys) == 0 {
			return nil
		}
		var err error
		if sharded {
			pipe := s.client.Pipeline()
			for _, k := range keys {
				pipe.Unlink(ctx, k)
			}
			_, err = pipe.Exec(ctx)
		} else {
			err = s.client.Unlink(ctx, keys...).Err()
		}
		return ctxerr.Wrap(ctx, "redisstore: clear", err)
	})
}

// ownScript is Own's script, shared with the other Redis store.
var ownScript = redis.NewScript(rediskey.Own)

// Own adds id to owner's sessions until the time until, or moves its entry
// to until, and removes the owner's entries whose time has passed, in one
// Lua script on one key (so one Cluster slot): ZADD, ZREMRANGEBYSCORE -inf
// now, then PEXPIRE of the key to its latest until, so that the index of an
// owner who never returns expires with its last session. Times are the
// client's clock in Unix milliseconds.
func (s *Store) Own(ctx context.Context, owner, id string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "redisstore: own", err)
	}
	err := ownScript.Run(ctx, s.client, []string{s.OwnerKey(owner)}, id, rediskey.UnixMilli(until), time.Now().UnixMilli()).Err()
	return ctxerr.Wrap(ctx, "redisstore: own", err)
}

// Disown removes ids from owner's sessions (ZREM). Missing entries are not
// an error.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "redisstore: disown", err)
	}
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	return ctxerr.Wrap(ctx, "redisstore: disown", s.client.ZRem(ctx, s.OwnerKey(owner), members...).Err())
}

// Owned returns the ids of owner's sessions whose time has not passed
// (ZRANGEBYSCORE key (now +inf), in no particular order.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "redisstore: owned", err)
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ids, err := s.client.ZRangeByScore(ctx, s.OwnerKey(owner), &redis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "redisstore: owned", err)
	}
	return ids, nil
}
