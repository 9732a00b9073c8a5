package natsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ctxerr"
)

// check refuses a done ctx (naming op) and a ttl the bucket would cut
// short.
func (s *Store) check(ctx context.Context, op string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, op, err)
	}
	if s.maxTTL > 0 && ttl > s.maxTTL {
		return fmt.Errorf("%w: ttl %v, bucket TTL %v; raise the bucket TTL to the session AbsoluteTimeout", ErrTTLTooLong, ttl, s.maxTTL)
	}
	return nil
}

// encode returns the value that stores data under key until ttl from now,
// first writing data's chunks if it is longer than the chunk size.
func (s *Store) encode(ctx context.Context, key string, data []byte, ttl time.Duration) ([]byte, chunks, error) {
	expires := uint64(time.Now().Add(ttl).UnixMilli())
	if len(data) <= s.chunk {
		return inlineValue(expires, data), chunks{}, nil
	}
	c := chunks{id: rand.Uint64(), n: uint32((len(data) + s.chunk - 1) / s.chunk)}
	for i := range c.n {
		piece := data[int(i)*s.chunk : min(int(i+1)*s.chunk, len(data))]
		if _, err := s.kv.Put(ctx, c.key(key, i), piece); err != nil {
			s.purge(ctx, key, chunks{id: c.id, n: i})
			return nil, chunks{}, ctxerr.Wrap(ctx, "natsstore: put chunk", err)
		}
	}
	return manifestValue(expires, c, data), c, nil
}

// purge removes a chunk set, as far as it can: what it misses, the bucket
// TTL removes.
func (s *Store) purge(ctx context.Context, key string, c chunks) {
	for i := range c.n {
		_ = s.kv.Purge(ctx, c.key(key, i))
	}
}

// Set stores data under id for ttl with an unconditional Put. When it
// replaces a chunked record, the old chunks are left to the bucket TTL.
func (s *Store) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := s.check(ctx, "natsstore: set", ttl); err != nil {
		return err
	}
	key := s.prefix + id
	v, c, err := s.encode(ctx, key, data, ttl)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, v); err != nil {
		s.purge(ctx, key, c)
		return ctxerr.Wrap(ctx, "natsstore: put", err)
	}
	return nil
}

// replace writes data over cur with Update against cur's revision, and
// reports false if the key was written in between.
func (s *Store) replace(ctx context.Context, key string, cur entry, data []byte, ttl time.Duration) (bool, error) {
	v, c, err := s.encode(ctx, key, data, ttl)
	if err != nil {
		return false, err
	}
	if _, err := s.kv.Update(ctx, key, v, cur.rev); err != nil {
		s.purge(ctx, key, c)
		if conflict(err) {
			return false, nil
		}
		return false, ctxerr.Wrap(ctx, "natsstore: update", err)
	}
	s.purge(ctx, key, cur.chunks)
	return true, nil
}

// CompareAndSet stores data under id for ttl only if the live record under
// id is old, or, with a nil old, only if there is no live record. It is
// atomic through the key's revision (see the package documentation).
func (s *Store) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	if err := s.check(ctx, "natsstore: compare-and-set", ttl); err != nil {
		return false, err
	}
	key := s.prefix + id
	if old != nil {
		cur, err := s.load(ctx, key)
		if err != nil || !cur.live(time.Now()) || !cur.equal(old) {
			return false, err
		}
		return s.replace(ctx, key, cur, data, ttl)
	}
	v, c, err := s.encode(ctx, key, data, ttl)
	if err != nil {
		return false, err
	}
	_, err = s.kv.Create(ctx, key, v)
	if err == nil {
		return true, nil
	}
	s.purge(ctx, key, c)
	if !conflict(err) {
		return false, ctxerr.Wrap(ctx, "natsstore: create", err)
	}
	// The key holds a value: still absent for us if it has expired.
	cur, err := s.load(ctx, key)
	if err != nil || cur.rev == 0 || cur.live(time.Now()) {
		return false, err
	}
	return s.replace(ctx, key, cur, data, ttl)
}

// Touch sets the remaining time to live of the live record under id to ttl
// by rewriting it unchanged against its revision. A missing record, and a
// record written by someone else meanwhile, are left alone (nil error).
func (s *Store) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := s.check(ctx, "natsstore: touch", ttl); err != nil {
		return err
	}
	key := s.prefix + id
	cur, err := s.read(ctx, key)
	if errors.Is(err, session.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.replace(ctx, key, cur, cur.data, ttl)
	return err
}

// Delete removes the record under id with Purge, which also drops any older
// revisions a bucket with History > 1 keeps, and then its chunks. Deleting a
// missing id writes nothing and is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return ctxerr.Wrap(ctx, "natsstore: delete", err)
	}
	key := s.prefix + id
	cur, err := s.load(ctx, key)
	if err != nil || cur.rev == 0 {
		return err
	}
	if err := s.kv.Purge(ctx, key); err != nil {
		return ctxerr.Wrap(ctx, "natsstore: purge", err)
	}
	s.purge(ctx, key, cur.chunks)
	return nil
}

// wrongLastSequenceConstant is the error code a replicated (R>1) stream
// answers a revision conflict with, where a single replica answers
// jetstream.JSErrCodeStreamWrongLastSequence (10071). nats.go v1.53 and later
// name it jetstream.JSErrCodeStreamWrongLastSequenceConstant; the module
// requires an older nats.go.
const wrongLastSequenceConstant jetstream.ErrorCode = 10164

// conflict reports whether err says the key's revision was not the expected
// one (Create of an existing key, Update after another write). Every
// nats.go version keeps the server's *jetstream.APIError in the error chain
// (v1.53 and later also wrap it with jetstream.ErrKeyRevisionMismatch).
func conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == wrongLastSequenceConstant)
}
