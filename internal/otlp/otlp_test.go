package otlp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/testkit/otlptest"
)

func TestSpansReachTheCollectorWithTheirIDs(t *testing.T) {
	recv := otlptest.Start(t)
	e, err := New(context.Background(), Config{Endpoint: recv.TracesURL(), ServiceVersion: "v9.9.9", Gzip: true,
		Headers: map[string]string{"Authorization": "Bearer tok"}, BatchTimeout: 20 * time.Millisecond})
	if err != nil || e == nil {
		t.Fatalf("New = %v, %v", e, err)
	}
	defer e.Shutdown(context.Background())

	start := time.Unix(1_700_000_000, 123_456_789)
	root := telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()}
	child := root.Child()
	e.ExportSpan(&telemetry.SpanRecord{Span: root, Name: "POST /entries", Kind: telemetry.KindServer,
		Start: start, End: start.Add(30 * time.Millisecond), Attrs: []telemetry.Attr{telemetry.Int("http.status", 200)}})
	e.ExportSpan(&telemetry.SpanRecord{Span: child, Name: "kv.get", Kind: telemetry.KindClient,
		Start: start.Add(time.Millisecond), End: start.Add(2 * time.Millisecond), Error: "no kv grant",
		Attrs: []telemetry.Attr{telemetry.String("aegis.app", "diary"), telemetry.String("aegis.resource", "entries/k1")}})

	got := recv.WaitTrace(t, root.TraceID, 2, 10*time.Second)
	by := map[string]otlptest.Span{}
	for _, s := range got {
		by[s.SpanID] = s
	}
	r, ok := by[root.SpanID]
	if !ok {
		t.Fatalf("root span %s not received: %+v", root.SpanID, got)
	}
	if r.ParentID != "" || r.Name != "POST /entries" || r.Kind != tracepb.Span_SPAN_KIND_SERVER ||
		!r.Start.Equal(start) || !r.End.Equal(start.Add(30*time.Millisecond)) || r.StatusError ||
		r.Attrs["http.status"] != int64(200) {
		t.Errorf("root span = %+v", r)
	}
	if r.Resource["service.name"] != "aegis" || r.Resource["service.version"] != "v9.9.9" {
		t.Errorf("resource = %v", r.Resource)
	}
	if r.Headers.Get("Authorization") != "Bearer tok" {
		t.Errorf("configured header not sent: %v", r.Headers)
	}
	c, ok := by[child.SpanID]
	if !ok {
		t.Fatalf("child span %s not received: %+v", child.SpanID, got)
	}
	if c.ParentID != root.SpanID || c.Name != "kv.get" || c.Kind != tracepb.Span_SPAN_KIND_CLIENT ||
		!c.Start.Equal(start.Add(time.Millisecond)) || !c.End.Equal(start.Add(2*time.Millisecond)) ||
		!c.StatusError || c.StatusMessage != "no kv grant" ||
		c.Attrs["aegis.app"] != "diary" || c.Attrs["aegis.resource"] != "entries/k1" {
		t.Errorf("child span = %+v", c)
	}
	if n, gz := recv.Requests(); n == 0 || gz != n {
		t.Errorf("%d requests, %d gzipped; want all gzipped (Gzip set)", n, gz)
	}
	if e.Dropped() != 0 {
		t.Errorf("Dropped = %d", e.Dropped())
	}
}

func TestShutdownFlushes(t *testing.T) {
	recv := otlptest.Start(t)
	// A batch timeout far beyond the test: only Shutdown sends.
	e, err := New(context.Background(), Config{Endpoint: recv.TracesURL(), BatchTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s := telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()}
	now := time.Now()
	e.ExportSpan(&telemetry.SpanRecord{Span: s, Name: "publish entry.saved", Kind: telemetry.KindProducer, Start: now, End: now})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := recv.Trace(s.TraceID); len(got) != 1 || got[0].Kind != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Fatalf("after Shutdown the collector has %+v", got)
	}
	e.ExportSpan(&telemetry.SpanRecord{Span: s, Name: "late"}) // after Shutdown: no panic, no send
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestOffWithoutEndpoint(t *testing.T) {
	e, err := New(context.Background(), Config{})
	if e != nil || err != nil {
		t.Fatalf("New(Config{}) = %v, %v; want nil, nil", e, err)
	}
	// A nil exporter's methods are no-ops.
	e.ExportSpan(&telemetry.SpanRecord{Span: telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()}})
	if e.Dropped() != 0 || e.Shutdown(context.Background()) != nil {
		t.Fatal("nil exporter did something")
	}
	var sink telemetry.SpanSink = e
	_ = sink
}

