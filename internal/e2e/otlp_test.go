package e2e

import (
	"context"
	"github.com/aegis-platform/aegis/client"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/aegis-platform/aegis/internal/otlp"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/testkit/otlptest"
)

// TestOTLPExport: a server exporting to a loopback collector sends a span
// for each host call of a request and for the delivery of the event it
// published, all in the trace of the request's id; a refusal carries its
// reason, no span carries a value, and the exporter's headers never reach
// the log.
func TestOTLPExport(t *testing.T) {
	recv := otlptest.Start(t)
	const token = "Bearer otlp-header-token-never-logged"
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.OTLP = otlp.Config{Endpoint: recv.TracesURL(), Headers: map[string]string{"Authorization": token},
			BatchTimeout: 50 * time.Millisecond}
	})
	defer in.close(t)
	if in.srv.Spans() == nil {
		t.Fatal("Server.Spans is nil with an endpoint configured")
	}
	deployProbe(t, in, "testdata/probe.yaml")
	k, err := in.admin.CreateKey(context.Background(), "otlp")
	if err != nil {
		t.Fatal(err)
	}

	// One request, three host calls: a write, a refused read, a publish
	// that a trigger (listener) takes.
	// Without a traceparent, a request id of a trace id's shape names the
	// trace.
	traceID := telemetry.NewRequestID()
	const value = "secret-value-of-the-entry"
	for _, c := range []struct {
		op   string
		body map[string]string
	}{
		{"kv-put", map[string]string{"table": "allowed", "key": "entry-1", "value": value}},
		{"kv-get", map[string]string{"table": "forbidden", "key": "entry-1"}},
		{"publish", map[string]string{"topic": "ok.topic", "value": `"` + value + `"`}},
	} {
		status, body, hdr := call(t, in.gateway, "POST", "/probe/"+c.op, k.Key, c.body, "X-Request-Id", traceID)
		if status != 200 || hdr.Get("X-Request-Id") != traceID {
			t.Fatalf("%s: %d %s (request id %q)", c.op, status, body, hdr.Get("X-Request-Id"))
		}
	}

	named := func(name string) func(otlptest.Span) bool {
		return func(s otlptest.Span) bool { return s.TraceID == traceID && s.Name == name }
	}
	put := recv.WaitFor(t, 2, 20*time.Second, named("kv.put")) // the probe's, and the listener's
	get := recv.WaitFor(t, 1, 20*time.Second, named("kv.get"))[0]
	pub := recv.WaitFor(t, 1, 20*time.Second, named("events.publish"))[0]
	del := recv.WaitFor(t, 1, 20*time.Second, named("deliver ok.topic"))[0]

	var probePut, listenerPut *otlptest.Span
	for i := range put {
		switch put[i].Attrs["aegis.function"] {
		case "probe":
			probePut = &put[i]
		case "listener":
			listenerPut = &put[i]
		}
	}
	if probePut == nil || listenerPut == nil {
		t.Fatalf("kv.put spans of probe and listener, got %+v", put)
	}
	check := func(s otlptest.Span, kind tracepb.Span_SpanKind, fn, resource, errReason string) {
		t.Helper()
		if s.Kind != kind || s.Attrs["aegis.app"] != "probe" || s.Attrs["aegis.function"] != fn ||
			(resource != "" && s.Attrs["aegis.resource"] != resource) {
			t.Errorf("span %s = kind %v attrs %v", s.Name, s.Kind, s.Attrs)
		}
		if s.StatusError != (errReason != "") || s.StatusMessage != errReason {
			t.Errorf("span %s status error=%v %q, want %q", s.Name, s.StatusError, s.StatusMessage, errReason)
		}
		if !telemetry.IsSpanID(s.SpanID) || s.Start.IsZero() || s.End.Before(s.Start) {
			t.Errorf("span %s ids/times %s %v..%v", s.Name, s.SpanID, s.Start, s.End)
		}
		if s.Resource["service.name"] != "aegis" {
			t.Errorf("span %s resource %v", s.Name, s.Resource)
		}
	}
	check(*probePut, tracepb.Span_SPAN_KIND_CLIENT, "probe", "allowed/entry-1", "")
	check(get, tracepb.Span_SPAN_KIND_CLIENT, "probe", "forbidden/entry-1", "no kv grant")
	check(pub, tracepb.Span_SPAN_KIND_PRODUCER, "probe", "ok.topic", "")
	check(del, tracepb.Span_SPAN_KIND_CONSUMER, "listener", "", "")
	check(*listenerPut, tracepb.Span_SPAN_KIND_CLIENT, "listener", "events/"+traceID, "")
	if del.Attrs["aegis.topic"] != "ok.topic" || del.Attrs["aegis.attempt"] != int64(1) {
		t.Errorf("delivery span attributes %v", del.Attrs)
	}
	if pub.Headers.Get("Authorization") != token {
		t.Errorf("the configured header did not reach the collector")
	}

	ids := map[string]bool{}
	for _, s := range recv.Trace(traceID) {
		if ids[s.SpanID] {
			t.Errorf("span id %s used twice", s.SpanID)
		}
		ids[s.SpanID] = true
		for k, v := range s.Attrs {
			if str, ok := v.(string); ok && strings.Contains(str, value) {
				t.Errorf("span %s attribute %s carries a value: %q", s.Name, k, str)
			}
		}
		if strings.Contains(s.StatusMessage, value) {
			t.Errorf("span %s status carries a value", s.Name)
		}
	}
	// A request with a traceparent: the gateway's span is the caller's
	// child, the invocation the gateway's, the host call the invocation's,
	// all in the caller's trace, and the invocation's span is the node
	// `aegis trace` shows: one trace id and one span id for both.
	const callerTrace, callerSpan = "5bf92f3577b34da6a3ce929d0e0e4736", "a0f067aa0ba902b7"
	if st, body, _ := call(t, in.gateway, "POST", "/probe/kv-put", k.Key, map[string]string{"table": "allowed", "key": "entry-2", "value": value},
		"Traceparent", "00-"+callerTrace+"-"+callerSpan+"-01"); st != 200 {
		t.Fatalf("traced kv-put: %d %s", st, body)
	}
	inTrace := func(name string) func(otlptest.Span) bool {
		return func(s otlptest.Span) bool { return s.TraceID == callerTrace && s.Name == name }
	}
	gw := recv.WaitFor(t, 1, 20*time.Second, inTrace("POST /probe/{op}"))[0]
	inv := recv.WaitFor(t, 1, 20*time.Second, inTrace("invoke probe/probe"))[0]
	hc := recv.WaitFor(t, 1, 20*time.Second, inTrace("kv.put"))[0]
	if gw.Kind != tracepb.Span_SPAN_KIND_SERVER || gw.ParentID != callerSpan || gw.Attrs["http.response.status_code"] != int64(200) {
		t.Errorf("gateway span %+v", gw)
	}
	if inv.ParentID != gw.SpanID || inv.Attrs["aegis.trigger"] != "http" || inv.StatusError {
		t.Errorf("invocation span %+v, want a child of the gateway's %s", inv, gw.SpanID)
	}
	if hc.ParentID != inv.SpanID {
		t.Errorf("kv.put span's parent %s, want the invocation's %s", hc.ParentID, inv.SpanID)
	}
	var node *client.TraceNode
	eventually(t, 10*time.Second, "aegis trace to show the traced request", func() bool {
		tr, err := in.admin.Trace(context.Background(), callerTrace)
		if err == nil && len(tr.Children) == 1 {
			node = tr.Children[0]
		}
		return node != nil
	})
	if node.SpanID != inv.SpanID || node.ParentID != gw.SpanID {
		t.Errorf("aegis trace node span %s parent %s; the exported invocation span %s parent %s", node.SpanID, node.ParentID, inv.SpanID, gw.SpanID)
	}

	if lines := in.logs.Messages("exporting spans over OTLP"); len(lines) != 1 {
		t.Errorf("want one log line naming the endpoint, got %d", len(lines))
	}
	if strings.Contains(in.logs.String(), "otlp-header-token") {
		t.Error("the exporter's header reached the log")
	}
}

// TestOTLPOffByDefault: without an endpoint the server exports nothing
// and says so by a nil Spans.
func TestOTLPOffByDefault(t *testing.T) {
	in, _ := sharedServer(t)
	if in.srv.Spans() != nil {
		t.Fatal("Server.Spans is set without an endpoint")
	}
}
