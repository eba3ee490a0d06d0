package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSchemaViolationsAreCountedPerLabelSet(t *testing.T) {
	m := New()
	m.SchemaViolation("shop", "orders", "POST /orders", "body")
	m.SchemaViolation("shop", "orders", "POST /orders", "body")
	m.SchemaViolation("shop", "orders", "POST /orders", "content_type")
	if got := testutil.ToFloat64(m.schemaViolations.WithLabelValues("shop", "orders", "POST /orders", "body")); got != 2 {
		t.Errorf("body violations = %v, want 2", got)
	}
	if got := testutil.CollectAndCount(m.schemaViolations); got != 2 {
		t.Errorf("%d series, want 2", got)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	want := `aegis_schema_violations_total{app="shop",function="orders",kind="body",trigger="POST /orders"} 2`
	if !strings.Contains(string(body), want) {
		t.Errorf("exposition lacks %s:\n%s", want, body)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.SchemaViolation("a", "f", "t", "body") // must not panic
	if m.Registry() != nil {
		t.Error("nil metrics have a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("nil metrics handler answered %d", rec.Code)
	}
}

func TestPressureCountersAreExposed(t *testing.T) {
	m := New()
	m.Backpressure("shop", "orders", "async_function")
	m.ConnectionRefused("gateway")
	m.ConnectionRefused("gateway")
	m.GuardBlock("brute_force")
	if got := m.GuardBlocks("brute_force"); got != 1 {
		t.Errorf("guard blocks = %v, want 1", got)
	}
	if got := m.BackpressureCount("shop", "orders", "async_function"); got != 1 {
		t.Errorf("backpressure = %v, want 1", got)
	}
	if got := m.ConnectionsRefused("gateway"); got != 2 {
		t.Errorf("refused connections = %v, want 2", got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`aegis_backpressure_total{app="shop",function="orders",queue="async_function"} 1`,
		`aegis_connections_refused_total{listener="gateway"} 2`,
		`aegis_guard_blocks_total{rule="brute_force"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	var nilM *Metrics
	nilM.Backpressure("a", "f", "q") // must not panic
	nilM.ConnectionRefused("gateway")
	nilM.GuardBlock("brute_force")
}
