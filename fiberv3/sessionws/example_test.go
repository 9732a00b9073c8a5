package sessionws_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	fastws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/v3/websocket"
	"github.com/gofiber/fiber/v3"

	"github.com/fibersession/session"
	"github.com/fibersession/session/fiberv3"
	"github.com/fibersession/session/fiberv3/sessionws"
)

type Account struct {
	Name     string
	Messages int
}

type Msg struct{ Level, Text string }

// A chat socket for signed-in users: the handshake is refused with 401
// without a live session, each message is counted in the session, and a
// logout over HTTP closes the socket at its next message.
func Example() {
	m, err := fiberv3.NewManager(fiberv3.Config[Account, Msg]{Config: session.Config[Account, Msg]{
		Secrets: [][]byte{[]byte("an example key of at least 32 bytes!")},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}})
	if err != nil {
		panic(err)
	}
	app := fiber.New()
	app.Use(m.Handler()) // the HTTP routes' sessions
	app.Post("/login", func(c fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.Set("account", Account{Name: "ada"})
		return c.SendStatus(fiber.StatusNoContent)
	})

	app.Get("/ws", sessionws.New(m.Manager, func(c *websocket.Conn, s *session.Session[Account, Msg]) {
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return // s is saved after the handler returns
			}
			// What HTTP requests changed since the handshake: a logout
			// there destroyed the session.
			if err := s.Reload(); err != nil || !s.Stored() {
				return
			}
			a := s.Update("account", func(a Account) Account { a.Messages++; return a })
			if err := s.Save(); err != nil { // before the next Reload, which drops unsaved changes
				return
			}
			reply := fmt.Sprintf("%s #%d: %s", a.Name, a.Messages, msg)
			if err := c.WriteMessage(websocket.TextMessage, []byte(reply)); err != nil {
				return
			}
		}
	}))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	defer func() { _ = app.Shutdown() }()
	base := ln.Addr().String()

	// Without a session, the handshake is refused.
	_, resp, err := fastws.DefaultDialer.Dial("ws://"+base+"/ws", nil)
	fmt.Println(resp.StatusCode, err)

	// Signed in, the socket opens with the session cookie.
	login, err := http.Post("http://"+base+"/login", "", nil)
	if err != nil {
		panic(err)
	}
	login.Body.Close()
	cookie := http.Header{"Cookie": {login.Cookies()[0].Name + "=" + login.Cookies()[0].Value}}
	conn, _, err := fastws.DefaultDialer.Dial("ws://"+base+"/ws", cookie)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	for _, text := range []string{"hello", "again"} {
		_ = conn.WriteMessage(websocket.TextMessage, []byte(text))
		_, reply, _ := conn.ReadMessage()
		fmt.Println(string(reply))
	}
	// Output:
	// 401 websocket: bad handshake
	// ada #1: hello
	// ada #2: again
}
