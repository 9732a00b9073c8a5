package sessionws_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	fastws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
	"github.com/fibersession/session/sessionws"
	"github.com/fibersession/session/stores/memory"
)

var testKey = []byte("a test key of at least thirty-two bytes")

// server is a Fiber v2 app on a loopback listener with the session
// middleware, HTTP routes that read and change the session, and the
// WebSocket route /ws of sessionws, whose handler runs the commands a test
// sends over the socket (see command).
type server struct {
	t     *testing.T
	addr  string
	store *memory.Store
	saved chan error // Config.OnSave's argument, once per connection
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T) *server {
	t.Helper()
	srv := &server{t: t, store: memory.New(memory.Config{}), saved: make(chan error, 16)}
	m, err := session.NewManager(session.Config[int, string]{
		Secrets:        [][]byte{testKey},
		Store:          srv.store,
		Logger:         quiet(),
		CookieInsecure: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	withSession := func(fn func(c *fiber.Ctx, s *session.Session[int, string]) error) fiber.Handler {
		return func(c *fiber.Ctx) error {
			s, err := m.Get(c)
			if err != nil {
				return err
			}
			return fn(c, s)
		}
	}
	app.Post("/login", withSession(func(c *fiber.Ctx, s *session.Session[int, string]) error {
		s.RegenerateID(true)
		s.Set("user", 7)
		return c.SendString("ok")
	}))
	app.Get("/get/:key", withSession(func(c *fiber.Ctx, s *session.Session[int, string]) error {
		v, ok := s.Get(c.Params("key"))
		if !ok {
			return c.SendString("none")
		}
		return c.SendString(strconv.Itoa(v))
	}))
	app.Post("/set/:key/:v", withSession(func(c *fiber.Ctx, s *session.Session[int, string]) error {
		v, _ := strconv.Atoi(c.Params("v"))
		s.Set(c.Params("key"), v)
		return c.SendString("ok")
	}))
	app.Post("/inc/:key", withSession(func(c *fiber.Ctx, s *session.Session[int, string]) error {
		s.Update(c.Params("key"), func(old int) int { return old + 1 })
		return c.SendString("ok")
	}))
	app.Post("/logout", withSession(func(c *fiber.Ctx, s *session.Session[int, string]) error {
		s.Destroy()
		return c.SendString("ok")
	}))
	app.Get("/ws", sessionws.New(m, command, sessionws.Config{
		OnSave: func(err error) { srv.saved <- err },
	}))

	failing, err := session.NewManager(session.Config[int, string]{
		Secrets: [][]byte{testKey}, Store: failStore{}, Logger: quiet(), CookieInsecure: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Get("/ws-failing", sessionws.New(failing, command))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	srv.addr = ln.Addr().String()
	return srv
}

// command is the handler of /ws: it runs each text message as a command on
// the session and answers with the result, until "close" or a read error.
func command(c *websocket.Conn, s *session.Session[int, string]) {
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		f := strings.Fields(string(msg))
		reply := "ok"
		switch f[0] {
		case "close":
			return
		case "get":
			reply = "none"
			if v, ok := s.Get(f[1]); ok {
				reply = strconv.Itoa(v)
			}
		case "set":
			v, _ := strconv.Atoi(f[2])
			s.Set(f[1], v)
		case "inc":
			s.Update(f[1], func(old int) int { return old + 1 })
		case "save":
			reply = result(s.Save())
		case "reload":
			reply = result(s.Reload())
		case "stored":
			reply = strconv.FormatBool(s.Stored())
		case "destroy":
			s.Destroy()
		case "regenerate":
			s.RegenerateID(true)
		case "id":
			reply = s.ID()
		default:
			reply = "unknown command " + f[0]
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte(reply)); err != nil {
			return
		}
	}
}

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, session.ErrDetached):
		return "detached"
	default:
		return "error: " + err.Error()
	}
}

// failStore is a store whose every call fails.
type failStore struct{}

var errDown = errors.New("store down")

func (failStore) Get(context.Context, string) ([]byte, error)              { return nil, errDown }
func (failStore) Set(context.Context, string, []byte, time.Duration) error { return errDown }
func (failStore) Delete(context.Context, string) error                     { return errDown }

// client is a browser of the app: it keeps the session cookie of the last
// response that set one.
type client struct {
	srv    *server
	cookie string
}

func (srv *server) login() *client {
	c := &client{srv: srv}
	c.http("POST", "/login", "ok")
	if c.cookie == "" {
		srv.t.Fatal("login set no cookie")
	}
	return c
}

// http sends a request with the client's cookie and checks the body.
func (c *client) http(method, path, want string) {
	c.srv.t.Helper()
	req, err := http.NewRequest(method, "http://"+c.srv.addr+path, nil)
	if err != nil {
		c.srv.t.Fatal(err)
	}
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.srv.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.srv.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != want {
		c.srv.t.Fatalf("%s %s: %d %q, want 200 %q", method, path, resp.StatusCode, body, want)
	}
	for _, k := range resp.Cookies() {
		c.cookie = k.Name + "=" + k.Value
		if k.MaxAge < 0 {
			c.cookie = ""
		}
	}
}

