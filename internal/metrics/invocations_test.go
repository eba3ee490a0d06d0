package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func exposition(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestInvocationsByOutcomeAndDuration(t *testing.T) {
	m := New()
	m.Invocation("shop", "orders", "http", OutcomeSuccess, true, 3*time.Millisecond)
	m.Invocation("shop", "orders", "http", OutcomeSuccess, true, 4*time.Millisecond)
	m.Invocation("shop", "orders", "http", OutcomeTimeout, true, 2*time.Second)
	m.Invocation("shop", "orders", "http", OutcomeBudgetExhausted, false, 0)
	m.Invocation("shop", "orders", "http", Outcome(200), true, time.Millisecond) // out of range: "error"
	if got := m.InvocationCount("shop", "orders", "http", OutcomeSuccess); got != 2 {
		t.Errorf("successes = %v, want 2", got)
	}
	body := exposition(t, m)
	for _, want := range []string{
		`aegis_invocations_total{app="shop",function="orders",outcome="timeout",trigger="http"} 1`,
		`aegis_invocations_total{app="shop",function="orders",outcome="budget_exhausted",trigger="http"} 1`,
		`aegis_invocations_total{app="shop",function="orders",outcome="error",trigger="http"} 1`,
		// The refused one ran for no time and is not observed.
		`aegis_invocation_duration_seconds_count{app="shop",function="orders",trigger="http"} 4`,
		`aegis_invocation_duration_seconds_bucket{app="shop",function="orders",trigger="http",le="0.005"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	var none *Metrics
	none.Invocation("a", "f", "http", OutcomeSuccess, true, time.Second) // must not panic
	none.BudgetRefused("a", "f", "app")
}

// Recording an invocation, once its series exist, allocates nothing:
// dispatch records one per request.
func TestInvocationDoesNotAllocate(t *testing.T) {
	m := New()
	app, fn := strings.Clone("shop"), strings.Clone("orders")
	m.Invocation(app, fn, "http", OutcomeSuccess, true, time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		// Fresh strings with the same contents, as a request brings them.
		m.Invocation(app, fn, "http", OutcomeSuccess, true, time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("Invocation allocates %v times per call", allocs)
	}
}

func BenchmarkInvocation(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Invocation("shop", "orders", "http", OutcomeSuccess, true, time.Millisecond)
		}
	})
}

// BenchmarkWithLabelValues is what Invocation avoids: resolving the series
// by its label values on every call.
func BenchmarkWithLabelValues(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.invocations.total.WithLabelValues("shop", "orders", "http", "success").Inc()
		m.invocations.duration.WithLabelValues("shop", "orders", "http").Observe(0.001)
	}
}

type fakePools struct{}

func (fakePools) PoolStats(fn func(app, function string, coldStarts uint64, warm int)) {
	fn("shop", "orders", 3, 2)
}

type fakePending struct{}

func (fakePending) PendingEvents(_ context.Context, fn func(app, function, trigger string, pending uint64)) {
	fn("shop", "mailer", "event:order.placed", 7)
}

func TestCollectorsReadAtScrape(t *testing.T) {
	m := New()
	m.ReadPools(fakePools{})
	m.ReadPendingEvents(fakePending{})
	dropped := int64(5)
	m.ReadLogDrops(LogFunction, func() int64 { return dropped })
	m.ReadLogDrops(LogFunction, func() int64 { return 99 }) // ignored: the first reader stays
	m.ReadLogDrops(LogPlatform, func() int64 { return 1 })
	m.EventRedelivered("shop", "mailer", "event:order.placed")
	m.DeadLetter("shop", "mailer", DeadLetterAttempts)
	m.AuthFailure("api-key", "unknown key")
	m.PermissionDenied("shop", "orders", "kv.put")
	m.BudgetRefused("shop", "orders", "function")
	body := exposition(t, m)
	for _, want := range []string{
		`aegis_cold_starts_total{app="shop",function="orders"} 3`,
		`aegis_warm_instances{app="shop",function="orders"} 2`,
		`aegis_events_pending{app="shop",function="mailer",trigger="event:order.placed"} 7`,
		`aegis_log_records_dropped_total{log="function"} 5`,
		`aegis_log_records_dropped_total{log="platform"} 1`,
		`aegis_events_redelivered_total{app="shop",function="mailer",trigger="event:order.placed"} 1`,
		`aegis_dead_letters_total{app="shop",function="mailer",reason="attempts"} 1`,
		`aegis_auth_failures_total{reason="unknown key",scheme="api-key"} 1`,
		`aegis_permission_denials_total{app="shop",capability="kv.put",function="orders"} 1`,
		`aegis_budget_refusals_total{app="shop",function="orders",scope="function"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	var none *Metrics
	none.ReadPools(fakePools{})
	none.ReadPendingEvents(fakePending{})
	none.ReadLogDrops(LogPlatform, func() int64 { return 0 })
	none.AuthFailure("a", "b")
	none.PermissionDenied("a", "f", "c")
	none.DeadLetter("a", "f", "r")
	none.EventRedelivered("a", "f", "t")
}

func TestNamesListEveryMetricWithoutSeries(t *testing.T) {
	m := New()
	m.ReadPools(fakePools{})
	names := strings.Join(m.Names(), " ")
	for _, want := range []string{InvocationsName, InvocationDurationName, DeadLettersName, AuthFailuresName,
		ColdStartsName, WarmInstancesName, SchemaViolationsName, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(" "+names+" ", " "+want+" ") {
			t.Errorf("Names lacks %s: %s", want, names)
		}
	}
	if strings.Contains(names, EventsPendingName) {
		t.Errorf("Names has %s, which nothing reads", EventsPendingName)
	}
}
