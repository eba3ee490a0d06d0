package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The usage and budget metrics (docs/budgets.md), by app, function and
// caller (the invocation's origin: "key:NAME", "schedule", "public", …).
const (
	UsageInvocationsName = "aegis_usage_invocations_total"
	UsageGBSecondsName   = "aegis_usage_gb_seconds_total"
	UsageEgressName      = "aegis_usage_egress_bytes_total"
	UsageRejectedName    = "aegis_usage_rejected_total"
	BudgetAlertsName     = "aegis_budget_alerts_total"
)

// usageMetrics are registered by New with the rest.
type usageMetrics struct {
	invocations, gbSeconds, egress, rejected *prometheus.CounterVec
	alerts                                   *prometheus.CounterVec
}

func newUsageMetrics() usageMetrics {
	labels := []string{"app", "function", "caller"}
	return usageMetrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: UsageInvocationsName,
			Help: "Invocations run, by app, function and caller (the origin charged)."}, labels),
		gbSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: UsageGBSecondsName,
			Help: "GB-seconds used (memory limit in GiB × wall time in seconds), by app, function and caller."}, labels),
		egress: prometheus.NewCounterVec(prometheus.CounterOpts{Name: UsageEgressName,
			Help: "Bytes moved by fetch, by app, function and caller."}, labels),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: UsageRejectedName,
			Help: "Invocations refused for a budget or a rate limit, by app, function and caller."}, labels),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: BudgetAlertsName,
			Help: "Budget alerts raised (once per window across servers), by app, function, scope (app, function, key) and level (80, 100)."},
			[]string{"app", "function", "scope", "level"}),
	}
}

func (u usageMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{u.invocations, u.gbSeconds, u.egress, u.rejected, u.alerts}
}

// Usage adds what a server has recorded for (app, function, caller) since
// it last reported.
func (m *Metrics) Usage(app, function, caller string, invocations int64, gbSeconds float64, egress, rejected int64) {
	if m == nil {
		return
	}
	if invocations > 0 {
		m.usage.invocations.WithLabelValues(app, function, caller).Add(float64(invocations))
	}
	if gbSeconds > 0 {
		m.usage.gbSeconds.WithLabelValues(app, function, caller).Add(gbSeconds)
	}
	if egress > 0 {
		m.usage.egress.WithLabelValues(app, function, caller).Add(float64(egress))
	}
	if rejected > 0 {
		m.usage.rejected.WithLabelValues(app, function, caller).Add(float64(rejected))
	}
}

// BudgetAlert counts one budget alert.
func (m *Metrics) BudgetAlert(app, function, scope, level string) {
	if m == nil {
		return
	}
	m.usage.alerts.WithLabelValues(app, function, scope, level).Inc()
}

// BudgetAlerts is the count of alerts for the label set, for tests.
func (m *Metrics) BudgetAlerts(app, function, scope, level string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.usage.alerts.WithLabelValues(app, function, scope, level))
}

// UsageInvocations is the invocations counted for the label set, for tests.
func (m *Metrics) UsageInvocations(app, function, caller string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.usage.invocations.WithLabelValues(app, function, caller))
}
