package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the invocation metrics, recorded by dispatch for every
// invocation whatever triggered it.
const (
	InvocationsName        = "aegis_invocations_total"
	InvocationDurationName = "aegis_invocation_duration_seconds"
	BudgetRefusalsName     = "aegis_budget_refusals_total"
)

// Outcome is how an invocation ended, the outcome label of
// aegis_invocations_total. The set is closed, so the label stays bounded.
type Outcome uint8

// The outcomes, in the order OutcomeNames names them.
const (
	OutcomeSuccess          Outcome = iota // the function answered
	OutcomeFunctionError                   // the function reported a failure
	OutcomeTimeout                         // it ran past its timeout
	OutcomeMemoryLimit                     // it asked for more memory than its limit
	OutcomeResponseTooLarge                // its answer was over max_response
	OutcomeTrap                            // the guest trapped
	OutcomeBudgetExhausted                 // a hard budget refused it before it ran
	OutcomeConcurrencyLimit                // no instance became free in time
	OutcomeUnavailable                     // draining, or the function was closed
	OutcomeError                           // anything else
	OutcomeThrottled                       // the guard's throttle refused it before it ran
	OutcomeQuarantined                     // the guard quarantined the function
	numOutcomes
)

// OutcomeNames are the outcome label's values, indexed by Outcome.
var OutcomeNames = [numOutcomes]string{
	"success", "function_error", "timeout", "memory_limit", "response_too_large",
	"trap", "budget_exhausted", "concurrency_limit", "unavailable", "error",
	"throttled", "quarantined",
}

func (o Outcome) String() string {
	if o >= numOutcomes {
		return OutcomeNames[OutcomeError]
	}
	return OutcomeNames[o]
}

// invocationMetrics hold the invocation counter and histogram, and the
// series of each (app, function, trigger) once resolved: resolving a
// series (WithLabelValues) hashes its labels and, for a new one, builds
// it; dispatch records one invocation per request and must not pay that.
type invocationMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	budget   *prometheus.CounterVec

	mu     sync.RWMutex
	series map[invocationKey]*invocationSeries
}

type invocationKey struct{ app, function, trigger string }

type invocationSeries struct {
	duration prometheus.Observer
	mu       sync.Mutex // guards the lazy fill of outcomes
	outcomes [numOutcomes]prometheus.Counter
}

// durationBuckets span a warm call of a small function (well under a
// millisecond) to the longest timeouts manifests allow.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newInvocationMetrics() *invocationMetrics {
	return &invocationMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: InvocationsName,
			Help: "Invocations, by app, function, trigger (http, event, object, schedule) and outcome (success, function_error, timeout, memory_limit, response_too_large, trap, budget_exhausted, concurrency_limit, unavailable, error)."},
			[]string{"app", "function", "trigger", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: InvocationDurationName,
			Help:    "Wall time of invocations that ran (refused ones are not observed), by app, function and trigger.",
			Buckets: durationBuckets},
			[]string{"app", "function", "trigger"}),
		budget: prometheus.NewCounterVec(prometheus.CounterOpts{Name: BudgetRefusalsName,
			Help: "Invocations refused because a hard budget was spent, by app, function and scope (app, function, key)."},
			[]string{"app", "function", "scope"}),
		series: map[invocationKey]*invocationSeries{},
	}
}

func (im *invocationMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{im.total, im.duration, im.budget}
}

// seriesOf returns the cached series of k, resolving it on first use. A
// map lookup with a key of strings allocates nothing.
func (im *invocationMetrics) seriesOf(k invocationKey) *invocationSeries {
	im.mu.RLock()
	s := im.series[k]
	im.mu.RUnlock()
	if s != nil {
		return s
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if s = im.series[k]; s == nil {
		s = &invocationSeries{duration: im.duration.WithLabelValues(k.app, k.function, k.trigger)}
		im.series[k] = s
	}
	return s
}

func (s *invocationSeries) counter(im *invocationMetrics, k invocationKey, o Outcome) prometheus.Counter {
	s.mu.Lock()
	c := s.outcomes[o]
	if c == nil {
		c = im.total.WithLabelValues(k.app, k.function, k.trigger, o.String())
		s.outcomes[o] = c
	}
	s.mu.Unlock()
	return c
}

// Invocation counts one invocation of app/function by trigger (the
// request's kind) with its outcome, and observes its duration when it ran
// (ran false: refused before it started, by a budget or while draining).
// After the first call for a label set it allocates nothing.
func (m *Metrics) Invocation(app, function, trigger string, outcome Outcome, ran bool, d time.Duration) {
	if m == nil {
		return
	}
	if outcome >= numOutcomes {
		outcome = OutcomeError
	}
	k := invocationKey{app, function, trigger}
	s := m.invocations.seriesOf(k)
	s.counter(m.invocations, k, outcome).Inc()
	if ran {
		s.duration.Observe(d.Seconds())
	}
}

// InvocationCount is the count Invocation has reached for one label set,
// for tests.
func (m *Metrics) InvocationCount(app, function, trigger string, outcome Outcome) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.invocations.total.WithLabelValues(app, function, trigger, outcome.String()))
}

// BudgetRefused counts one invocation a spent hard budget refused; scope
// is the budget's (app, function, key), never the key's name.
func (m *Metrics) BudgetRefused(app, function, scope string) {
	if m == nil {
		return
	}
	m.invocations.budget.WithLabelValues(app, function, scope).Inc()
}
