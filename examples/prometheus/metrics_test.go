package sessionmetrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/fibersession/session"
	sessionmetrics "github.com/fibersession/session/examples/prometheus"
	"github.com/fibersession/session/stores/memory"
)

var key = []byte("an example key of at least 32 bytes!")

// countingStore is a memory store that counts the calls the manager makes of
// each operation, and fails reads while fail is set.
type countingStore struct {
	*memory.Store
	fail  atomic.Bool
	mu    sync.Mutex
	calls map[string]int
}

var errDown = errors.New("store down")

func (s *countingStore) count(op string) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

func (s *countingStore) Get(ctx context.Context, id string) ([]byte, error) {
	s.count("get")
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, id)
}

func (s *countingStore) GetTTL(ctx context.Context, id string) ([]byte, time.Duration, error) {
	s.count("get")
	if s.fail.Load() {
		return nil, 0, errDown
	}
	return s.Store.GetTTL(ctx, id)
}

func (s *countingStore) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	s.count("set")
	return s.Store.Set(ctx, id, data, ttl)
}

func (s *countingStore) CompareAndSet(ctx context.Context, id string, old, data []byte, ttl time.Duration) (bool, error) {
	s.count("cas")
	return s.Store.CompareAndSet(ctx, id, old, data, ttl)
}

func (s *countingStore) Touch(ctx context.Context, id string, ttl time.Duration) error {
	s.count("touch")
	return s.Store.Touch(ctx, id, ttl)
}

func (s *countingStore) Delete(ctx context.Context, id string) error {
	s.count("delete")
	return s.Store.Delete(ctx, id)
}

// browser sends requests to app with the session cookie of the last response
// that set one, as a browser would.
type browser struct {
	t      *testing.T
	app    *fiber.App
	cookie *http.Cookie
}

func (b *browser) do(method, path string) (int, string) {
	b.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	resp, err := b.app.Test(req, -1)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name != "session" {
			continue
		}
		if c.MaxAge < 0 || c.Value == "" {
			b.cookie = nil
		} else {
			b.cookie = c
		}
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// id returns the session id that the browser's cookie (id.signature) names.
func (b *browser) id() string {
	b.t.Helper()
	if b.cookie == nil {
		b.t.Fatal("the browser has no session cookie")
	}
	id, _, ok := strings.Cut(b.cookie.Value, ".")
	if !ok {
		b.t.Fatalf("session cookie %q is not id.signature", b.cookie.Value)
	}
	return id
}

func (b *browser) want(method, path string, status int, body string) {
	b.t.Helper()
	if gotStatus, gotBody := b.do(method, path); gotStatus != status || gotBody != body {
		b.t.Fatalf("%s %s = %d %q, want %d %q", method, path, gotStatus, gotBody, status, body)
	}
}

// TestMetrics drives sign-ins, a sign-out, a sign-out everywhere, a corrupt
// record and a store outage through an app, then scrapes the registry over
// HTTP and checks every series the flow determines.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := sessionmetrics.New(reg)
	store := &countingStore{Store: memory.New(memory.Config{}), calls: map[string]int{}}
	m, err := session.NewManager(session.Config[string, string]{
		Secrets: [][]byte{key},
		Store:   store,
		OnEvent: metrics.OnEvent,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Handler())
	app.Post("/visit", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Set("theme", "dark")
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Post("/signin", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.SetOwner("ada")
		s.Set("user", "ada")
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Post("/signout", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Get("/whoami", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		u, _ := s.Get("user")
		return c.SendString(u)
	})

	laptop := &browser{t: t, app: app}
	laptop.want(http.MethodPost, "/visit", 204, "")    // created
	laptop.want(http.MethodPost, "/signin", 204, "")   // rotated
	laptop.want(http.MethodGet, "/whoami", 200, "ada") // read only
	phone := &browser{t: t, app: app}
	phone.want(http.MethodPost, "/signin", 204, "") // created: there was nothing to rotate
	phone.want(http.MethodGet, "/whoami", 200, "ada")
	laptop.want(http.MethodPost, "/signout", 204, "") // destroyed
	if laptop.cookie != nil {
		t.Fatal("the sign-out left the session cookie in place")
	}

	n, err := m.DestroyOwner(context.Background(), "ada") // owner_signed_out
	if err != nil || n != 1 {
		t.Fatalf("DestroyOwner = %d, %v; want 1 (the phone's session), nil", n, err)
	}
	phone.want(http.MethodGet, "/whoami", 200, "")

	// A record that does not decode, under a validly signed cookie.
	tablet := &browser{t: t, app: app}
	tablet.want(http.MethodPost, "/visit", 204, "") // created
	if err := store.Store.Set(context.Background(), tablet.id(), []byte("not a session record"), time.Hour); err != nil {
		t.Fatal(err)
	}
	tablet.want(http.MethodGet, "/whoami", 200, "") // decode_failed

	// A store outage: the read fails, and so does the request.
	store.fail.Store(true)
	if status, _ := tablet.do(http.MethodGet, "/whoami"); status != http.StatusInternalServerError {
		t.Fatalf("GET /whoami with the store down = %d, want 500", status)
	}
	store.fail.Store(false)

	fams := scrape(t, reg)
	for event, want := range map[string]float64{
		"created":          3,
		"rotated":          1,
		"destroyed":        1,
		"owner_signed_out": 1,
		"decode_failed":    1,
		"store_error":      1,
	} {
		if got := value(t, fams, "session_events_total", "event", event); got != want {
			t.Errorf(`session_events_total{event=%q} = %v, want %v`, event, got, want)
		}
	}
	if got := len(fams["session_events_total"].GetMetric()); got != 6 {
		t.Errorf("session_events_total has %d series, want 6 (store calls are not events)", got)
	}
	for _, op := range []string{"get", "set", "cas", "touch", "delete"} {
		want := 0.0
		if op == "get" {
			want = 1
		}
		if got := value(t, fams, "session_store_errors_total", "op", op); got != want {
			t.Errorf(`session_store_errors_total{op=%q} = %v, want %v`, op, got, want)
		}
	}

	// Every store call the manager made was observed once, under its op.
	store.mu.Lock()
	calls := store.calls
	store.mu.Unlock()
	if calls["get"] == 0 {
		t.Fatal("the flow made no store reads")
	}
	observed := map[string]uint64{}
	for _, mt := range fams["session_store_seconds"].GetMetric() {
		observed[label(mt, "op")] = mt.GetHistogram().GetSampleCount()
	}
	for op, n := range calls {
		if observed[op] != uint64(n) {
			t.Errorf(`session_store_seconds_count{op=%q} = %d, want %d (the store's calls)`, op, observed[op], n)
		}
	}
	if len(observed) != len(calls) {
		t.Errorf("session_store_seconds has ops %v, the store was called for %v", observed, calls)
	}
	t.Logf("store calls: %v", calls)
}

// scrape fetches reg's metrics over HTTP, as Prometheus would, and parses
// the text exposition.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return fams
}

// value returns the value of the counter family{name=val}, failing the test
// if there is no such series.
func value(t *testing.T, fams map[string]*dto.MetricFamily, family, name, val string) float64 {
	t.Helper()
	for _, mt := range fams[family].GetMetric() {
		if label(mt, name) == val {
			return mt.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s{%s=%q} in the scrape", family, name, val)
	return 0
}

// label returns the value of mt's label name, or "".
func label(mt *dto.Metric, name string) string {
	for _, l := range mt.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
