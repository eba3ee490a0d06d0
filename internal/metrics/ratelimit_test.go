package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRateLimitedIsExposed(t *testing.T) {
	m := New()
	m.RateLimited("shop", "orders", LimitPerAddress)
	m.RateLimited("shop", "orders", LimitPerAddress)
	m.RateLimited("shop", "orders", LimitKey)
	if got := m.RateLimitedCount("shop", "orders", LimitPerAddress); got != 2 {
		t.Errorf("per_address refusals = %v, want 2", got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	want := `aegis_rate_limited_total{app="shop",function="orders",limit="key"} 1`
	if !strings.Contains(string(body), want) {
		t.Errorf("exposition lacks %s:\n%s", want, body)
	}
	var none *Metrics
	none.RateLimited("a", "f", LimitTotal) // must not panic
	if none.RateLimitedCount("a", "f", LimitTotal) != 0 {
		t.Error("nil metrics counted")
	}
}
