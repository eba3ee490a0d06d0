package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Names of the backpressure and connection hygiene counters.
const (
	// BackpressureName counts work refused because a bound was full, by
	// app, function and queue ("async", "async_caller", "async_function",
	// "events"). The caller is never a label: callers are request data.
	BackpressureName = "aegis_backpressure_total"
	// ConnectionsRefusedName counts connections closed at accept because
	// their address held too many, by listener ("gateway", "admin").
	ConnectionsRefusedName = "aegis_connections_refused_total"
	// GuardBlocksName counts the blocks the guard placed on this server,
	// by rule ("brute_force", "shadow_api"). The address is never a label.
	GuardBlocksName = "aegis_guard_blocks_total"
)

// pressure holds the counters of refused work and connections.
type pressure struct {
	backpressure *prometheus.CounterVec
	refusedConns *prometheus.CounterVec
	guardBlocks  *prometheus.CounterVec
}

func newPressure() pressure {
	p := pressure{
		backpressure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: BackpressureName,
			Help: "Invocations and events refused because a bound on queued work was full, by app, function and queue (async, async_caller, async_function, events).",
		}, []string{"app", "function", "queue"}),
		refusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ConnectionsRefusedName,
			Help: "Connections closed at accept because their client address already held the most allowed, by listener.",
		}, []string{"listener"}),
		guardBlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GuardBlocksName,
			Help: "Client addresses blocked by a guard rule on this server, by rule.",
		}, []string{"rule"}),
	}
	return p
}

// Backpressure counts one refusal by a full queue. function is empty for
// a bound that holds a whole app (events).
func (m *Metrics) Backpressure(app, function, queue string) {
	if m == nil {
		return
	}
	m.pressure.backpressure.WithLabelValues(app, function, queue).Inc()
}

// BackpressureCount is the count Backpressure has reached for one label
// set, for tests.
func (m *Metrics) BackpressureCount(app, function, queue string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.pressure.backpressure.WithLabelValues(app, function, queue))
}

// ConnectionRefused counts one connection closed at accept.
func (m *Metrics) ConnectionRefused(listener string) {
	if m == nil {
		return
	}
	m.pressure.refusedConns.WithLabelValues(listener).Inc()
}

// ConnectionsRefused is the count ConnectionRefused has reached for a
// listener, for tests.
func (m *Metrics) ConnectionsRefused(listener string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.pressure.refusedConns.WithLabelValues(listener))
}

// GuardBlock counts one block the guard placed.
func (m *Metrics) GuardBlock(rule string) {
	if m == nil {
		return
	}
	m.pressure.guardBlocks.WithLabelValues(rule).Inc()
}

// GuardBlocks is the count GuardBlock has reached for a rule, for tests.
func (m *Metrics) GuardBlocks(rule string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.pressure.guardBlocks.WithLabelValues(rule))
}

func counterValue(c prometheus.Counter) float64 {
	var out dto.Metric
	if err := c.Write(&out); err != nil {
		return 0
	}
	return out.GetCounter().GetValue()
}
