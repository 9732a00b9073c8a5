package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Client drives a handler like a browser with a cookie jar for one site. It
// reuses one RequestCtx, so it allocates nothing itself.
type Client struct {
	Stateful bool // keeps the session cookie between requests
	h        fasthttp.RequestHandler
	ctx      fasthttp.RequestCtx
	jar      []byte // "name=value" of the cookie the site set; empty when none
	prev     []byte // scratch: the jar before a request
	num      []byte // scratch: a formatted number
	visits   int64  // the count /visit should answer next, minus one
}

var (
	hdrCookie  = []byte(fasthttp.HeaderCookie)
	remoteAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 54321}
)

// NewClient returns a client of h with an empty cookie jar.
func NewClient(h fasthttp.RequestHandler, stateful bool) *Client {
	cl := &Client{h: h, Stateful: stateful}
	var req fasthttp.Request
	cl.ctx.Init(&req, remoteAddr, nil)
	return cl
}

// Do sends one request with the jar's cookie, stores any cookie the response
// sets, and returns the status and body (valid until the next Do).
func (cl *Client) Do(method, path string) (int, []byte) {
	ctx := &cl.ctx
	ctx.ResetUserValues() // as fasthttp's server does between requests
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost("localhost") // a Secure cookie over http is fine here, as in browsers
	if len(cl.jar) > 0 {
		ctx.Request.Header.SetBytesKV(hdrCookie, cl.jar)
	}
	cl.h(ctx)
	ctx.Response.Header.VisitAllCookie(func(_, v []byte) {
		// The jar keeps one cookie: the site's session cookie. An empty value
		// (a deletion) empties it; attributes after ';' are not needed here.
		pair, _, _ := bytes.Cut(v, []byte{';'})
		if _, val, _ := bytes.Cut(pair, []byte{'='}); len(val) == 0 {
			cl.jar = cl.jar[:0]
		} else {
			cl.jar = append(cl.jar[:0], pair...)
		}
	})
	return ctx.Response.StatusCode(), ctx.Response.Body()
}

// SetCookie replaces the jar's cookie ("" empties it).
func (cl *Client) SetCookie(pair string) { cl.jar = append(cl.jar[:0], pair...) }

// expect sends a request and checks that it answered 200 with body want.
func (cl *Client) expect(method, path, want string) error {
	st, body := cl.Do(method, path)
	if st != fiber.StatusOK || string(body) != want {
		return fmt.Errorf("%s %s: got %d %q, want 200 %q", method, path, st, body, want)
	}
	return nil
}

func login(cl *Client) error {
	if err := cl.expect("POST", "/login", "ok"); err != nil {
		return err
	}
	if cl.Stateful && len(cl.jar) == 0 {
		return errors.New("login set no cookie")
	}
	return nil
}
