package natsstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/natsstore"
)

// Sessions in a JetStream key-value bucket whose TTL is the sessions'
// absolute lifetime. The connection stays yours.
func ExampleNew() {
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	const lifetime = 7 * 24 * time.Hour
	ctx := context.Background()
	kv, err := natsstore.CreateBucket(ctx, js, "sessions", lifetime)
	if err != nil {
		log.Fatal(err)
	}
	store, err := natsstore.New(ctx, kv, natsstore.Config{})
	if err != nil {
		log.Fatal(err)
	}

	app := fiber.New()
	app.Use(session.New(session.Config[string, string]{
		AbsoluteTimeout: lifetime, // no longer than the bucket keeps a record
		Store:           store,
		Secrets:         [][]byte{[]byte(os.Getenv("SESSION_SECRET"))},
	}))
	log.Fatal(app.Listen(":3000"))
}
