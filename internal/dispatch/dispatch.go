// Package dispatch is the one path every invocation takes, whatever
// triggered it (gateway, event, object change, schedule, admin): it runs the
// function, writes the invocation record with its request id, and tracks
// in-flight work so shutdown can drain it. Before it runs a function it
// asks usage whether the budgets that apply have something left, and
// after, it charges what the invocation used.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/usage"
	"github.com/aegis-platform/aegis/manifest"
)

// ErrDraining is returned once shutdown has begun.
var ErrDraining = fmt.Errorf("%w: server is shutting down", aegis.ErrUnavailable)

// Dispatcher runs invocations.
type Dispatcher struct {
	logs  *funclog.Log
	log   *slog.Logger
	usage *usage.Recorder    // nil: nothing recorded, no budgets
	spans telemetry.SpanSink // nil: no span exported
	m     *metrics.Metrics   // nil: nothing counted
	// graph counts trigger edges (graph.go); nil counts none.
	graph *callgraph.Recorder
	// guard is told of refusals, failures and every invocation's cost,
	// and stops a quarantined or throttled function; nil does neither.
	guard *guard.Guard

	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
}

// New returns a Dispatcher writing invocation records to logs.
func New(logs *funclog.Log, logger *slog.Logger) *Dispatcher {
	return &Dispatcher{logs: logs, log: logger}
}

// WithUsage makes d record every invocation's usage on u and refuse those
// a hard budget does not allow. Call it before the first Invoke.
func (d *Dispatcher) WithUsage(u *usage.Recorder) *Dispatcher {
	d.usage = u
	return d
}

// WithSpans makes d export every invocation's span to sink
// (OpenTelemetry). Call it before the first Invoke.
func (d *Dispatcher) WithSpans(sink telemetry.SpanSink) *Dispatcher {
	d.spans = sink
	return d
}

// WithGuard makes d tell g of budget refusals, timeouts, traps and every
// invocation (its GB-seconds), and refuse the invocations of a function g
// quarantined or throttled. Call it before the first Invoke.
func (d *Dispatcher) WithGuard(g *guard.Guard) *Dispatcher {
	d.guard = g
	return d
}

// WithMetrics makes d count every invocation, its outcome and duration on
// m. Call it before the first Invoke.
func (d *Dispatcher) WithMetrics(m *metrics.Metrics) *Dispatcher {
	d.m = m
	return d
}

// Invoke runs req on fn and records the outcome.
func (d *Dispatcher) Invoke(ctx context.Context, fn *registry.Function, req *sandbox.Request) (*sandbox.Response, error) {
	d.mu.Lock()
	if d.draining {
		d.mu.Unlock()
		d.m.Invocation(fn.App, fn.Spec.Name, req.Kind, metrics.OutcomeUnavailable, false, 0)
		return nil, ErrDraining
	}
	d.inflight.Add(1)
	d.mu.Unlock()
	defer d.inflight.Done()

	startSpan(req)
	if err := d.guarded(fn, req); err != nil {
		d.m.Invocation(fn.App, fn.Spec.Name, req.Kind, Outcome(err), false, 0)
		return nil, err
	}
	inv := usage.Invocation{App: fn.App, Function: fn.Spec.Name, Origin: req.Origin,
		AppBudget: fn.AppBudget, FunctionBudget: fn.Spec.Budget}
	ticket, err := d.usage.Admit(ctx, inv)
	if err != nil {
		d.refused(fn, req, err)
		d.m.Invocation(fn.App, fn.Spec.Name, req.Kind, Outcome(err), false, 0)
		return nil, err
	}
	d.countTrigger(fn, req)
	if d.usage != nil && req.Meter == nil {
		req.Meter = &sandbox.Meter{} // what fetch moves, for the egress charged
	}
	start := time.Now()
	resp, err := fn.Instance.Invoke(ctx, req)
	end := time.Now()
	mem := int64(fn.Spec.Limits.Memory)
	if mem <= 0 {
		mem = int64(manifest.DefaultMemory)
	}
	if d.usage != nil {
		d.usage.Done(ticket, inv, usage.Used{Memory: mem, Wall: end.Sub(start), Egress: req.Meter.EgressBytes})
	}
	d.observe(fn, req, err, mem, end.Sub(start))
	// A value, not a pointer: Write copies it into its queue, so the
	// record per invocation stays off the heap.
	rec := funclog.Record{
		Time: end.UTC(), Level: "info", Msg: "invocation", App: fn.App, Function: fn.Spec.Name, Version: fn.Version,
		RequestID: req.RequestID, Trigger: Trigger(req),
		DurationMS: float64(end.Sub(start).Microseconds()) / 1000,
		TraceID:    req.Trace.TraceID, SpanID: req.Trace.SpanID, ParentID: req.Trace.ParentID, Attempt: req.Attempt,
	}
	if err != nil {
		rec.Level, rec.Msg, rec.Reason, rec.Error = "error", "invocation failed", FailureReason(err), err.Error()
		if msg := sandbox.FunctionMessage(err); msg != "" {
			// The developer's log shows the function's own words, not
			// the platform's "handler returned failure code 1".
			rec.Error = FunctionFailed + ": " + msg
		}
		d.log.Warn("invocation failed", logkey.RequestID, req.RequestID, logkey.App, fn.App, logkey.Function, fn.Spec.Name,
			logkey.Version, fn.Version, logkey.Trigger, req.Kind, logkey.TraceID, req.Trace.TraceID, logkey.Error, err)
	} else {
		rec.Status = resp.Status
		if rec.Status == 0 {
			rec.Status = 200
		}
	}
	if d.logs != nil {
		d.logs.Write(&rec)
	}
	d.m.Invocation(fn.App, fn.Spec.Name, rec.Trigger, Outcome(err), true, end.Sub(start))
	if d.spans != nil {
		d.exportSpan(fn, req, &rec, start, end)
	}
	return resp, err
}

