package session

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// FromStorage adapts a fiber.Storage (Fiber's own in-memory storage or any
// gofiber/storage backend) to a Store. fiber.Storage has no contexts, so a
// call is refused when ctx is already done but not interrupted once begun;
// it has no compare-and-set, so concurrent requests on one session follow
// "the last save wins". Close closes the storage.
func FromStorage(s fiber.Storage) Store { return storage{s} }

type storage struct{ s fiber.Storage }

func (a storage) Get(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := a.s.Get(id)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, ErrNotFound
	}
	return b, nil
}

func (a storage) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.s.Set(id, data, ttl)
}

func (a storage) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.s.Delete(id)
}

func (a storage) Close() error { return a.s.Close() }
