package metrics

import "github.com/prometheus/client_golang/prometheus"

// Names of the guard's alert counters (docs/guard.md, "Alerts").
const (
	// GuardAlertsName counts the alerts this server raised, by rule. The
	// target (an address, a key, a function) is never a label.
	GuardAlertsName = "aegis_guard_alerts_total"
	// GuardAlertDeliveriesName counts attempts to POST an alert to an
	// operator's webhook, by outcome.
	GuardAlertDeliveriesName = "aegis_guard_alert_deliveries_total"
)

// The outcomes of aegis_guard_alert_deliveries_total.
const (
	DeliveryDelivered = "delivered" // the receiver answered 2xx
	DeliveryRetried   = "retried"   // it did not; another attempt is scheduled
	DeliveryFailed    = "failed"    // given up: the last attempt failed, or the record was unreadable
)

type alertMetrics struct {
	raised     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

func newAlertMetrics() alertMetrics {
	a := alertMetrics{
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{Name: GuardAlertsName,
			Help: "Alerts the guard raised on this server, one per incident, by rule."},
			[]string{"rule"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: GuardAlertDeliveriesName,
			Help: "Attempts by this server to deliver a guard alert to an alert webhook, by outcome (delivered, retried, failed)."},
			[]string{"outcome"}),
	}
	// The outcomes are few and fixed: each series exists from the start,
	// so a rate over it is defined before the first delivery.
	for _, o := range []string{DeliveryDelivered, DeliveryRetried, DeliveryFailed} {
		a.deliveries.WithLabelValues(o)
	}
	return a
}

func (a alertMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.raised, a.deliveries}
}

// GuardAlert counts one alert raised by rule.
func (m *Metrics) GuardAlert(rule string) {
	if m == nil {
		return
	}
	m.alerts.raised.WithLabelValues(rule).Inc()
}

// GuardAlerts is the count GuardAlert has reached for a rule, for tests.
func (m *Metrics) GuardAlerts(rule string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.alerts.raised.WithLabelValues(rule))
}

// GuardAlertDelivery counts one delivery attempt's outcome (DeliveryDelivered,
// DeliveryRetried or DeliveryFailed).
func (m *Metrics) GuardAlertDelivery(outcome string) {
	if m == nil {
		return
	}
	m.alerts.deliveries.WithLabelValues(outcome).Inc()
}

// GuardAlertDeliveries is the count GuardAlertDelivery has reached for an
// outcome, for tests.
func (m *Metrics) GuardAlertDeliveries(outcome string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.alerts.deliveries.WithLabelValues(outcome))
}
