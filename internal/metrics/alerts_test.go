package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuardAlertCountersAreExposed(t *testing.T) {
	m := New()
	m.GuardAlert("brute_force")
	m.GuardAlertDelivery(DeliveryRetried)
	m.GuardAlertDelivery(DeliveryRetried)
	m.GuardAlertDelivery(DeliveryDelivered)
	if got := m.GuardAlerts("brute_force"); got != 1 {
		t.Errorf("guard alerts = %v, want 1", got)
	}
	if got := m.GuardAlertDeliveries(DeliveryRetried); got != 2 {
		t.Errorf("retried deliveries = %v, want 2", got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`aegis_guard_alerts_total{rule="brute_force"} 1`,
		`aegis_guard_alert_deliveries_total{outcome="delivered"} 1`,
		`aegis_guard_alert_deliveries_total{outcome="retried"} 2`,
		// Every outcome is a series before it happens.
		`aegis_guard_alert_deliveries_total{outcome="failed"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	var nilM *Metrics
	nilM.GuardAlert("brute_force") // must not panic
	nilM.GuardAlertDelivery(DeliveryFailed)
}
