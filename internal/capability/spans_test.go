package capability

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/manifest"
)

type spanRecorder struct {
	mu    sync.Mutex
	spans []*telemetry.SpanRecord
}

func (r *spanRecorder) ExportSpan(s *telemetry.SpanRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, s)
}

func attr(s *telemetry.SpanRecord, k string) (telemetry.Attr, bool) {
	for _, a := range s.Attrs {
		if a.Key == k {
			return a, true
		}
	}
	return telemetry.Attr{}, false
}

func TestTracedOffIsTheHost(t *testing.T) {
	hs := newHarness(t, nil)
	if got := hs.host.Traced(); got != sandbox.Host(hs.host) {
		t.Fatalf("Traced without Spans = %T, want the host itself", got)
	}
}

// TestHostCallSpans: every host call is one span, a child of the caller's
// invocation span, named by its capability, with names (never values) as
// attributes and the refusal's reason as its error.
func TestHostCallSpans(t *testing.T) {
	rec := &spanRecorder{}
	hs := newHarness(t, func(c *Config) { c.Spans = rec })
	host := hs.host.Traced()
	ctx := context.Background()
	c := caller(manifest.Grants{
		KV:     manifest.ReadWrite{Write: []string{"entries"}},
		Events: manifest.EventGrants{Publish: []string{"entry.*"}},
	})
	c.Trace = telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID(), ParentID: telemetry.NewSpanID()}

	if err := host.KVPut(ctx, c, "entries", "k1", []byte("secret-value")); err != nil {
		t.Fatal(err)
	}
	if _, err := host.KVGet(ctx, c, "secrets", "k2"); err == nil {
		t.Fatal("kv read of an ungranted table succeeded")
	}
	if _, err := host.KVGet(ctx, c, "entries", "missing"); err == nil {
		t.Fatal("missing key found")
	}
	if err := host.Publish(ctx, c, "entry.saved", []byte("secret-payload")); err != nil {
		t.Fatal(err)
	}
	host.Log(ctx, c, 0, "a line")

	want := []struct {
		name, resource, err string
		kind                telemetry.SpanKind
	}{
		{"kv.put", "entries/k1", "", telemetry.KindClient},
		{"kv.get", "secrets/k2", "no kv grant", telemetry.KindClient},
		{"kv.get", "entries/missing", "not found", telemetry.KindClient},
		{"events.publish", "entry.saved", "", telemetry.KindProducer},
	}
	if len(rec.spans) != len(want) {
		t.Fatalf("got %d spans, want %d: %+v", len(rec.spans), len(want), rec.spans)
	}
	ids := map[string]bool{c.Trace.SpanID: true}
	for i, w := range want {
		s := rec.spans[i]
		if s.Name != w.name || s.Kind != w.kind || s.Error != w.err {
			t.Errorf("span %d = %q kind %d error %q, want %q kind %d error %q", i, s.Name, s.Kind, s.Error, w.name, w.kind, w.err)
		}
		if s.TraceID != c.Trace.TraceID || s.ParentID != c.Trace.SpanID || !telemetry.IsSpanID(s.SpanID) || ids[s.SpanID] {
			t.Errorf("span %d ids %+v, want a new child of %+v", i, s.Span, c.Trace)
		}
		ids[s.SpanID] = true
		if s.Start.IsZero() || s.End.Before(s.Start) {
			t.Errorf("span %d times %v .. %v", i, s.Start, s.End)
		}
		for k, v := range map[string]string{telemetry.AttrApp: "diary", telemetry.AttrFunction: "save-entry",
			telemetry.AttrVersion: "v3", telemetry.AttrCapability: w.name, telemetry.AttrResource: w.resource} {
			if a, ok := attr(s, k); !ok || a.Str != v {
				t.Errorf("span %d attribute %s = %+v, want %q", i, k, a, v)
			}
		}
		for _, a := range s.Attrs {
			if strings.Contains(a.Str, "secret-") {
				t.Errorf("span %d carries a value: %+v", i, a)
			}
		}
	}
}

// TestHostCallSpanWithoutTrace: a caller without a span but with a
// trace-id-shaped request id gets a root span in that trace; one with
// neither gets none.
func TestHostCallSpanWithoutTrace(t *testing.T) {
	rec := &spanRecorder{}
	hs := newHarness(t, func(c *Config) { c.Spans = rec })
	host := hs.host.Traced()
	c := caller(manifest.Grants{KV: manifest.ReadWrite{Write: []string{"entries"}}})
	c.RequestID = telemetry.NewRequestID()
	_ = host.KVPut(context.Background(), c, "entries", "k", nil)
	c.RequestID = "not-a-trace-id"
	_ = host.KVPut(context.Background(), c, "entries", "k", nil)
	if len(rec.spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(rec.spans))
	}
	if s := rec.spans[0]; s.ParentID != "" || !telemetry.IsID(s.TraceID) || !telemetry.IsSpanID(s.SpanID) {
		t.Fatalf("span = %+v", s.Span)
	}
}

// TestFetchSpanNamesTheHostOnly: a fetch span names the host, never the
// path or query.
func TestFetchSpanNamesTheHostOnly(t *testing.T) {
	rec := &spanRecorder{}
	hs := newHarness(t, func(c *Config) { c.Spans = rec })
	c := caller(manifest.Grants{})
	c.Trace = telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()}
	_, err := hs.host.Traced().Fetch(context.Background(), c, &sandbox.FetchRequest{Method: "get", URL: "https://user:pw@api.example.com/v1/x?token=secret-token"})
	if err == nil {
		t.Fatal("fetch without an egress grant succeeded")
	}
	if len(rec.spans) != 1 {
		t.Fatalf("got %d spans", len(rec.spans))
	}
	s := rec.spans[0]
	if a, _ := attr(s, telemetry.AttrResource); a.Str != "api.example.com" || s.Name != "fetch" || s.Error == "" {
		t.Fatalf("fetch span = %+v", s)
	}
	for _, a := range s.Attrs {
		if strings.Contains(a.Str, "secret") || strings.Contains(a.Str, "pw") {
			t.Errorf("fetch span carries %+v", a)
		}
	}
	if strings.Contains(s.Error, "secret") {
		t.Errorf("fetch span error %q", s.Error)
	}
}