// refused logs an invocation a budget did not let start: a security line
// (a limit hit), naming the budget and when it resets.
func (d *Dispatcher) refused(fn *registry.Function, req *sandbox.Request, err error) {
	var ex *usage.ExhaustedError
	if !errors.As(err, &ex) {
		d.log.Error("budget check failed", logkey.RequestID, req.RequestID, logkey.App, fn.App, logkey.Function, fn.Spec.Name, logkey.Error, err)
		return
	}
	d.m.BudgetRefused(fn.App, fn.Spec.Name, ex.Scope)
	if d.guard.Wants(guard.BudgetRefused) {
		e := guard.Event{Signal: guard.BudgetRefused, App: fn.App, Function: fn.Spec.Name}
		if req.Identity != nil {
			e.Key = req.Identity.KeyID
		}
		d.guard.Observe(e)
	}
	d.log.Warn("invocation refused", logkey.Security, true, logkey.RequestID, req.RequestID, logkey.App, fn.App,
		logkey.Function, fn.Spec.Name, logkey.Reason, "budget exhausted", logkey.Budget, ex.Scope, logkey.Amount, ex.Amount,
		logkey.Window, string(ex.Window), logkey.ResetsAt, ex.ResetsAt.Format(time.RFC3339), logkey.Origin, usage.Origin(req.Origin),
		logkey.Trigger, req.Kind, logkey.TraceID, req.Trace.TraceID)
	// The refusal is a node of the trace too: where the chain stopped.
	if d.logs != nil {
		d.logs.Write(&funclog.Record{Level: "warn", Msg: "invocation refused", App: fn.App, Function: fn.Spec.Name,
			Version: fn.Version, RequestID: req.RequestID, Trigger: Trigger(req), Reason: "budget exhausted",
			TraceID: req.Trace.TraceID, SpanID: req.Trace.SpanID, ParentID: req.Trace.ParentID, Attempt: req.Attempt})
	}
}

// FunctionFailed begins the error a developer's tools show for a failure
// the function explained itself ("function failed: " and its message).
const FunctionFailed = "function failed"

// FailureReason names why an invocation failed in a word or two, for the
// reason of its record in the function log: which limit it hit, or that
// the function itself failed. The order matters as in httperr: the
// sandbox's limit errors also match aegis.ErrLimitExceeded.
func FailureReason(err error) string {
	var fe *sandbox.FunctionError
	switch {
	case errors.Is(err, sandbox.ErrTimeout):
		return "timeout"
	case errors.Is(err, sandbox.ErrMemory):
		return "memory limit"
	case errors.Is(err, sandbox.ErrResponseTooLarge):
		return "response too large"
	case errors.As(err, &fe):
		return "function error"
	case errors.Is(err, sandbox.ErrTrap):
		return "trap"
	case errors.Is(err, usage.ErrBudgetExhausted):
		return "budget exhausted"
	case errors.Is(err, guard.ErrThrottled):
		return "throttled"
	case errors.Is(err, guard.ErrQuarantined):
		return "quarantined"
	case errors.Is(err, aegis.ErrLimitExceeded):
		// What is left on the invocation path is the function's pool.
		return "concurrency limit"
	case errors.Is(err, aegis.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// Outcome is the outcome label of an invocation that ended with err (nil:
// success), in the order FailureReason names them.
func Outcome(err error) metrics.Outcome {
	if err == nil {
		return metrics.OutcomeSuccess
	}
	var fe *sandbox.FunctionError
	switch {
	case errors.Is(err, sandbox.ErrTimeout):
		return metrics.OutcomeTimeout
	case errors.Is(err, sandbox.ErrMemory):
		return metrics.OutcomeMemoryLimit
	case errors.Is(err, sandbox.ErrResponseTooLarge):
		return metrics.OutcomeResponseTooLarge
	case errors.As(err, &fe):
		return metrics.OutcomeFunctionError
	case errors.Is(err, sandbox.ErrTrap):
		return metrics.OutcomeTrap
	case errors.Is(err, usage.ErrBudgetExhausted):
		return metrics.OutcomeBudgetExhausted
	case errors.Is(err, guard.ErrThrottled):
		return metrics.OutcomeThrottled
	case errors.Is(err, guard.ErrQuarantined):
		return metrics.OutcomeQuarantined
	case errors.Is(err, aegis.ErrLimitExceeded):
		return metrics.OutcomeConcurrencyLimit
	case errors.Is(err, aegis.ErrUnavailable):
		return metrics.OutcomeUnavailable
	}
	return metrics.OutcomeError
}

// Drain refuses new invocations and waits for those in flight until ctx ends.
func (d *Dispatcher) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.draining = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("drain: in-flight invocations still running at the deadline")
	}
}
