package mysqlstore

// Benchmarks of a whole request through Fiber with sessions in MariaDB: this
// module's middleware with this store ("ours"), next to Fiber v2's
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
//	GOWORK=off go test -run '^$' -bench . -benchmem -count 3

import (
	"bytes"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
)

// benchVal is the session value: a user, or a counter in ID.
type benchVal struct {
	ID   int64
	Name string
}

var (
	ada       = benchVal{ID: 7, Name: "ada"}
	hdrCookie = []byte(fasthttp.HeaderCookie)
)

// The routes every contender serves:
//
//	POST /login  set "user"                          200 "ok"
//	GET  /me     read "user"                         200 its name
//	POST /visit  read "user", increment "visits"     200 the new count
type contender struct {
	name   string
	cookie string // the session cookie's name
	build  func(tb testing.TB, db *sql.DB) fasthttp.RequestHandler
}

var contenders = []contender{
	{"ours", "session", buildOurs},
	{"fiber", "session_id", buildFiber},
}

func buildOurs(tb testing.TB, db *sql.DB) fasthttp.RequestHandler {
	st := newStore(tb, db, Config{Table: tableName(tb, db)})
	m, err := session.NewManager(session.Config[benchVal, string]{
		Store:   st,
		Secrets: [][]byte{secret},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Set("user", ada)
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, ok := s.Get("user")
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		return c.SendString(u.Name)
	})
	app.Post("/visit", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		if _, ok := s.Get("user"); !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		n, _ := s.Get("visits")
		n.ID++
		s.Set("visits", n)
		return c.Send(strconv.AppendInt(nil, n.ID, 10))
	})
	return app.Handler()
}

func buildFiber(tb testing.TB, db *sql.DB) fasthttp.RequestHandler {
	store := fsession.New(fsession.Config{Storage: newFiberStorage(tb, db)})
	store.RegisterType(benchVal{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post("/login", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		sess.Set("user", ada)
		if err := sess.Save(); err != nil {
			return err
		}
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error { // changes nothing, so no Save
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		u, ok := sess.Get("user").(benchVal)
		if !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		return c.SendString(u.Name)
	})
	app.Post("/visit", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		if _, ok := sess.Get("user").(benchVal); !ok {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		n, _ := sess.Get("visits").(benchVal)
		n.ID++
		sess.Set("visits", n)
		if err := sess.Save(); err != nil {
			return err
		}
		return c.Send(strconv.AppendInt(nil, n.ID, 10))
	})
	return app.Handler()
}

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

// benchClient drives a handler like a browser with one cookie, reusing one
// RequestCtx.
type benchClient struct {
	h      fasthttp.RequestHandler
	name   []byte // the session cookie's name
	ctx    fasthttp.RequestCtx
	cookie []byte // "name=value", or empty
	visits int64
	want   []byte
}

func newBenchClient(h fasthttp.RequestHandler, cookieName string) *benchClient {
	cl := &benchClient{h: h, name: []byte(cookieName)}
	cl.ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}, nil)
	return cl
}

func (cl *benchClient) do(method, path string) (int, []byte) {
	ctx := &cl.ctx
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost("example.com")
	if len(cl.cookie) > 0 {
		ctx.Request.Header.SetBytesKV(hdrCookie, cl.cookie)
	}
	cl.h(ctx)
	if v := ctx.Response.Header.PeekCookie(string(cl.name)); len(v) > 0 {
		pair, _, _ := bytes.Cut(v, []byte{';'})
		cl.cookie = append(cl.cookie[:0], pair...)
	}
	return ctx.Response.StatusCode(), ctx.Response.Body()
}

func (cl *benchClient) expect(method, path, want string) error {
	if st, body := cl.do(method, path); st != fiber.StatusOK || string(body) != want {
		return errors.New(method + " " + path + ": got " + strconv.Itoa(st) + " " + strconv.Quote(string(body)) + ", want 200 " + strconv.Quote(want))
	}
	return nil
}

type benchScenario struct {
	name string
	op   func(cl *benchClient) error
}

var benchScenarios = []benchScenario{
	{"ReadOnly", func(cl *benchClient) error { return cl.expect("GET", "/me", ada.Name) }},
	{"OneKeyChanged", func(cl *benchClient) error {
		cl.visits++
		cl.want = strconv.AppendInt(cl.want[:0], cl.visits, 10)
		return cl.expect("POST", "/visit", string(cl.want))
	}},
}

// signedIn returns a client of c's app with a signed-in session.
func signedIn(tb testing.TB, c contender) *benchClient {
	tb.Helper()
	cl := newBenchClient(c.build(tb, connect(tb, dsnConfig(tb))), c.cookie)
	if err := cl.expect("POST", "/login", "ok"); err != nil {
		tb.Fatal(err)
	}
	if len(cl.cookie) == 0 {
		tb.Fatal("login set no cookie")
	}
	return cl
}

func runBench(b *testing.B, name string) {
	for _, s := range benchScenarios {
		if s.name != name {
			continue
		}
		for _, c := range contenders {
			b.Run(c.name, func(b *testing.B) {
				cl := signedIn(b, c)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := s.op(cl); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkReadOnly(b *testing.B)      { runBench(b, "ReadOnly") }
func BenchmarkOneKeyChanged(b *testing.B) { runBench(b, "OneKeyChanged") }

// TestBenchScenarios checks that every contender does what the benchmarks
// claim: the user is found, the count goes up, and without the cookie the
// user is unknown.
func TestBenchScenarios(t *testing.T) {
	for _, c := range contenders {
		for _, s := range benchScenarios {
			t.Run(c.name+"/"+s.name, func(t *testing.T) {
				cl := signedIn(t, c)
				for range 3 {
					if err := s.op(cl); err != nil {
						t.Fatal(err)
					}
				}
				cl.cookie = cl.cookie[:0]
				if st, _ := cl.do("GET", "/me"); st != fiber.StatusUnauthorized {
					t.Errorf("GET /me without a cookie: %d, want 401", st)
				}
			})
		}
	}
}
