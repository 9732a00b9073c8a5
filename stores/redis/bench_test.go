package redisstore_test

// The benchmarks compare this middleware on the Redis store with Fiber v2's
// middleware/session on the gofiber/storage Redis adapter
// (github.com/gofiber/storage/redis/v3, whose Storage implements fiber v2's
// fiber.Storage), on the same Redis, with a go-redis client each of the same
// options. Scenarios as in the core's bench/: a read-only request on an
// existing session, and a request that changes one key. Every request goes
// through app.Handler() on a reused fasthttp.RequestCtx, and the session
// cookie travels like a browser's.
//
//	GOWORK=off go test -run '^$' -bench . -benchmem -count 3

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/gofiber/fiber/v2"
	fsession "github.com/gofiber/fiber/v2/middleware/session"
	"github.com/gofiber/fiber/v2/utils"
	fredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/fibersession/session"
	redisstore "github.com/fibersession/session/stores/redis"
)

// benchVal is the session value type: a user, or a counter in ID.
type benchVal struct {
	ID   int64
	Name string
}

var benchUser = benchVal{ID: 7, Name: "ada"}

func benchClient(b *testing.B) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = c.Close() })
	ping(b, c)
	return c
}

func sendInt(c *fiber.Ctx, n int64) error {
	var buf [20]byte
	c.Response().SetBody(strconv.AppendInt(buf[:0], n, 10))
	return nil
}

// oursRedis serves POST /login, GET /me and POST /visit with this middleware
// on the Redis store.
func oursRedis(b *testing.B) fasthttp.RequestHandler {
	c := benchClient(b)
	st := redisstore.New(c, redisstore.Config{Prefix: testPrefix(b, c)})
	m, err := session.NewManager(session.Config[benchVal, string]{Store: st, Secrets: [][]byte{testSecret}})
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	app.Post("/login", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Set("user", benchUser)
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
		return sendInt(c, n.ID)
	})
	return app.Handler()
}

// fiberRedis serves the same routes with Fiber's middleware/session on the
// gofiber/storage Redis adapter. Requests that change nothing do not Save,
// the cheapest correct use of its API. Its keys get the same kind of test
// prefix as ours (through KeyGenerator), so that they are cleaned up.
func fiberRedis(b *testing.B) fasthttp.RequestHandler {
	c := benchClient(b)
	prefix := testPrefix(b, c)
	store := fsession.New(fsession.Config{
		Storage:      fredis.NewFromConnection(c),
		KeyGenerator: func() string { return prefix + utils.UUIDv4() },
	})
	store.RegisterType(benchVal{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post("/login", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		sess.Set("user", benchUser)
		if err := sess.Save(); err != nil {
			return err
		}
		return c.SendString("ok")
	})
	app.Get("/me", func(c *fiber.Ctx) error {
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
		return sendInt(c, n.ID)
	})
	return app.Handler()
}

// benchBrowser drives a handler with one reused RequestCtx and a one-cookie
// jar: the Set-Cookie of a response is the Cookie of the next request.
type benchBrowser struct {
	h   fasthttp.RequestHandler
	ctx fasthttp.RequestCtx
	jar []byte // "name=value"
}

func newBenchBrowser(h fasthttp.RequestHandler) *benchBrowser {
	br := &benchBrowser{h: h}
	var req fasthttp.Request
	br.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 54321}, nil)
	return br
}

var hdrCookie = []byte(fasthttp.HeaderCookie)

func (br *benchBrowser) do(method, path string) (int, []byte) {
	ctx := &br.ctx
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost("example.com")
	if len(br.jar) > 0 {
		ctx.Request.Header.SetBytesKV(hdrCookie, br.jar)
	}
	br.h(ctx)
	for _, v := range ctx.Response.Header.Cookies() {
		pair, _, _ := bytes.Cut(v, []byte{';'})
		if _, val, _ := bytes.Cut(pair, []byte{'='}); len(val) == 0 {
			br.jar = br.jar[:0]
		} else {
			br.jar = append(br.jar[:0], pair...)
		}
	}
	return ctx.Response.StatusCode(), ctx.Response.Body()
}

func (br *benchBrowser) expect(method, path, want string) error {
	if st, body := br.do(method, path); st != 200 || string(body) != want {
		return fmt.Errorf("%s %s: got %d %q, want 200 %q", method, path, st, body, want)
	}
	return nil
}

var benchContenders = []struct {
	name string
	new  func(b *testing.B) fasthttp.RequestHandler
}{
	{"ours-redis", oursRedis},
	{"fiber-redis", fiberRedis},
}

// benchScenario logs in, then runs op b.N times; op checks its answer.
func benchScenario(b *testing.B, op func(br *benchBrowser, i int) error) {
	for _, c := range benchContenders {
		b.Run(c.name, func(b *testing.B) {
			br := newBenchBrowser(c.new(b))
			if err := br.expect("POST", "/login", "ok"); err != nil || len(br.jar) == 0 {
				b.Fatalf("login: %v (cookie %q)", err, br.jar)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := op(br, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadOnly(b *testing.B) {
	benchScenario(b, func(br *benchBrowser, _ int) error { return br.expect("GET", "/me", "ada") })
}

func BenchmarkOneKeyChanged(b *testing.B) {
	var want []byte
	benchScenario(b, func(br *benchBrowser, i int) error {
		st, body := br.do("POST", "/visit")
		want = strconv.AppendInt(want[:0], int64(i+1), 10)
		if st != 200 || !bytes.Equal(body, want) {
			return fmt.Errorf("POST /visit: got %d %q, want 200 %q", st, body, want)
		}
		return nil
	})
}
