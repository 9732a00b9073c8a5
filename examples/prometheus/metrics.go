// Package sessionmetrics counts a session.Manager's events with Prometheus:
// New registers the collectors, and its OnEvent method is the manager's
// Config.OnEvent.
package sessionmetrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/fibersession/session"
)

// Metrics are the collectors that OnEvent feeds.
type Metrics struct {
	// Events is session_events_total{event}: every event but store calls,
	// labelled with its Kind's String ("created", "rotated", ...).
	Events *prometheus.CounterVec
	// StoreSeconds is session_store_seconds{op}: how long each store call
	// took, by operation ("get", "set", "cas", "touch" or "delete").
	StoreSeconds *prometheus.HistogramVec
	// StoreErrors is session_store_errors_total{op}: the store calls that
	// failed, by operation.
	StoreErrors *prometheus.CounterVec
}

// New registers the collectors on reg. It panics, as prometheus.MustRegister
// does, if reg already has collectors of these names.
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "session_events_total",
			Help: "Sessions created, rotated and destroyed, owners signed out, records that did not decode, and store errors.",
		}, []string{"event"}),
		StoreSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "session_store_seconds",
			Help:    "Latency of session store calls.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
		StoreErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "session_store_errors_total",
			Help: "Session store calls that failed.",
		}, []string{"op"}),
	}
	// Counters start at 0, so that rate() and alerts see their first event.
	for _, k := range []session.EventKind{session.EventCreated, session.EventRotated, session.EventDestroyed,
		session.EventOwnerSignedOut, session.EventDecodeFailed, session.EventStoreError} {
		m.Events.WithLabelValues(k.String())
	}
	for _, op := range []string{"get", "set", "cas", "touch", "delete"} {
		m.StoreErrors.WithLabelValues(op)
	}
	return m
}

// OnEvent counts e. Set it as session.Config.OnEvent.
func (m *Metrics) OnEvent(e session.Event) {
	switch e.Kind {
	case session.EventStoreCall:
		m.StoreSeconds.WithLabelValues(e.Op).Observe(e.Duration.Seconds())
		return
	case session.EventStoreError:
		m.StoreErrors.WithLabelValues(e.Op).Inc()
	}
	m.Events.WithLabelValues(e.Kind.String()).Inc()
}
