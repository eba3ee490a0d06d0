package dispatch

import (
	"time"

	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// startSpan gives the invocation its span: a trace when its trigger did
// not start one (under the request id when that has a trace id's shape),
// and a span id of its own, which the invocation record, every line the
// function logs and everything it publishes or invokes carry.
func startSpan(req *sandbox.Request) {
	if !telemetry.Tracing {
		return
	}
	if req.Trace.TraceID == "" {
		if telemetry.IsID(req.RequestID) {
			req.Trace.TraceID = req.RequestID
		} else {
			req.Trace.TraceID = telemetry.NewID()
		}
	}
	if req.Trace.SpanID == "" {
		req.Trace.SpanID = telemetry.NewSpanID()
	}
}

// Trigger names what caused an invocation in its record and its trace:
// the request's kind ("http", "event", "object", "schedule"), or
// "invoke" for a call from another function, which reaches the callee as
// an HTTP request.
func Trigger(req *sandbox.Request) string {
	if req.Identity != nil && req.Identity.Scheme == sandbox.SchemeFunction {
		return TriggerInvoke
	}
	return req.Kind
}

// TriggerInvoke is the trigger of an invocation another function called.
const TriggerInvoke = "invoke"

// exportSpan hands the invocation's span to the exporter.
func (d *Dispatcher) exportSpan(fn *registry.Function, req *sandbox.Request, rec *funclog.Record, start, end time.Time) {
	s := &telemetry.SpanRecord{Span: req.Trace, Name: "invoke " + fn.App + "/" + fn.Spec.Name, Kind: telemetry.KindInternal,
		Start: start, End: end, Attrs: []telemetry.Attr{
			telemetry.String(telemetry.AttrApp, fn.App), telemetry.String(telemetry.AttrFunction, fn.Spec.Name),
			telemetry.String(telemetry.AttrVersion, fn.Version), telemetry.String(telemetry.AttrTrigger, rec.Trigger),
		}}
	if req.Kind == sandbox.KindEvent || req.Kind == sandbox.KindObject {
		s.Kind = telemetry.KindConsumer
		s.Attrs = append(s.Attrs, telemetry.Int(telemetry.AttrAttempt, int64(req.Attempt)))
	}
	if rec.Status != 0 {
		s.Attrs = append(s.Attrs, telemetry.Int(telemetry.AttrStatus, int64(rec.Status)))
	}
	s.Error = rec.Reason
	d.spans.ExportSpan(s)
}
