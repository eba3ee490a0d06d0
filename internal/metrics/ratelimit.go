package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// RateLimitedName is the counter of requests refused by a rate limit.
const RateLimitedName = "aegis_rate_limited_total"

// The limit label's values: which rate limit refused.
const (
	LimitKey        = "key"         // the API key's own rate
	LimitTotal      = "total"       // the route's total
	LimitPerCaller  = "per_caller"  // the route's per-caller rate
	LimitPerAddress = "per_address" // the route's per-address rate
)

func newRateLimited() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RateLimitedName,
		Help: "Requests refused with 429 by a rate limit, by app, function and limit (key, total, per_caller, per_address). Counted per server.",
	}, []string{"app", "function", "limit"})
}

// RateLimited counts one request refused by limit (LimitKey, ...).
func (m *Metrics) RateLimited(app, function, limit string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(app, function, limit).Inc()
}

// RateLimitedCount is the count RateLimited has reached for one label
// set, for tests and tools that read a value without scraping.
func (m *Metrics) RateLimitedCount(app, function, limit string) float64 {
	if m == nil {
		return 0
	}
	var out dto.Metric
	if err := m.rateLimited.WithLabelValues(app, function, limit).Write(&out); err != nil {
		return 0
	}
	return out.GetCounter().GetValue()
}
