package sessionmetrics_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fibersession/session"
	sessionmetrics "github.com/fibersession/session/examples/prometheus"
)

// Sessions counted by Prometheus, and served on the app's /metrics.
func Example() {
	reg := prometheus.NewRegistry() // or prometheus.DefaultRegisterer
	metrics := sessionmetrics.New(reg)

	app := fiber.New()
	app.Use(session.New(session.Config[string, string]{
		Secrets: [][]byte{key},
		OnEvent: metrics.OnEvent,
	}))
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	app.Post("/signin", func(c *fiber.Ctx) error {
		s, err := session.Get[string, string](c)
		if err != nil {
			return err
		}
		s.RegenerateID(true)
		s.SetOwner("ada")
		s.Set("user", "ada")
		return c.SendStatus(fiber.StatusNoContent)
	})

	app.Test(httptest.NewRequest(http.MethodPost, "http://localhost/signin", nil))
	resp, err := app.Test(httptest.NewRequest(http.MethodGet, "http://localhost/metrics", nil))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "session_events_total{") {
			fmt.Println(lines.Text())
		}
	}
	// Output:
	// session_events_total{event="created"} 1
	// session_events_total{event="decode_failed"} 0
	// session_events_total{event="destroyed"} 0
	// session_events_total{event="owner_signed_out"} 0
	// session_events_total{event="rotated"} 0
	// session_events_total{event="store_error"} 0
}
