package session_test

import (
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
		return session.FromStorage(fibersession.New().Storage)
	}, storetest.Options{TTLGranularity: time.Second})
}
