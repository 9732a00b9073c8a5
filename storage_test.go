package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	fibersession "github.com/gofiber/fiber/v2/middleware/session"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/storetest"
)

// TestFromStorageConformance runs the store conformance suite on
// session.FromStorage over Fiber's own in-memory storage (the default Storage
// of Fiber's session middleware). That storage keeps expiry in whole seconds
// against a clock that ticks once a second, hence the TTL granularity.
func TestFromStorageConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store {
		return session.FromStorage(fibersession.New().Storage, "app:")
	}, storetest.Options{TTLGranularity: time.Second})
}

// Two stores over one storage with different prefixes keep apart: the same
// id names two records, and deleting one leaves the other.
func TestFromStoragePrefix(t *testing.T) {
	ctx := context.Background()
	shared := fibersession.New().Storage
	shop, admin := session.FromStorage(shared, "shop:"), session.FromStorage(shared, "admin:")
	const id = "0123456789abcdef0123456789abcdef0123456789a"
	if err := shop.Set(ctx, id, []byte("cart"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := admin.Set(ctx, id, []byte("root"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, err := shared.Get("shop:" + id); err != nil || string(b) != "cart" {
		t.Errorf("storage key shop:<id> = %q, %v", b, err)
	}
	if b, _ := shared.Get(id); b != nil {
		t.Errorf("the bare id was written: %q", b)
	}
	if err := admin.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if b, err := shop.Get(ctx, id); err != nil || string(b) != "cart" {
		t.Errorf("after the other prefix's delete: %q, %v", b, err)
	}
	if _, err := admin.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("deleted record: %v", err)
	}
}
