package rueidisstore_test

import (
	"context"
	"log"
	"net"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/rueidis"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/rueidisstore"
)

// Sessions in Redis, shared by every instance of the app, with the records
// a request reads served from the client's memory. The store PINGs Redis
// once, so a wrong address fails at start; the client stays yours.
func ExampleNew() {
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{"127.0.0.1:6379"}, // or a Cluster's nodes
		CacheSizeEachConn: 64 << 20,                   // the cache's bound: 64 MiB a connection, LRU
		// A frozen connection is dropped, with its cache, within 1.5s: a PING
		// after 500ms without a byte received, answered within 500ms.
		Dialer:           net.Dialer{Timeout: time.Second, KeepAlive: 500 * time.Millisecond},
		ConnWriteTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	store, err := rueidisstore.New(context.Background(), client, rueidisstore.Config{
		Prefix:   "shop:session:",
		CacheTTL: time.Minute, // the default: the longest a record is served without the server
	})
	if err != nil {
		log.Fatal(err)
	}

	app := fiber.New()
	app.Use(session.New(session.Config[string, string]{
		Secrets:      [][]byte{[]byte(os.Getenv("SESSION_SECRET"))},
		Store:        store,
		StoreTimeout: time.Second, // Redis down: 500 within a second
	}))
	log.Fatal(app.Listen(":3000"))
}
