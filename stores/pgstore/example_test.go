package pgstore_test

import (
	"context"
	"log"
	"os"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/pgstore"
)

// Sessions in a PostgreSQL table that New creates unless it exists. Close
// (here through the Manager) stops the background cleanup; the pool stays
// yours.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db.internal/app?connect_timeout=5")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.Config{Table: "auth.sessions"})
	if err != nil {
		log.Fatal(err) // unreachable database, or no right to create the table
	}

	m, err := session.NewManager(session.Config[int64, string]{
		Secrets: [][]byte{[]byte(os.Getenv("SESSION_SECRET"))},
		Store:   store,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	app := fiber.New()
	app.Use(m.Handler())
	log.Fatal(app.Listen(":3000"))
}
