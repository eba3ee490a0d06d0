package capability

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// Traced returns the sandbox.Host the engine should call: h itself when
// Config.Spans is nil (no span, no clock read), else h behind a layer that
// records one span per host call (kv, objects, publish, fetch, invoke,
// secrets) and
// hands it to Spans. Log lines are not host calls and get no span.
//
// A host call's span is a child of the calling invocation's span
// (Caller.Trace): the same trace id, its parent the invocation's span id,
// an id of its own. Its name is the capability ("kv.get",
// "events.publish", "fetch", "invoke", "secrets.get"); its attributes the app, function,
// version, capability and resource (a table/key, object key, topic, host
// route path or secret name: names, never values, bodies or queries); a refused or
// failed call carries its reason ("no kv grant", "not found") as the
// span's error.
func (h *Host) Traced() sandbox.Host {
	if h.cfg.Spans == nil {
		return h
	}
	return &tracedHost{h: h, sink: h.cfg.Spans}
}

type tracedHost struct {
	h    *Host
	sink telemetry.SpanSink
}

var _ sandbox.Host = (*tracedHost)(nil)

// end records the span of one host call that started at start.
func (t *tracedHost) end(c *sandbox.Caller, name string, kind telemetry.SpanKind, resource string, start time.Time, err error, extra ...telemetry.Attr) {
	span, ok := hostCallSpan(c)
	if !ok {
		return
	}
	r := &telemetry.SpanRecord{Span: span, Name: name, Kind: kind, Start: start, End: time.Now(),
		Error: spanError(err)}
	r.Attrs = make([]telemetry.Attr, 0, 5+len(extra))
	r.Attrs = append(r.Attrs,
		telemetry.String(telemetry.AttrApp, c.App),
		telemetry.String(telemetry.AttrFunction, c.Function),
		telemetry.String(telemetry.AttrVersion, c.Version),
		telemetry.String(telemetry.AttrCapability, name),
		telemetry.String(telemetry.AttrResource, resource))
	r.Attrs = append(r.Attrs, extra...)
	t.sink.ExportSpan(r)
}

// hostCallSpan is the span of a host call made by c: a child of the
// invocation's span. A caller without a span (a tool, a test) that has a
// request id shaped like a trace id gets a root span in that trace; any
// other caller gets none.
func hostCallSpan(c *sandbox.Caller) (telemetry.Span, bool) {
	if c == nil {
		return telemetry.Span{}, false
	}
	if telemetry.IsID(c.Trace.TraceID) && telemetry.IsSpanID(c.Trace.SpanID) {
		return c.Trace.Child(), true
	}
	if telemetry.IsID(c.RequestID) {
		return telemetry.Span{TraceID: c.RequestID, SpanID: telemetry.NewSpanID()}, true
	}
	return telemetry.Span{}, false
}

// spanError is what a span says of a host call's failure: the refusal's
// reason for a denial, else the client-safe name of its kind (httperr),
// never the error's text, which may carry a key or a URL.
func spanError(err error) string {
	if err == nil {
		return ""
	}
	var d *deniedError
	if errors.As(err, &d) && d.reason != "" {
		return d.reason
	}
	return httperr.Of(err).Message
}

func (t *tracedHost) KVGet(ctx context.Context, c *sandbox.Caller, table, key string) ([]byte, error) {
	start := time.Now()
	v, err := t.h.KVGet(ctx, c, table, key)
	t.end(c, "kv.get", telemetry.KindClient, table+"/"+key, start, err)
	return v, err
}

func (t *tracedHost) KVPut(ctx context.Context, c *sandbox.Caller, table, key string, value []byte) error {
	start := time.Now()
	err := t.h.KVPut(ctx, c, table, key, value)
	t.end(c, "kv.put", telemetry.KindClient, table+"/"+key, start, err)
	return err
}

func (t *tracedHost) KVDelete(ctx context.Context, c *sandbox.Caller, table, key string) error {
	start := time.Now()
	err := t.h.KVDelete(ctx, c, table, key)
	t.end(c, "kv.delete", telemetry.KindClient, table+"/"+key, start, err)
	return err
}

