// Package metrics owns the server's Prometheus registry and the metrics
// recorded on it, so every metric name and label set is declared in one
// place. It is the only package importing the Prometheus client; the
// server creates one Metrics and hands it to the parts that count things.
//
// Labels hold names from manifests (apps, functions, routes, topics),
// never request data, so the number of series stays bounded by what is
// deployed rather than by what clients send.
package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics is the registry of one server and the metrics on it. A nil
// *Metrics records nothing, so tests and tools can leave it out.
type Metrics struct {
	reg              *prometheus.Registry
	schemaViolations *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	usage            usageMetrics
	pressure         pressure // pressure.go
	mu               sync.Mutex
	registered       []prometheus.Collector // for Names
	invocations      *invocationMetrics     // invocations.go
	security         securityMetrics        // security.go
	events           eventMetrics           // events.go
	alerts           alertMetrics           // alerts.go
}

// SchemaViolationsName is the counter of requests and events refused by a
// schema (or a content type).
const SchemaViolationsName = "aegis_schema_violations_total"

// New returns a fresh registry with every Aegis metric registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		schemaViolations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: SchemaViolationsName,
			Help: "Requests and events refused because they did not match a trigger's schema or content types, by app, function, trigger and kind (body, query, params, content_type, event, object).",
		}, []string{"app", "function", "trigger", "kind"}),
		rateLimited: newRateLimited(),
	}
	// The runtime and process collectors come with every Prometheus
	// endpoint users know; memory and goroutines are the first things to
	// look at when a server misbehaves.
	m.pressure = newPressure()
	m.mustRegister(m.pressure.backpressure, m.pressure.refusedConns, m.pressure.guardBlocks)
	m.usage = newUsageMetrics()
	m.mustRegister(m.usage.collectors()...)
	m.invocations = newInvocationMetrics()
	m.mustRegister(m.invocations.collectors()...)
	m.security = newSecurityMetrics()
	m.mustRegister(m.security.collectors()...)
	m.events = newEventMetrics()
	m.mustRegister(m.events.collectors()...)
	m.alerts = newAlertMetrics()
	m.mustRegister(m.alerts.collectors()...)
	m.mustRegister(m.schemaViolations, m.rateLimited, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SchemaViolation counts one refusal. trigger names the trigger as the
// manifest declares it ("POST /entries/{id}", "event:entry.saved",
// "object:images/|put"); kind is what failed.
func (m *Metrics) SchemaViolation(app, function, trigger, kind string) {
	if m == nil {
		return
	}
	m.schemaViolations.WithLabelValues(app, function, trigger, kind).Inc()
}

// SchemaViolations is the count SchemaViolation has reached for one label
// set, for tests and tools that read a value without scraping.
func (m *Metrics) SchemaViolations(app, function, trigger, kind string) float64 {
	if m == nil {
		return 0
	}
	var out dto.Metric
	if err := m.schemaViolations.WithLabelValues(app, function, trigger, kind).Write(&out); err != nil {
		return 0
	}
	return out.GetCounter().GetValue()
}

// Registry is the Prometheus registry, for serving and for tests that
// gather from it.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in the Prometheus exposition format. Where
// it is mounted (and behind which authentication) is the caller's choice.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
