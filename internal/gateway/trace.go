package gateway

import (
	"net/http"
	"time"

	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// requestTrace returns a request's id and the span of the invocation it
// causes. A valid W3C traceparent is continued: its trace id is the
// trace's and its span the invocation's parent. Without one, a request
// id of a trace id's shape (the one Aegis mints, or a client's) names the
// trace, so the id in an error body is the id to look up; anything else
// starts a new trace. A malformed traceparent is ignored, never half-read.
func requestTrace(r *http.Request) (reqID string, span telemetry.Span) {
	reqID = r.Header.Get("X-Request-Id")
	if !telemetry.ValidRequestID(reqID) {
		reqID = ""
	}
	span = telemetry.TraceOf(r.Header.Get("Traceparent"), reqID)
	if reqID == "" {
		reqID = span.TraceID
	}
	if reqID == "" { // not traced (telemetry.Tracing)
		reqID = telemetry.NewRequestID()
	}
	return reqID, span
}

// gatewaySpan starts the gateway's own span when spans are exported:
// the invocation becomes its child. Without an exporter it costs nothing
// and the invocation's parent is the caller's span.
func (g *Gateway) gatewaySpan(span *telemetry.Span) (telemetry.Span, time.Time) {
	if g.cfg.Spans == nil {
		return telemetry.Span{}, time.Time{}
	}
	gw := telemetry.Span{TraceID: span.TraceID, SpanID: telemetry.NewSpanID(), ParentID: span.ParentID}
	span.ParentID = gw.SpanID
	return gw, time.Now()
}

// endSpan exports the gateway's span of a served request.
func (g *Gateway) endSpan(gw telemetry.Span, start time.Time, r *http.Request, rt *route.Route, sw *statusWriter) {
	if g.cfg.Spans == nil || gw.SpanID == "" {
		return
	}
	rec := &telemetry.SpanRecord{Span: gw, Kind: telemetry.KindServer, Start: start, End: time.Now(),
		Name:  r.Method + " " + r.URL.Path,
		Attrs: []telemetry.Attr{telemetry.String(telemetry.AttrMethod, r.Method)}}
	if rt != nil {
		// The route's pattern, not the path a client chose, names the span.
		rec.Name = rt.Method + " " + rt.Path
		rec.Attrs = append(rec.Attrs, telemetry.String("http.route", rt.Path),
			telemetry.String(telemetry.AttrApp, rt.App), telemetry.String(telemetry.AttrFunction, rt.Function))
	}
	if st := sw.Status(); st != 0 {
		rec.Attrs = append(rec.Attrs, telemetry.Int(telemetry.AttrStatus, int64(st)))
		if st >= 500 {
			rec.Error = http.StatusText(st)
		}
	}
	g.cfg.Spans.ExportSpan(rec)
}

// statusWriter remembers the status and the route of a request whose
// span is exported.
type statusWriter struct {
	*telemetry.StatusWriter
	route *route.Route
}
