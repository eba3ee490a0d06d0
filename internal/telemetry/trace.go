package telemetry

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Span is an invocation's place in its trace, in the W3C Trace Context
// shapes: TraceID is 32 lower-case hex characters, SpanID and ParentID 16.
// ParentID is empty for a root. The gateway starts a trace (or continues
// the caller's traceparent), dispatch gives every invocation its own
// SpanID, and whatever the invocation publishes or invokes is a child of it.
type Span struct {
	TraceID  string
	SpanID   string
	ParentID string
}

// Child returns a new span of the same trace whose parent is s.
func (s Span) Child() Span {
	return Span{TraceID: s.TraceID, SpanID: NewSpanID(), ParentID: s.SpanID}
}

// Traceparent is s as a W3C traceparent header value (version 00,
// sampled), the form in which a span travels in event envelopes and to
// OTLP collectors. An s without a trace id gives "".
func (s Span) Traceparent() string {
	if !IsID(s.TraceID) || !isSpanID(s.SpanID) {
		return ""
	}
	return "00-" + s.TraceID + "-" + s.SpanID + "-01"
}

// ParseTraceparent reads a W3C traceparent header value (version 00, or a
// later version's first four fields as the specification asks) and
// returns it as the parent of a new span: TraceID its trace id, ParentID
// its span id, SpanID empty. ok is false for anything malformed, including
// the all-zero ids the specification forbids and version ff; the caller
// then starts a new trace, never one half-read from a client.
func ParseTraceparent(v string) (parent Span, ok bool) {
	// 00-<32 hex>-<16 hex>-<2 hex>: 55 characters; later versions may
	// append "-…" fields after the flags.
	if len(v) < 55 || (len(v) > 55 && (v[0:2] == "00" || v[55] != '-')) || len(v) > 512 {
		return Span{}, false
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return Span{}, false
	}
	ver, trace, span, flags := v[0:2], v[3:35], v[36:52], v[53:55]
	if !isHex(ver) || ver == "ff" || !isHex(flags) || !IsID(trace) || !isSpanID(span) {
		return Span{}, false
	}
	if trace == zeroTrace || span == zeroSpan {
		return Span{}, false
	}
	return Span{TraceID: trace, ParentID: span}, true
}

const (
	zeroTrace = "00000000000000000000000000000000"
	zeroSpan  = "0000000000000000"
)

// HeaderTraceID is the response header naming the trace a request belongs
// to (gateway and admin invoke): the id `aegis trace` and `aegis logs
// --trace` take.
const HeaderTraceID = "X-Aegis-Trace-Id"

// TraceOf is the span of an invocation a request from outside causes: a
// child of the traceparent when it is valid; otherwise a new trace, named
// by requestID when that has a trace id's shape (so the request id in an
// error body is the id to look up), else by a new id. A malformed
// traceparent is ignored, never half-read. SpanID is left to dispatch.
func TraceOf(traceparent, requestID string) Span {
	if !Tracing {
		return Span{}
	}
	if traceparent != "" {
		if parent, ok := ParseTraceparent(traceparent); ok {
			return parent
		}
	}
	if IsID(requestID) {
		return Span{TraceID: requestID}
	}
	return Span{TraceID: NewID()}
}

// NewSpanID returns 8 random bytes as 16 lower-case hex characters, never
// all zero.
func NewSpanID() string {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if b != [8]byte{} {
			return hex.EncodeToString(b[:])
		}
	}
}

// IsSpanID reports whether s has the shape of a span id.
func IsSpanID(s string) bool { return isSpanID(s) }

func isSpanID(s string) bool { return len(s) == 16 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SpanRecord is a finished span as the OpenTelemetry exporter receives it:
// the gateway's request, an invocation, a host call, a bus publish or
// delivery. Attribute values are names and numbers the platform chose
// (app, function, capability, topic, status), never request or secret data.
type SpanRecord struct {
	Span
	Name  string // "POST /entries", "invoke diary/save-entry", "kv.get", "publish entry.saved"
	Kind  SpanKind
	Start time.Time
	End   time.Time
	// Error is empty when the span succeeded, else a short reason
	// ("timeout", "no kv grant"), never a payload.
	Error string
	Attrs []Attr
}

// SpanKind is the OpenTelemetry span kind.
type SpanKind uint8

// The span kinds Aegis records.
const (
	KindInternal SpanKind = iota
	KindServer            // the gateway's request
	KindClient            // a host call leaving the sandbox (fetch, kv, objects)
	KindProducer          // a publish
	KindConsumer          // an event delivered to a trigger
)

// Attr is one span attribute: a string or an integer.
type Attr struct {
	Key   string
	Str   string
	Int   int64
	IsInt bool
}

// String is a string attribute.
func String(k, v string) Attr { return Attr{Key: k, Str: v} }

// Int is an integer attribute.
func Int(k string, v int64) Attr { return Attr{Key: k, Int: v, IsInt: true} }

// SpanSink receives finished spans. Implementations never block the
// caller (the OpenTelemetry exporter queues and drops when full). A nil
// SpanSink in a Config means spans are not exported; Aegis still records
// every invocation's span in its own log for `aegis trace`.
type SpanSink interface {
	ExportSpan(*SpanRecord)
}