// dial opens the socket of path with the client's cookie and the extra
// header, returning the handshake's status.
func (c *client) dial(path string, header http.Header) (*socket, int, error) {
	if header == nil {
		header = http.Header{}
	}
	if c.cookie != "" {
		header.Set("Cookie", c.cookie)
	}
	conn, resp, err := fastws.DefaultDialer.Dial("ws://"+c.srv.addr+path, header)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil {
		return nil, status, err
	}
	ws := &socket{t: c.srv.t, conn: conn}
	c.srv.t.Cleanup(func() { conn.Close() })
	return ws, status, nil
}

func (c *client) open() *socket {
	c.srv.t.Helper()
	ws, _, err := c.dial("/ws", nil)
	if err != nil {
		c.srv.t.Fatal(err)
	}
	return ws
}

type socket struct {
	t    *testing.T
	conn *fastws.Conn
}

// do sends a command and checks its reply.
func (ws *socket) do(cmd, want string) {
	ws.t.Helper()
	if got := ws.ask(cmd); got != want {
		ws.t.Fatalf("socket %q: %q, want %q", cmd, got, want)
	}
}

func (ws *socket) ask(cmd string) string {
	ws.t.Helper()
	if err := ws.conn.WriteMessage(fastws.TextMessage, []byte(cmd)); err != nil {
		ws.t.Fatal(err)
	}
	_, reply, err := ws.conn.ReadMessage()
	if err != nil {
		ws.t.Fatal(err)
	}
	return string(reply)
}

// close asks the handler to return and waits for New's save after it.
func (ws *socket) close(srv *server) error {
	ws.t.Helper()
	if err := ws.conn.WriteMessage(fastws.TextMessage, []byte("close")); err != nil {
		ws.t.Fatal(err)
	}
	return srv.waitSaved()
}

// waitSaved returns the result of the next save after a handler returned.
func (srv *server) waitSaved() error {
	srv.t.Helper()
	select {
	case err := <-srv.saved:
		return err
	case <-time.After(10 * time.Second): // a failure, not a wait for a race
		srv.t.Fatal("no save after the handler returned")
		return nil
	}
}

func TestSocketChangesReachHTTP(t *testing.T) {
	srv := start(t)
	c := srv.login()
	ws := c.open()
	ws.do("get user", "7")
	for range 3 {
		ws.do("inc n", "ok")
		ws.do("save", "ok")
	}
	c.http("GET", "/get/n", "3")
	if err := ws.close(srv); err != nil {
		t.Fatalf("the save after the handler: %v", err)
	}
	c.http("GET", "/get/n", "3")
	c.http("GET", "/get/user", "7")
}

