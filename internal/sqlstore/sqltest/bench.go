package sqltest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fsession "github.com/gofiber/fiber/v2/middleware/session"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
	"github.com/fibersession/session/internal/sqlstore"
)

// Contenders returns the benchmark contenders of a SQL store: this
// middleware on st ("ours") and, unless kv is nil, Fiber v2's
// middleware/session on kv ("fiber").
func Contenders(st session.Store, kv fiber.Storage) []bench.Contender {
	c := []bench.Contender{bench.OursWith("ours", func() (session.Store, func()) { return st, nil })}
	if kv != nil {
		c = append(c, bench.FiberWith("fiber", func() (fsession.Config, func()) { return fsession.Config{Storage: kv}, nil }))
	}
	return c
}

// KVStatements are the statements of a gofiber/storage SQL adapter, with
// {table} for the name of its k/v/e table.
type KVStatements struct {
	Create []string // creates the table
	Get    string   // selects v and e of the key k
	Set    string   // upserts a key, with the arguments k, v, e, v, e
	Delete string   // deletes the key k
}

// KV is a fiber.Storage on a k/v/e table that sends the statements of a
// gofiber/storage SQL adapter: the "fiber" contender of the SQL stores'
// benchmarks, for adapters the module proxy of this project refuses. Like
// the adapters, it keeps e in Unix seconds (0 for no expiry), checks it in
// Go after the SELECT and reads an expired key as absent (the benchmarks
// never read one).
type KV struct {
	db     sqlstore.Client
	noRows error
	q      KVStatements
	reset  string
}

// NewKV creates a k/v/e table of its own with q.Create, dropped when tb
// ends, and returns a KV on it; noRows is db's error for a query without a
// row.
func NewKV(tb testing.TB, db sqlstore.Client, noRows error, q KVStatements) *KV {
	table := Table(tb, db)
	r := strings.NewReplacer("{table}", table)
	for _, c := range q.Create {
		if _, err := db.Exec(context.Background(), r.Replace(c)); err != nil {
			tb.Fatal(err)
		}
	}
	q.Get, q.Set, q.Delete = r.Replace(q.Get), r.Replace(q.Set), r.Replace(q.Delete)
	return &KV{db: db, noRows: noRows, q: q, reset: "TRUNCATE TABLE " + table}
}

// Get returns the value of key, or nil when it is absent or expired.
func (s *KV) Get(key string) ([]byte, error) {
	var v []byte
	var e int64
	if err := s.db.QueryRow(context.Background(), s.q.Get, key).Scan(&v, &e); err != nil {
		if errors.Is(err, s.noRows) {
			return nil, nil
		}
		return nil, err
	}
	if e != 0 && e <= time.Now().Unix() {
		return nil, nil
	}
	return v, nil
}

// Set stores val under key for exp (0 for no expiry).
func (s *KV) Set(key string, val []byte, exp time.Duration) error {
	var e int64
	if exp > 0 {
		e = time.Now().Add(exp).Unix()
	}
	_, err := s.db.Exec(context.Background(), s.q.Set, key, val, e, val, e)
	return err
}

// Delete deletes key.
func (s *KV) Delete(key string) error {
	_, err := s.db.Exec(context.Background(), s.q.Delete, key)
	return err
}

// Reset deletes every key.
func (s *KV) Reset() error {
	_, err := s.db.Exec(context.Background(), s.reset)
	return err
}

// Close does nothing: the client is the test's.
func (s *KV) Close() error { return nil }