func (t *tracedHost) KVList(ctx context.Context, c *sandbox.Caller, table, prefix string) ([]string, error) {
	start := time.Now()
	keys, err := t.h.KVList(ctx, c, table, prefix)
	t.end(c, "kv.list", telemetry.KindClient, table+"/"+prefix+"*", start, err)
	return keys, err
}

func (t *tracedHost) ObjectGet(ctx context.Context, c *sandbox.Caller, key string) ([]byte, error) {
	start := time.Now()
	v, err := t.h.ObjectGet(ctx, c, key)
	t.end(c, "objects.get", telemetry.KindClient, key, start, err)
	return v, err
}

func (t *tracedHost) ObjectPut(ctx context.Context, c *sandbox.Caller, key string, data []byte) error {
	start := time.Now()
	err := t.h.ObjectPut(ctx, c, key, data)
	t.end(c, "objects.put", telemetry.KindClient, key, start, err)
	return err
}

func (t *tracedHost) ObjectDelete(ctx context.Context, c *sandbox.Caller, key string) error {
	start := time.Now()
	err := t.h.ObjectDelete(ctx, c, key)
	t.end(c, "objects.delete", telemetry.KindClient, key, start, err)
	return err
}

func (t *tracedHost) ObjectList(ctx context.Context, c *sandbox.Caller, prefix string) ([]string, error) {
	start := time.Now()
	keys, err := t.h.ObjectList(ctx, c, prefix)
	t.end(c, "objects.list", telemetry.KindClient, prefix+"*", start, err)
	return keys, err
}

func (t *tracedHost) Publish(ctx context.Context, c *sandbox.Caller, topic string, data []byte) error {
	start := time.Now()
	err := t.h.Publish(ctx, c, topic, data)
	t.end(c, "events.publish", telemetry.KindProducer, topic, start, err, telemetry.String(telemetry.AttrTopic, topic))
	return err
}

func (t *tracedHost) Fetch(ctx context.Context, c *sandbox.Caller, req *sandbox.FetchRequest) (*sandbox.FetchResponse, error) {
	start := time.Now()
	resp, err := t.h.Fetch(ctx, c, req)
	var host, method string
	if req != nil {
		// The host only: a URL's path and query may carry data.
		if u, perr := url.Parse(req.URL); perr == nil {
			host = u.Hostname()
		}
		method = strings.ToUpper(req.Method)
	}
	extra := []telemetry.Attr{telemetry.String(telemetry.AttrMethod, method)}
	if resp != nil {
		extra = append(extra, telemetry.Int(telemetry.AttrStatus, int64(resp.Status)))
	}
	t.end(c, "fetch", telemetry.KindClient, host, start, err, extra...)
	return resp, err
}

func (t *tracedHost) Invoke(ctx context.Context, c *sandbox.Caller, req *sandbox.InvokeRequest) (*sandbox.InvokeResponse, error) {
	start := time.Now()
	resp, err := t.h.Invoke(ctx, c, req)
	var target, method string
	if req != nil {
		// The path without its query.
		target, _, _ = strings.Cut(req.Path, "?")
		method = strings.ToUpper(req.Method)
	}
	extra := []telemetry.Attr{telemetry.String(telemetry.AttrMethod, method)}
	if resp != nil {
		extra = append(extra, telemetry.Int(telemetry.AttrStatus, int64(resp.Status)))
	}
	t.end(c, "invoke", telemetry.KindClient, method+" "+target, start, err, extra...)
	return resp, err
}

// Secret's span names the secret, never its value.
func (t *tracedHost) Secret(ctx context.Context, c *sandbox.Caller, name string) ([]byte, error) {
	start := time.Now()
	v, err := t.h.Secret(ctx, c, name)
	t.end(c, "secrets.get", telemetry.KindInternal, name, start, err)
	return v, err
}

// Log is not a host call with a span: a guest's log line goes to the
// function log as it is.
func (t *tracedHost) Log(ctx context.Context, c *sandbox.Caller, level slog.Level, msg string) {
	t.h.Log(ctx, c, level, msg)
}
