// Package otlptest is a stand-in OTLP/HTTP collector on loopback for the
// tests of span export: a real HTTP server on 127.0.0.1 that takes POST
// /v1/traces (protobuf, gzip or not), decodes the ExportTraceServiceRequest
// and keeps its spans for a test to wait for. It can also stall, to play a
// collector that has stopped answering.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, ids as lower-case hex.
type Span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Start, End                time.Time
	// StatusError is true for status code Error; StatusMessage is its
	// description.
	StatusError   bool
	StatusMessage string
	// Attrs holds string attributes as string and integer ones as int64.
	Attrs map[string]any
	// Resource holds the resource's string attributes (service.name, …).
	Resource map[string]string
	// Headers are the request's headers the span came in.
	Headers http.Header
}

// Receiver is the stand-in collector.
type Receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	requests int
	gzipped  int
	changed  chan struct{} // closed and replaced whenever spans arrive

	stallMu sync.Mutex
	stall   chan struct{} // non-nil while stalled: requests wait for it to close
}

// Start starts a receiver on 127.0.0.1; the test's cleanup stops it.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.Resume()
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

// URL is the receiver's base endpoint ("http://127.0.0.1:PORT"), what
// OTEL_EXPORTER_OTLP_ENDPOINT takes.
func (r *Receiver) URL() string { return r.srv.URL }

// TracesURL is the full traces endpoint (URL + "/v1/traces").
func (r *Receiver) TracesURL() string { return r.srv.URL + "/v1/traces" }

// Stall makes every request wait, unanswered, until Resume: a collector
// that has stopped answering.
func (r *Receiver) Stall() {
	r.stallMu.Lock()
	defer r.stallMu.Unlock()
	if r.stall == nil {
		r.stall = make(chan struct{})
	}
}

// Resume answers the stalled requests and those after.
func (r *Receiver) Resume() {
	r.stallMu.Lock()
	defer r.stallMu.Unlock()
	if r.stall != nil {
		close(r.stall)
		r.stall = nil
	}
}

// Requests is how many export requests were decoded, and how many of them
// came gzip-compressed.
func (r *Receiver) Requests() (n, gzipped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.gzipped
}

// Spans returns every span received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Trace returns the spans received so far of one trace.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// WaitFor waits up to timeout for spans matching ok, until n of them
// arrived, and returns all those that match. It fails the test when
// fewer arrive.
func (r *Receiver) WaitFor(t testing.TB, n int, timeout time.Duration, ok func(Span) bool) []Span {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		var got []Span
		for _, s := range r.spans {
			if ok(s) {
				got = append(got, s)
			}
		}
		changed := r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("otlptest: %d matching spans after %v, want %d; all received: %s", len(got), timeout, n, r.describe())
			return nil
		}
	}
}

// WaitTrace waits for at least n spans of traceID.
func (r *Receiver) WaitTrace(t testing.TB, traceID string, n int, timeout time.Duration) []Span {
	t.Helper()
	return r.WaitFor(t, n, timeout, func(s Span) bool { return s.TraceID == traceID })
}

func (r *Receiver) describe() string {
	var b bytes.Buffer
	for _, s := range r.Spans() {
		b.WriteString("\n  " + s.TraceID + "/" + s.SpanID + " parent " + s.ParentID + " " + s.Name)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// maxBody bounds what one export request may send.
const maxBody = 32 << 20

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.stallMu.Lock()
	stall := r.stall
	r.stallMu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-req.Context().Done():
			return
		}
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxBody)
	zipped := req.Header.Get("Content-Encoding") == "gzip"
	if zipped {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxBody)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, "decode: "+err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			if v, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_StringValue); ok {
				res[kv.GetKey()] = v.StringValue
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, convert(s, res, req.Header.Clone()))
			}
		}
	}
	r.mu.Lock()
	r.requests++
	if zipped {
		r.gzipped++
	}
	r.spans = append(r.spans, got...)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()

	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func convert(s *tracepb.Span, res map[string]string, h http.Header) Span {
	sp := Span{
		TraceID:  hex.EncodeToString(s.GetTraceId()),
		SpanID:   hex.EncodeToString(s.GetSpanId()),
		ParentID: hex.EncodeToString(s.GetParentSpanId()),
		Name:     s.GetName(),
		Kind:     s.GetKind(),
		Start:    time.Unix(0, int64(s.GetStartTimeUnixNano())),
		End:      time.Unix(0, int64(s.GetEndTimeUnixNano())),
		Attrs:    map[string]any{},
		Resource: res,
		Headers:  h,
	}
	if st := s.GetStatus(); st != nil {
		sp.StatusError = st.GetCode() == tracepb.Status_STATUS_CODE_ERROR
		sp.StatusMessage = st.GetMessage()
	}
	for _, kv := range s.GetAttributes() {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			sp.Attrs[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			sp.Attrs[kv.GetKey()] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			sp.Attrs[kv.GetKey()] = v.BoolValue
		case *commonpb.AnyValue_DoubleValue:
			sp.Attrs[kv.GetKey()] = v.DoubleValue
		}
	}
	return sp
}