func TestSavedWhenHandlerReturns(t *testing.T) {
	srv := start(t)
	c := srv.login()

	ws := c.open()
	ws.do("set n 5", "ok") // never saved by the handler
	if err := ws.close(srv); err != nil {
		t.Fatalf("the save after the handler: %v", err)
	}
	c.http("GET", "/get/n", "5")

	// The client closes the connection: the handler's read fails, it
	// returns, and its session is saved all the same.
	ws = c.open()
	ws.do("set n 6", "ok")
	if err := ws.conn.WriteMessage(fastws.CloseMessage, fastws.FormatCloseMessage(fastws.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitSaved(); err != nil {
		t.Fatalf("the save after the handler: %v", err)
	}
	c.http("GET", "/get/n", "6")
}

func TestReloadAndMergeWithHTTP(t *testing.T) {
	srv := start(t)
	c := srv.login()
	ws := c.open()

	ws.do("set a 1", "ok")
	ws.do("inc n", "ok")
	c.http("POST", "/set/b/2", "ok") // while the socket holds unsaved changes
	c.http("POST", "/inc/n", "ok")
	ws.do("get b", "none") // read at the handshake
	ws.do("save", "ok")    // merges with the HTTP save
	c.http("GET", "/get/a", "1")
	c.http("GET", "/get/b", "2")
	c.http("GET", "/get/n", "2") // both increments count

	c.http("POST", "/set/c/3", "ok")
	ws.do("get c", "none")
	ws.do("reload", "ok")
	ws.do("get c", "3")
	ws.do("get n", "2")
	if err := ws.close(srv); err != nil {
		t.Fatal(err)
	}
	c.http("GET", "/get/c", "3")
}

func TestDestroyedOverHTTP(t *testing.T) {
	srv := start(t)
	c := srv.login()
	ws := c.open()
	stale := *c

	c.http("POST", "/logout", "ok")
	ws.do("stored", "true")
	ws.do("get user", "7") // read at the handshake
	ws.do("reload", "ok")
	ws.do("stored", "false")
	ws.do("get user", "none")

	// Values set now would start a new session, which needs a cookie.
	ws.do("set user 8", "ok")
	id := ws.ask("id")
	ws.do("save", "detached")
	if _, err := srv.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("the new session was stored: %v", err)
	}
	stale.http("GET", "/get/user", "none")
	if err := ws.close(srv); !errors.Is(err, session.ErrDetached) {
		t.Fatalf("the save after the handler: %v, want ErrDetached", err)
	}
}

func TestDestroyOverSocket(t *testing.T) {
	srv := start(t)
	c := srv.login()
	ws := c.open()
	ws.do("destroy", "ok")
	ws.do("save", "ok")
	c.http("GET", "/get/user", "none")
	if _, _, err := c.dial("/ws", nil); err == nil {
		t.Fatal("a new socket opened with the destroyed session")
	}
	if err := ws.close(srv); err != nil {
		t.Fatal(err)
	}

	// Destroy is saved when the handler returns, too.
	c = srv.login()
	ws = c.open()
	ws.do("destroy", "ok")
	if err := ws.close(srv); err != nil {
		t.Fatal(err)
	}
	c.http("GET", "/get/user", "none")
}

func TestNothingWrittenThatNeedsACookie(t *testing.T) {
	srv := start(t)
	c := srv.login()
	c.http("POST", "/set/n/1", "ok")

	ws := c.open()
	ws.do("set n 2", "ok")
	ws.do("regenerate", "ok")
	id := ws.ask("id")
	ws.do("save", "detached")
	if _, err := srv.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("the new id was stored: %v", err)
	}
	c.http("GET", "/get/n", "1") // the old id is neither deleted nor changed
	if err := ws.close(srv); !errors.Is(err, session.ErrDetached) {
		t.Fatalf("the save after the handler: %v, want ErrDetached", err)
	}
	c.http("GET", "/get/n", "1")

	// Destroy, then values: a new session, which needs a cookie too; the
	// record is not deleted either.
	ws = c.open()
	ws.do("destroy", "ok")
	ws.do("set n 3", "ok")
	ws.do("save", "detached")
	if err := ws.close(srv); !errors.Is(err, session.ErrDetached) {
		t.Fatalf("the save after the handler: %v, want ErrDetached", err)
	}
	c.http("GET", "/get/n", "1")

	// Reload drops what the failed Save could not write: the save after
	// the handler then has nothing to do.
	ws = c.open()
	ws.do("regenerate", "ok")
	ws.do("save", "detached")
	ws.do("reload", "ok")
	ws.do("get n", "1")
	if err := ws.close(srv); err != nil {
		t.Fatalf("the save after the handler: %v", err)
	}
	c.http("GET", "/get/n", "1")
}

func TestRefusedBeforeUpgrade(t *testing.T) {
	srv := start(t)
	signedIn := srv.login()
	destroyed := srv.login()
	destroyedCookie := destroyed.cookie
	destroyed.http("POST", "/logout", "ok")

	name, value, _ := strings.Cut(signedIn.cookie, "=")
	forged := []byte(value)
	forged[len(forged)-2] ^= 1 // in the signature

	for _, tc := range []struct {
		name, cookie, path string
		header             http.Header
		want               int
	}{
		{name: "no cookie", path: "/ws", want: http.StatusUnauthorized},
		{name: "forged cookie", cookie: name + "=" + string(forged), path: "/ws", want: http.StatusUnauthorized},
		{name: "garbage cookie", cookie: name + "=garbage", path: "/ws", want: http.StatusUnauthorized},
		{name: "unknown session", cookie: destroyedCookie, path: "/ws", want: http.StatusUnauthorized},
		{name: "cross-origin", cookie: signedIn.cookie, path: "/ws", header: http.Header{"Origin": {"http://evil.example"}}, want: http.StatusForbidden},
		{name: "store down", cookie: signedIn.cookie, path: "/ws-failing", want: http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &client{srv: srv, cookie: tc.cookie}
			_, status, err := c.dial(tc.path, tc.header)
			if !errors.Is(err, fastws.ErrBadHandshake) || status != tc.want {
				t.Fatalf("dial: %d %v, want %d and a bad handshake", status, err, tc.want)
			}
		})
	}

	t.Run("same origin", func(t *testing.T) {
		ws, _, err := signedIn.dial("/ws", http.Header{"Origin": {"http://" + srv.addr}})
		if err != nil {
			t.Fatal(err)
		}
		ws.do("get user", "7")
		if err := ws.close(srv); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("not a handshake", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+srv.addr+"/ws", nil)
		req.Header.Set("Cookie", signedIn.cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("plain GET: %d, want 426", resp.StatusCode)
		}
	})

	select {
	case err := <-srv.saved:
		t.Fatalf("a refused request ran the handler (saved: %v)", err)
	default:
	}
}
