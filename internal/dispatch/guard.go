package dispatch

import (
	"time"

	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// gib is the memory a GB-second counts: the GiB usage charges by.
const gib = 1 << 30

// guarded refuses an invocation of a function the guard quarantined
// (every trigger: its routes answer 503, its events wait, its schedules
// skip) or throttled beyond its rate on this server. Two atomic loads
// while the guard holds no block of a function, the usual state.
func (d *Dispatcher) guarded(fn *registry.Function, req *sandbox.Request) error {
	var err error
	switch {
	case d.guard.Quarantined(fn.App, fn.Spec.Name):
		err = guard.ErrQuarantined
	case d.guard.Throttled(fn.App, fn.Spec.Name):
		err = guard.ErrThrottled
	default:
		return nil
	}
	// The refusal is a node of the trace, as a budget's is; no platform
	// log line per refusal: the guard logged the block once.
	if d.logs != nil {
		d.logs.Write(&funclog.Record{Level: "warn", Msg: "invocation refused", App: fn.App, Function: fn.Spec.Name,
			Version: fn.Version, RequestID: req.RequestID, Trigger: Trigger(req), Reason: FailureReason(err),
			TraceID: req.Trace.TraceID, SpanID: req.Trace.SpanID, ParentID: req.Trace.ParentID, Attempt: req.Attempt})
	}
	d.log.Debug("invocation refused by the guard", logkey.RequestID, req.RequestID, logkey.App, fn.App,
		logkey.Function, fn.Spec.Name, logkey.Reason, FailureReason(err))
	return err
}

// observe tells the guard of one invocation that ran: its GB-seconds (the
// spend rate), and a timeout or a trap.
func (d *Dispatcher) observe(fn *registry.Function, req *sandbox.Request, err error, mem int64, wall time.Duration) {
	if d.guard == nil {
		return
	}
	if d.guard.Wants(guard.Invocation) {
		d.guard.Observe(guard.Event{Signal: guard.Invocation, App: fn.App, Function: fn.Spec.Name,
			Value: float64(mem) / gib * wall.Seconds()})
	}
	if err == nil {
		return
	}
	var sig guard.Signal
	switch Outcome(err) {
	case metrics.OutcomeTimeout:
		sig = guard.Timeout
	case metrics.OutcomeTrap, metrics.OutcomeMemoryLimit:
		sig = guard.Trap
	default:
		return
	}
	e := guard.Event{Signal: sig, App: fn.App, Function: fn.Spec.Name}
	if req.Identity != nil {
		e.Key = req.Identity.KeyID
	}
	d.guard.Observe(e)
}
