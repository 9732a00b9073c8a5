package natsstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/ctxerr"
)

// errChunksGone: a chunk is missing or the chunks do not match their hash.
var errChunksGone = errors.New("natsstore: record chunks missing")

// load returns the entry under key; a missing key gives an entry with rev 0.
func (s *Store) load(ctx context.Context, key string) (entry, error) {
	kve, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted), errors.Is(err, jetstream.ErrInvalidKey):
		return entry{}, nil
	case err != nil:
		return entry{}, ctxerr.Wrap(ctx, "natsstore: get", err)
	}
	return parse(kve.Revision(), kve.Value()), nil
}

// read returns the live entry under key with its whole record in e.data,
// or session.ErrNotFound.
func (s *Store) read(ctx context.Context, key string) (entry, error) {
	for try := 0; ; try++ {
		e, err := s.load(ctx, key)
		if err != nil {
			return entry{}, err
		}
		if !e.live(time.Now()) {
			return entry{}, session.ErrNotFound
		}
		if e.chunks.n == 0 {
			return e, nil
		}
		e.data, err = s.readChunks(ctx, key, &e)
		switch {
		case err == nil:
			return e, nil
		case !errors.Is(err, errChunksGone):
			return entry{}, err
		case try == 2: // not a concurrent rewrite: the chunks are lost
			return entry{}, session.ErrNotFound
		}
	}
}

// readChunks returns the record e points to, read from its chunks under
// key, or errChunksGone.
func (s *Store) readChunks(ctx context.Context, key string, e *entry) ([]byte, error) {
	var data []byte
	for i := range e.chunks.n {
		kve, err := s.kv.Get(ctx, e.chunks.key(key, i))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, errChunksGone
		case err != nil:
			return nil, ctxerr.Wrap(ctx, "natsstore: get chunk", err)
		}
		data = append(data, kve.Value()...)
	}
	if sha256.Sum256(data) != e.sum {
		return nil, errChunksGone
	}
	return data, nil
}

// Get returns the record under id, or session.ErrNotFound when there is none
// or it has expired (even if the bucket still holds it).
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.GetTTL(ctx, id)
	return data, err
}

// GetTTL is Get that also returns the record's remaining time to live, from
// the expiry stored in the value: one round trip for records not chunked.
func (s *Store) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, ctxerr.Wrap(ctx, "natsstore: get", err)
	}
	e, err := s.read(ctx, s.prefix+id)
	if err != nil {
		return nil, 0, err
	}
	left := time.Until(time.UnixMilli(e.expires))
	if left <= 0 {
		return nil, 0, session.ErrNotFound
	}
	return e.data, left, nil
}