func TestEndpointScheme(t *testing.T) {
	for _, bad := range []string{"collector:4318", "ftp://collector/v1/traces", "http://", "://x"} {
		if e, err := New(context.Background(), Config{Endpoint: bad}); err == nil {
			_ = e.Shutdown(context.Background())
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

// TestSlowCollectorNeverBlocks: a collector that stops answering fills the
// queue; ExportSpan keeps returning at once and counts what it drops.
func TestSlowCollectorNeverBlocks(t *testing.T) {
	recv := otlptest.Start(t)
	recv.Stall()
	e, err := New(context.Background(), Config{Endpoint: recv.TracesURL(), QueueSize: 8, BatchTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	const n = 10_000
	go func() {
		defer close(done)
		now := time.Now()
		for range n {
			e.ExportSpan(&telemetry.SpanRecord{Span: telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()},
				Name: "kv.get", Start: now, End: now})
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("ExportSpan blocked behind a stalled collector")
	}
	// Only the queues (the exporter's and the batch processor's, of 8
	// each) and what the SDK has in flight hold spans; most of the rest
	// were dropped and counted.
	if d := e.Dropped(); d < n/2 || d > n {
		t.Errorf("Dropped = %d of %d", d, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = e.Shutdown(ctx) // bounded by ctx even with the collector stalled
}

// TestDeadEndpointNeverBlocks: nobody listens at the endpoint at all.
func TestDeadEndpointNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e, err := New(context.Background(), Config{Endpoint: "http://" + addr + "/v1/traces", QueueSize: 4, BatchTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			e.ExportSpan(&telemetry.SpanRecord{Span: telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()}, Name: "x"})
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("ExportSpan blocked behind a dead endpoint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = e.Shutdown(ctx)
}

// A ratio exports about that share of traces, every span of a trace or
// none, and never a trace below it it did not export at a higher ratio.
func TestSampled(t *testing.T) {
	kept := map[float64]int{}
	for range 4000 {
		id := telemetry.NewID()
		prev := true
		for _, r := range []float64{1, 0.5, 0.1, 0.01} {
			s := sampled(id, r)
			if s != sampled(id, r) {
				t.Fatal("not the same decision twice")
			}
			if s && !prev {
				t.Fatalf("trace %s kept at %v but not at a higher ratio", id, r)
			}
			prev = s
			if s {
				kept[r]++
			}
		}
	}
	if kept[1] != 4000 || kept[0.5] < 1800 || kept[0.5] > 2200 || kept[0.1] < 320 || kept[0.1] > 480 || kept[0.01] > 80 {
		t.Errorf("kept per ratio %v of 4000", kept)
	}
	if !sampled("not-an-id", 0) || sampled("not-an-id", 0.5) {
		t.Error("a malformed id: kept when everything is, else dropped")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c := ConfigFromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20abc, x-tenant = t1,broken",
		"OTEL_SERVICE_NAME":           "edge",
	}))
	if c.Endpoint != "http://collector:4318/v1/traces" || c.ServiceName != "edge" ||
		c.Headers["Authorization"] != "Bearer abc" || c.Headers["x-tenant"] != "t1" || len(c.Headers) != 2 {
		t.Errorf("ConfigFromEnv = %+v", c)
	}
	c = ConfigFromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://ignored:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/custom/path",
	}))
	if c.Endpoint != "https://collector/custom/path" {
		t.Errorf("the traces endpoint is used as it is: got %q", c.Endpoint)
	}
	c = ConfigFromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
		"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}))
	if !c.Gzip || c.SampleRatio != 0.25 {
		t.Errorf("compression and sampler from the environment: %+v", c)
	}
	if c := ConfigFromEnv(env(map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"})); c.SampleRatio != 0 || c.Gzip {
		t.Errorf("a ratio above 1 is ignored, compression off by default: %+v", c)
	}
	if c := ConfigFromEnv(env(nil)); c.Endpoint != "" {
		t.Errorf("nothing set gives %+v", c)
	}
	if c := ConfigFromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})); c.Endpoint != "" {
		t.Errorf("OTEL_SDK_DISABLED=true gives %+v", c)
	}
	for in, want := range map[string]string{
		"http://c:4318":              "http://c:4318/v1/traces",
		"http://c:4318/":             "http://c:4318/v1/traces",
		"https://c/otlp":             "https://c/otlp/v1/traces",
		"https://c/otlp/v1/traces":   "https://c/otlp/v1/traces",
		"c:4318":                     "c:4318",
		"http://u:p@c:4318?token=x#": "http://u:p@c:4318/v1/traces?token=x",
	} {
		if got := TracesURL(in); got != want {
			t.Errorf("TracesURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (Config{Endpoint: "https://u:secret@c/v1/traces?token=secret"}).RedactedEndpoint(); strings.Contains(got, "secret") {
		t.Errorf("RedactedEndpoint = %q", got)
	}
}
