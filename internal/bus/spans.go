package bus

import (
	"context"
	"errors"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/usage"
)

// invoke runs one delivery of an event to its trigger's function and, when
// Config.Spans is set, records it as a consumer span (deliverySpan). With
// Spans nil it is the dispatcher's Invoke and nothing more: no clock read,
// no id.
func (b *Bus) invoke(ctx context.Context, d desired, fn *registry.Function, req *sandbox.Request, publisher telemetry.Span) (*sandbox.Response, error) {
	if b.cfg.Spans == nil {
		return b.cfg.Dispatcher.Invoke(ctx, fn, req)
	}
	start := time.Now()
	resp, err := b.cfg.Dispatcher.Invoke(ctx, fn, req)
	if r := deliverySpan(publisher, req.RequestID, d.app, d.function, req, start, time.Now(), err); r != nil {
		b.cfg.Spans.ExportSpan(r)
	}
	return resp, err
}

// publisherOf is the span that published the event req delivers, as far
// as req tells: its trace and the span its invocation's span names as
// parent.
func publisherOf(req *sandbox.Request) telemetry.Span {
	return telemetry.Span{TraceID: req.Trace.TraceID, SpanID: req.Trace.ParentID}
}

// deliverySpan is the consumer span of one delivery of an event to a
// trigger: a child of publisher (the span of the invocation that
// published the event, carried in its envelope), with an id of its own.
// The invocation the delivery runs is a sibling of it, a child of the
// publisher too, so the tree `aegis trace` builds from the platform's own
// records does not depend on whether spans are exported. A publisher
// without a trace falls back to requestID when it is shaped like a trace
// id (a root span in that trace); else there is no span (nil).
//
// Attributes: app and function of the trigger, its kind ("event" or
// "object"), the topic or the object key and operation, the attempt.
// Error is the delivery's outcome in a few words, never the error's text.
func deliverySpan(publisher telemetry.Span, requestID, app, function string, req *sandbox.Request, start, end time.Time, err error) *telemetry.SpanRecord {
	var span telemetry.Span
	switch {
	case telemetry.IsID(publisher.TraceID) && telemetry.IsSpanID(publisher.SpanID):
		span = publisher.Child()
	case telemetry.IsID(publisher.TraceID):
		span = telemetry.Span{TraceID: publisher.TraceID, SpanID: telemetry.NewSpanID()}
	case telemetry.IsID(requestID):
		span = telemetry.Span{TraceID: requestID, SpanID: telemetry.NewSpanID()}
	default:
		return nil
	}
	r := &telemetry.SpanRecord{Span: span, Kind: telemetry.KindConsumer, Start: start, End: end, Error: deliveryError(err)}
	r.Attrs = []telemetry.Attr{
		telemetry.String(telemetry.AttrApp, app),
		telemetry.String(telemetry.AttrFunction, function),
		telemetry.String(telemetry.AttrTrigger, string(req.Kind)),
		telemetry.Int(telemetry.AttrAttempt, int64(req.Attempt)),
	}
	if req.Kind == sandbox.KindObject {
		r.Name = "deliver object " + req.Operation
		r.Attrs = append(r.Attrs, telemetry.String(telemetry.AttrResource, req.Key))
	} else {
		r.Name = "deliver " + req.Topic
		r.Attrs = append(r.Attrs, telemetry.String(telemetry.AttrTopic, req.Topic))
	}
	return r
}

// deliveryError names a failed delivery's outcome.
func deliveryError(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, usage.ErrBudgetExhausted):
		return "budget exhausted"
	case errors.Is(err, dispatch.ErrDraining):
		return "server draining"
	case errors.Is(err, sandbox.ErrTimeout):
		return "timeout"
	case errors.Is(err, sandbox.ErrMemory):
		return "memory limit"
	case errors.Is(err, sandbox.ErrTrap):
		return "function failed"
	case errors.Is(err, aegis.ErrLimitExceeded):
		return "limit exceeded"
	case errors.Is(err, aegis.ErrUnavailable):
		return "unavailable"
	default:
		return "failed"
	}
}
