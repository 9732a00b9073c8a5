package redisstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/redisstore"
)

// Sessions in Redis, shared by every instance of the app. The store PINGs
// Redis once, so a wrong address fails at start; the client stays yours.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // honour StoreTimeout during I/O
	})
	defer rdb.Close()
	store, err := redisstore.New(context.Background(), rdb, redisstore.Config{Prefix: "shop:session:"})
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
