package natsstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session/internal/ctxerr"
)

// An owner's index entries are one value under the owner's key: a format
// byte, then for each entry its time (until: 8 bytes of big-endian Unix
// ms), the length of its id (uvarint) and the id.
const ownerFormat = 1

// maxOwnerTries bounds the read-modify-write rounds of one Own or Disown
// that lose to concurrent writes of the same owner.
const maxOwnerTries = 1000

// ownerEntry is one id of an owner's and its time.
type ownerEntry struct {
	id    string
	until int64 // Unix ms
}

// ownerKey returns the key of owner's index entries: P=owner.<owner in
// unpadded base64url, or "=" for "">. The encoding keeps wildcards, dots and
// bytes a key cannot hold out of the key, and is one token that no other
// owner's encoding equals.
func (s *Store) ownerKey(owner string) string {
	enc := "="
	if owner != "" {
		enc = base64.RawURLEncoding.EncodeToString([]byte(owner))
	}
	return s.prefix + ownerMark + enc
}

// decodeOwner returns the entries in v, an owner key's value, whose time is
// after now, and whether v holds others (or is not a value the store wrote,
// which holds none).
func decodeOwner(v []byte, now int64) (live []ownerEntry, stale bool) {
	if len(v) == 0 || v[0] != ownerFormat {
		return nil, true
	}
	for b := v[1:]; len(b) > 0; {
		if len(b) < 8 {
			return nil, true
		}
		until := int64(binary.BigEndian.Uint64(b))
		n, w := binary.Uvarint(b[8:])
		if w <= 0 || n > uint64(len(b)-8-w) {
			return nil, true
		}
		id := string(b[8+w : 8+w+int(n)])
		b = b[8+w+int(n):]
		if until > now {
			live = append(live, ownerEntry{id, until})
		} else {
			stale = true
		}
	}
	return live, stale
}

// encodeOwner returns the value that holds es.
func encodeOwner(es []ownerEntry) []byte {
	n := 1
	for _, e := range es {
		n += 8 + binary.MaxVarintLen64 + len(e.id)
	}
	v := make([]byte, 1, n)
	v[0] = ownerFormat
	for _, e := range es {
		v = binary.BigEndian.AppendUint64(v, uint64(e.until))
		v = binary.AppendUvarint(v, uint64(len(e.id)))
		v = append(v, e.id...)
	}
	return v
}

// loadOwner returns the entries under key whose time has not passed,
// whether the value holds others, and its revision (0: no value).
func (s *Store) loadOwner(ctx context.Context, op, key string) (live []ownerEntry, stale bool, rev uint64, err error) {
	kve, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, false, 0, nil
	case err != nil:
		return nil, false, 0, ctxerr.Wrap(ctx, op+": get", err)
	}
	live, stale = decodeOwner(kve.Value(), time.Now().UnixMilli())
	return live, stale, kve.Revision(), nil
}

// updateOwner rewrites owner's entries whose time has not passed as change
// returns them, with a write guarded by the revision it read them at, and
// reads and changes them again when someone else wrote them meanwhile. It
// writes nothing when change reports no change and no entry's time has
// passed, and purges the key when no entry is left.
func (s *Store) updateOwner(ctx context.Context, op, owner string, change func([]ownerEntry) ([]ownerEntry, bool)) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, op, err)
	}
	key := s.ownerKey(owner)
	for try := 0; try < maxOwnerTries; try++ {
		if try > 0 { // lost to a concurrent write: back off a random while
			limit := min(100*time.Microsecond<<min(try, 10), 20*time.Millisecond)
			t := time.NewTimer(rand.N(limit))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctxerr.Wrap(ctx, op, ctx.Err())
			}
		}
		live, stale, rev, err := s.loadOwner(ctx, op, key)
		if err != nil {
			return err
		}
		es, changed := change(live)
		switch {
		case !changed && !stale, len(es) == 0 && rev == 0:
			return nil
		case len(es) == 0:
			err = s.kv.Purge(ctx, key, jetstream.LastRevision(rev))
		case rev == 0:
			_, err = s.kv.Create(ctx, key, encodeOwner(es))
		default:
			_, err = s.kv.Update(ctx, key, encodeOwner(es), rev)
		}
		if err == nil {
			return nil
		}
		if !conflict(err) {
			return ctxerr.Wrap(ctx, op+": write", err)
		}
	}
	return fmt.Errorf("%s: gave up after %d writes that lost to concurrent writes of the owner's index", op, maxOwnerTries)
}

// Own adds id to owner's entries until the time until (or moves its
// entry's time to until), dropping the entries whose time has passed, in a
// read-modify-write of the owner's key (see the package documentation).
// Like Set, it refuses with an error wrapping ErrTTLTooLong an until further
// away than the bucket's TTL, after which the server could drop the key
// while the session lives.
func (s *Store) Own(ctx context.Context, owner, id string, until time.Time) error {
	const op = "natsstore: own"
	if err := s.check(ctx, op, time.Until(until)); err != nil {
		return err
	}
	ms := until.UnixMilli()
	return s.updateOwner(ctx, op, owner, func(es []ownerEntry) ([]ownerEntry, bool) {
		for i, e := range es {
			if e.id == id {
				if e.until == ms {
					return es, false
				}
				es[i].until = ms
				return es, true
			}
		}
		return append(es, ownerEntry{id, ms}), true
	})
}

// Disown removes ids from owner's entries, dropping those whose time has
// passed too, in a read-modify-write of the owner's key. It writes nothing
// when none of ids has an entry and no entry's time has passed.
func (s *Store) Disown(ctx context.Context, owner string, ids ...string) error {
	return s.updateOwner(ctx, "natsstore: disown", owner, func(es []ownerEntry) ([]ownerEntry, bool) {
		n := len(es)
		es = slices.DeleteFunc(es, func(e ownerEntry) bool { return slices.Contains(ids, e.id) })
		return es, len(es) < n
	})
}

// Owned returns the ids of owner's entries whose time has not passed, read
// with one Get of the owner's key.
func (s *Store) Owned(ctx context.Context, owner string) ([]string, error) {
	const op = "natsstore: owned"
	if err := ctx.Err(); err != nil {
		return nil, ctxerr.Wrap(ctx, op, err)
	}
	live, _, _, err := s.loadOwner(ctx, op, s.ownerKey(owner))
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(live))
	for i, e := range live {
		ids[i] = e.id
	}
	return ids, nil
}
