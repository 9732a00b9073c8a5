package session

import (
	"context"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session/internal/ttl"
)

// FromStorage adapts a fiber.Storage (Fiber's own in-memory storage or any
// gofiber/storage backend) to a Store. fiber.Storage has no contexts, so a
// call is refused when ctx is already done but not interrupted once begun;
// it has no compare-and-set, so concurrent requests on one session follow
// "the last save wins". TTLs are rounded up to whole seconds, the granularity
// of most fiber.Storage backends. Close closes the storage once, however often
// it is called.
//
// Every key is prefix followed by the session id, so several apps or managers
// can share one storage (one Redis, say) without colliding: give each its own
// prefix, such as "shop:sess:" and "admin:sess:". "" uses the bare id.
func FromStorage(s fiber.Storage, prefix string) Store { return &storage{s: s, prefix: prefix} }

type storage struct {
	s      fiber.Storage
	prefix string
	once   sync.Once
	close  error
}

func (a *storage) Get(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := a.s.Get(a.prefix + id)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, ErrNotFound
	}
	return b, nil
}

func (a *storage) Set(ctx context.Context, id string, data []byte, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.s.Set(a.prefix+id, data, ttl.Round(d, time.Second))
}

func (a *storage) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.s.Delete(a.prefix + id)
}

func (a *storage) Close() error {
	a.once.Do(func() { a.close = a.s.Close() })
	return a.close
}
