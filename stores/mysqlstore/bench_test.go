package mysqlstore

// The benchmarks run the core's bench scenarios (github.com/fibersession/session/bench)
// with this middleware on this store ("ours") and Fiber v2's
// middleware/session over a fiber.Storage on MariaDB ("fiber").
//
// The gofiber/storage adapter is github.com/gofiber/storage/mysql/v2, but the
// module proxy this project builds with refuses it, so "fiber" uses
// fiberStorage below instead: a few lines that send the same statements that
// adapter sends (a k/v/e table; SELECT v, e ... WHERE k = ? with the expiry
// checked in Go; INSERT ... ON DUPLICATE KEY UPDATE; DELETE), through the
// same driver. Both contenders make the same number of round trips per
// scenario.
//
//	go test -run '^$' -bench . -benchmem -count 3

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	fsession "github.com/gofiber/fiber/v2/middleware/session"

	"github.com/fibersession/session"
	"github.com/fibersession/session/internal/bench"
)

func contenders(tb testing.TB) []bench.Contender {
	db := connect(tb, dsnConfig(tb))
	st := newStore(tb, db, Config{Table: tableName(tb, db)})
	peer := newFiberStorage(tb, db)
	return []bench.Contender{
		bench.OursWith("ours", func() (session.Store, func()) { return st, nil }),
		bench.FiberWith("fiber", func() (fsession.Config, func()) { return fsession.Config{Storage: peer}, nil }),
	}
}

func BenchmarkScenarios(b *testing.B) { bench.RunAll(b, contenders(b)) }

// TestBenchScenarios checks that every contender does what the benchmarks
// claim.
func TestBenchScenarios(t *testing.T) { bench.CheckAll(t, contenders(t)) }

// fiberStorage is a fiber.Storage that sends the statements of
// gofiber/storage/mysql/v2 (see the comment at the top of the file).
type fiberStorage struct {
	db                   *sql.DB
	sel, ins, del, reset string
}

func newFiberStorage(tb testing.TB, db *sql.DB) *fiberStorage {
	table := "`" + tableName(tb, db) + "`"
	if _, err := db.Exec(`CREATE TABLE ` + table + ` (k VARCHAR(64) NOT NULL DEFAULT '', v BLOB NOT NULL, e BIGINT NOT NULL DEFAULT '0', PRIMARY KEY (k)) ENGINE=InnoDB DEFAULT CHARSET=utf8`); err != nil {
		tb.Fatal(err)
	}
	return &fiberStorage{
		db:    db,
		sel:   `SELECT v, e FROM ` + table + ` WHERE k=?;`,
		ins:   `INSERT INTO ` + table + ` (k, v, e) VALUES (?,?,?) ON DUPLICATE KEY UPDATE v = ?, e = ?`,
		del:   `DELETE FROM ` + table + ` WHERE k=?`,
		reset: `TRUNCATE TABLE ` + table,
	}
}

func (s *fiberStorage) Get(key string) ([]byte, error) {
	var v []byte
	var e int64
	if err := s.db.QueryRow(s.sel, key).Scan(&v, &e); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, err
	}
	if e != 0 && e <= time.Now().Unix() {
		_, _ = s.db.Exec(s.del, key)
		return nil, nil
	}
	return v, nil
}

func (s *fiberStorage) Set(key string, val []byte, exp time.Duration) error {
	var e int64
	if exp != 0 {
		e = time.Now().Add(exp).Unix()
	}
	_, err := s.db.Exec(s.ins, key, val, e, val, e)
	return err
}

func (s *fiberStorage) Delete(key string) error {
	_, err := s.db.Exec(s.del, key)
	return err
}

func (s *fiberStorage) Reset() error {
	_, err := s.db.Exec(s.reset)
	return err
}

func (s *fiberStorage) Close() error { return nil }
