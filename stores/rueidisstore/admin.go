package rueidisstore

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

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

// masters returns the nodes to SCAN to see every key: of the nodes the
// client knows (Client.Nodes: every node of a Cluster, replicas included,
// or the one server of a standalone or Sentinel client), those whose ROLE
// is master, in the order of their addresses. A client that knows one node
// only gets it whatever its role.
func (s *Store) masters(ctx context.Context) ([]rueidis.Client, error) {
	nodes := s.client.Nodes()
	addrs := make([]string, 0, len(nodes))
	for addr := range nodes {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs)
	if len(addrs) == 1 {
		return []rueidis.Client{nodes[addrs[0]]}, nil
	}
	var masters []rueidis.Client
	for _, addr := range addrs {
		n := nodes[addr]
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil {
			return nil, err
		}
		if len(role) > 0 {
			if r, err := role[0].ToString(); err == nil && r == "master" {
				masters = append(masters, n)
			}
		}
	}
	return masters, nil
}

// scan calls each with the keys under the prefix, as one SCAN returns them
// (about rediskey.ScanCount a batch), on every master in turn, until each returns an
// error, which scan returns as it is. A failed command's error is wrapped
// with op.
func (s *Store) scan(ctx context.Context, op string, each func(keys []string) error) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "rueidisstore: "+op, err)
	}
	nodes, err := s.masters(ctx)
	if err != nil {
		return ctxerr.Wrap(ctx, "rueidisstore: "+op, err)
	}
	pattern := rediskey.Match(s.prefix)
	for _, node := range nodes {
		var cursor uint64
		for {
			entry, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(rediskey.ScanCount).Build()).AsScanEntry()
			if err != nil {
				return ctxerr.Wrap(ctx, "rueidisstore: "+op, err)
			}
			if len(entry.Elements) > 0 {
				if err := each(entry.Elements); err != nil {
					return err
				}
			}
			if entry.Cursor == 0 {
				break
			}
			cursor = entry.Cursor
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

// Scan calls fn with the id and record of every session under the prefix,
// a batch at a time: one SCAN MATCH prefix* COUNT 1000, then one DoMulti of
// a GET a key (which a Cluster client splits by slot), on every master in
// turn. It stops at the first error fn returns and returns it. Owner
// indexes, keys gone or expired between SCAN and GET and keys that are not
// strings are skipped. The GETs bypass the client-side cache. data is valid
// only during the call.
func (s *Store) Scan(ctx context.Context, fn func(id string, data []byte) error) error {
	var gets rueidis.Commands
	return s.scan(ctx, "scan", func(keys []string) error {
		keys = s.records(keys)
		if len(keys) == 0 {
			return nil
		}
		gets = gets[:0]
		for _, k := range keys {
			gets = append(gets, s.client.B().Get().Key(k).Build())
		}
		for i, r := range s.client.DoMulti(ctx, gets...) {
			data, err := value(r)
			if err != nil {
				if failure(err) {
					return ctxerr.Wrap(ctx, "rueidisstore: scan", err)
				}
				continue // gone since the SCAN, or not a string (WRONGTYPE)
			}
			if err := fn(keys[i][len(s.prefix):], data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Count returns the number of keys of records under the prefix (SCAN
// MATCH prefix* on every master; not DBSIZE, which would count every key of
// the database). Owner indexes are not counted.
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
// and nothing else: SCAN MATCH prefix* COUNT 1000, then one DoMulti of an
// UNLINK a key (one command cannot name keys of several Cluster slots), on
// every master. A record written during the call may survive it. For
// CacheTTL afterwards, every Get of the store is a plain GET, so that none
// answers from an entry whose invalidation is still on its way.
func (s *Store) Clear(ctx context.Context) error {
	var unlinks rueidis.Commands
	err := s.scan(ctx, "clear", func(keys []string) error {
		unlinks = unlinks[:0]
		for _, k := range keys {
			if strings.HasPrefix(k, s.prefix) {
				unlinks = append(unlinks, s.client.B().Unlink().Key(k).Build())
			}
		}
		if len(unlinks) == 0 {
			return nil
		}
		for _, r := range s.client.DoMulti(ctx, unlinks...) {
			if err := r.Error(); err != nil {
				return ctxerr.Wrap(ctx, "rueidisstore: clear", err)
			}
		}
		return nil
	})
	if s.own != nil {
		s.own.bypass()
	}
	return err
}

// ownScript is Own's script, shared with the other Redis store.
var ownScript = rueidis.NewLuaScript(rediskey.Own)

// Own adds id to owner's sessions until the time until, or moves its entry
// to until, and removes the owner's entries whose time has passed, in one
// Lua script on one key (so one Cluster slot): ZADD, ZREMRANGEBYSCORE -inf
// now, then PEXPIRE of the key to its latest until, so that the index of an
// owner who never returns expires with its last session. Times are the
// client's clock in Unix milliseconds.
func (s *Store) Own(ctx context.Context, owner, id string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "rueidisstore: own", err)
	}
	args := []string{id, strconv.FormatInt(rediskey.UnixMilli(until), 10), strconv.FormatInt(time.Now().UnixMilli(), 10)}
	err := ownScript.Exec(ctx, s.client, []string{s.OwnerKey(owner)}, args).Error()
	return ctxerr.Wrap(ctx, "rueidisstore: own", err)
}

// Disown removes ids from owner's sessions (ZREM). Missing entries are not
// an error.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "rueidisstore: disown", err)
	}
	if len(ids) == 0 {
		return nil
	}
	err := s.client.Do(ctx, s.client.B().Zrem().Key(s.OwnerKey(owner)).Member(ids...).Build()).Error()
	return ctxerr.Wrap(ctx, "rueidisstore: disown", err)
}

// Owned returns the ids of owner's sessions whose time has not passed
// (ZRANGEBYSCORE key (now +inf), in no particular order.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, "rueidisstore: owned", err)
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ids, err := s.client.Do(ctx, s.client.B().Zrangebyscore().Key(s.OwnerKey(owner)).Min("("+now).Max("+inf").Build()).AsStrSlice()
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "rueidisstore: owned", err)
	}
	return ids, nil
}
