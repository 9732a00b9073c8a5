package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session/stores/memory"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

type sess = Session[string, string]

// countingStore is the memory store with call counters and a switch that
// makes every call fail.
type countingStore struct {
	*memory.Store
	gets, sets, deletes, touches, closes atomic.Int64
	conflicts                            atomic.Int64 // compare-and-sets that did not write
	fail                                 atomic.Bool
}

var errDown = errors.New("dial tcp 10.0.0.1:6379: connection refused")

func newCountingStore(t *testing.T) *countingStore {
	st := &countingStore{Store: memory.New(memory.Config{CleanupInterval: -1})}
	t.Cleanup(func() { st.Close() })
	return st
}

func (c *countingStore) err() error {
	if c.fail.Load() {
		return errDown
	}
	return nil
}

func (c *countingStore) Get(ctx context.Context, id string) ([]byte, error) {
	c.gets.Add(1)
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.Store.Get(ctx, id)
}

func (c *countingStore) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	c.gets.Add(1)
	if err := c.err(); err != nil {
		return nil, 0, err
	}
	return c.Store.GetTTL(ctx, id)
}

func (c *countingStore) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	c.sets.Add(1)
	if err := c.err(); err != nil {
		return err
	}
	return c.Store.Set(ctx, id, data, ttl)
}

func (c *countingStore) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	c.sets.Add(1)
	if err := c.err(); err != nil {
		return false, err
	}
	done, err := c.Store.CompareAndSet(ctx, id, old, data, ttl)
	if err == nil && !done {
		c.conflicts.Add(1)
	}
	return done, err
}

func (c *countingStore) Delete(ctx context.Context, id string) error {
	c.deletes.Add(1)
	if err := c.err(); err != nil {
		return err
	}
	return c.Store.Delete(ctx, id)
}

func (c *countingStore) Touch(ctx context.Context, id string, ttl time.Duration) error {
	c.touches.Add(1)
	if err := c.err(); err != nil {
		return err
	}
	return c.Store.Touch(ctx, id, ttl)
}

func (c *countingStore) Close() error {
	c.closes.Add(1)
	return c.Store.Close()
}

func (c *countingStore) writes() int64 { return c.sets.Load() + c.deletes.Load() + c.touches.Load() }

// harness is a Fiber app with the middleware and one route, /run, whose
// handler is whatever the test passes to do. A cookie jar plays the browser.
type harness struct {
	t     *testing.T
	m     *Manager[string, string]
	app   *fiber.App
	store *countingStore
	jar   *cookiejar.Jar
	logs  *bytes.Buffer
	clock atomic.Int64 // offset added to the real time, in nanoseconds
	mu    sync.Mutex
	fn    map[string]func(c *fiber.Ctx, s *sess) error
	seq   atomic.Int64
}

var site, _ = url.Parse("https://example.com/run/x")

func newHarness(t *testing.T, cfg Config[string, string]) *harness {
	t.Helper()
	h := &harness{t: t, logs: &bytes.Buffer{}, fn: map[string]func(*fiber.Ctx, *sess) error{}}
	if cfg.Store == nil {
		h.store = newCountingStore(t)
		cfg.Store = h.store
	}
	if cfg.Secrets == nil {
		cfg.Secrets = [][]byte{testKey}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(syncWriter{&h.mu, h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.now = func() time.Time { return time.Now().Add(time.Duration(h.clock.Load())) }
	h.m = m
	h.jar, _ = cookiejar.New(nil)
	h.app = fiber.New(fiber.Config{ReadBufferSize: 32 << 10})
	h.app.Use(m.Handler())
	h.app.Get("/plain", func(c *fiber.Ctx) error { return c.SendString("plain") })
	h.app.All("/run/:n", func(c *fiber.Ctx) error {
		h.mu.Lock()
		fn := h.fn[c.Params("n")]
		h.mu.Unlock()
		s, err := Get[string, string](c)
		if err != nil {
			return err
		}
		return fn(c, s)
	})
	return h
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (h *harness) advance(d time.Duration) { h.clock.Add(int64(d)) }

// do runs fn as the handler of one request that carries the jar's cookies
// (plus any extra Cookie header) and stores the response's cookies in the jar.
func (h *harness) do(fn func(c *fiber.Ctx, s *sess) error, extraCookie ...string) *http.Response {
	h.t.Helper()
	n := h.seq.Add(1)
	key := string(rune('a'+n%26)) + strings.Repeat("x", int(n/26))
	h.mu.Lock()
	h.fn[key] = fn
	h.mu.Unlock()
	req := httptest.NewRequest(http.MethodPost, "/run/"+key, nil)
	for _, c := range h.jar.Cookies(site) {
		req.AddCookie(c)
	}
	for _, c := range extraCookie {
		req.Header.Add("Cookie", c)
	}
	resp, err := h.app.Test(req, -1)
	if err != nil {
		h.t.Fatal(err)
	}
	h.jar.SetCookies(site, resp.Cookies())
	return resp
}

// plain sends a request to a route without the session.
func (h *harness) plain() {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/plain", nil)
	for _, c := range h.jar.Cookies(site) {
		req.AddCookie(c)
	}
	if _, err := h.app.Test(req); err != nil {
		h.t.Fatal(err)
	}
}

// cookie returns the jar's session cookie value, or "".
func (h *harness) cookie() string {
	for _, c := range h.jar.Cookies(site) {
		if c.Name == h.m.cfg.CookieName {
			return c.Value
		}
	}
	return ""
}

// id returns the session id the jar's cookie names.
func (h *harness) id() string {
	v := h.cookie()
	if i := strings.IndexByte(v, '.'); i > 0 {
		return v[:i]
	}
	return ""
}

// stored reads and decodes the record under id, or reports it missing.
func (h *harness) stored(id string) (record[string, string], bool) {
	h.t.Helper()
	data, err := h.store.Store.Get(context.Background(), id)
	if errors.Is(err, ErrNotFound) {
		return record[string, string]{}, false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var r record[string, string]
	if err := decodeRecord(data, &r); err != nil {
		h.t.Fatal(err)
	}
	return r, true
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setCookies returns the response's Set-Cookie header values.
func setCookies(r *http.Response) []string { return r.Header.Values("Set-Cookie") }

// login stores user under "user" in a new session and returns its id.
func (h *harness) login(user string) string {
	h.t.Helper()
	h.do(func(c *fiber.Ctx, s *sess) error {
		s.Set("user", user)
		return nil
	})
	id := h.id()
	if id == "" {
		h.t.Fatal("no session cookie after a write")
	}
	return id
}
