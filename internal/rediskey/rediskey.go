// Package rediskey is what the two Redis stores share, so that they keep
// the same records under the same keys and either can read the other's:
// stores/redisstore (go-redis) and stores/rueidisstore (rueidis). It holds
// the layout of the keys, the SCAN pattern of a prefix, and the Lua scripts
// of compare-and-set and of an owner's index; each store runs them through
// its own client.
package rediskey

import (
	"encoding/base64"
	"strings"
	"time"
)

// ownerMark follows the prefix in the key of an owner's index. It holds a
// ':', which no id of the middleware's form (base64url) holds, and Scan,
// Count and the stores' own reads never take such a key for a record.
const ownerMark = "owner:"

// ScanCount is the COUNT hint of every SCAN: about this many keys a batch.
const ScanCount = 1000

// Owner returns the key of owner's index under prefix: prefix + "owner:" +
// owner in unpadded base64url, so that no owner can name another's key, a
// pattern or a record's key.
func Owner(prefix, owner string) string {
	return prefix + ownerMark + base64.RawURLEncoding.EncodeToString([]byte(owner))
}

// IsIndex reports whether key, which starts with prefix, is an owner's index
// rather than a record.
func IsIndex(prefix, key string) bool {
	return strings.HasPrefix(key[len(prefix):], ownerMark)
}

// Match is the SCAN pattern of every key under prefix: prefix with the
// glob's special characters escaped, then "*".
func Match(prefix string) string {
	var b strings.Builder
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('*')
	return b.String()
}

// CompareAndSet is the Lua script of a compare-and-set against a record:
// KEYS[1] the key, ARGV[1] the new data, ARGV[2] the TTL in milliseconds,
// ARGV[3] the expected data. It returns 1 when it wrote, 0 when not. (One
// against no record is SET ... NX, without a script.)
const CompareAndSet = `
if redis.call('GET', KEYS[1]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`

// Own is the Lua script of an owner index's Own: KEYS[1] the index, ARGV[1]
// the session id, ARGV[2] its until and ARGV[3] now, in Unix milliseconds.
// It adds the id or moves its entry (ZADD), removes the entries whose time
// has passed (ZREMRANGEBYSCORE -inf now), and sets the key's expiry to its
// latest until (PEXPIRE), so that the index of an owner who never returns
// expires with the last session.
const Own = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', tonumber(last[2]) - tonumber(ARGV[3])))
end
return 0
`

// maxScore bounds the scores of an owner's index: Unix milliseconds that a
// double holds exactly.
const maxScore = 1<<53 - 1

// UnixMilli is t in Unix milliseconds, at most what a sorted set's score
// holds exactly: the score of an entry of an owner's index.
func UnixMilli(t time.Time) int64 {
	if t.Unix() >= maxScore/1000 {
		return maxScore
	}
	return min(t.UnixMilli(), maxScore)
}
