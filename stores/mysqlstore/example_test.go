package mysqlstore_test

import (
	"context"
	"database/sql"
	"log"
	"os"

	_ "github.com/go-sql-driver/mysql"
	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
	"github.com/fibersession/session/stores/mysqlstore"
)

// Sessions in a MySQL or MariaDB table, for a plain fasthttp server. The
// *sql.DB stays yours; Close stops the background cleanup.
func ExampleNew() {
	db, err := sql.Open("mysql", "app@tcp(db.internal:3306)/app?timeout=5s")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := mysqlstore.New(context.Background(), db, mysqlstore.Config{SkipCreate: true})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	m, err := session.NewManager(session.Config[string, string]{
		Store:   store,
		Secrets: [][]byte{[]byte(os.Getenv("SESSION_SECRET"))},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(fasthttp.ListenAndServe(":8080", m.FastHTTP(func(ctx *fasthttp.RequestCtx) {
		if s, err := m.FromRequestCtx(ctx); err == nil && s.Has("user") {
			ctx.SetBodyString("welcome back")
		}
	}, nil)))
}
