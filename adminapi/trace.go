package adminapi

import "time"

// Trace is the answer of GET /v1/traces/{id}: one trace's invocations as
// a causal tree. The trace itself is the top of the tree: Children are
// the invocations whose cause was outside Aegis (the request that came in
// with the traceparent, or a schedule), each with the invocations it
// caused below it. Duration is from the first invocation's start to the
// last one's end; Outcome is "ok" when every invocation succeeded, else
// "error".
type Trace struct {
	TraceID    string       `json:"trace_id"`
	Spans      int          `json:"spans"`
	Outcome    string       `json:"outcome"`
	DurationMS float64      `json:"duration_ms"`
	Children   []*TraceNode `json:"children"`
}

// TraceNode is one invocation of a trace: which function version ran,
// what triggered it ("http", "event", "object", "schedule", "invoke"),
// how it ended ("ok", or why not: "timeout", "function error", "budget
// exhausted", …), when and for how long, its attempt (events: 1 for the
// first delivery; Retries is Attempt-1), the lines it logged, and the
// invocations it caused.
type TraceNode struct {
	App        string       `json:"app"`
	Function   string       `json:"function"`
	Version    string       `json:"version,omitempty"`
	Trigger    string       `json:"trigger"`
	Outcome    string       `json:"outcome"`
	Status     int          `json:"status,omitempty"`
	Error      string       `json:"error,omitempty"`
	Start      time.Time    `json:"start"`
	DurationMS float64      `json:"duration_ms"`
	SpanID     string       `json:"span_id"`
	ParentID   string       `json:"parent_id,omitempty"`
	RequestID  string       `json:"request_id,omitempty"`
	Attempt    int          `json:"attempt,omitempty"`
	Retries    int          `json:"retries"`
	Logs       []TraceLog   `json:"logs,omitempty"`
	Children   []*TraceNode `json:"children"`
}

// TraceLog is a line an invocation logged (or a capability it was
// denied), as it appears under its node.
type TraceLog struct {
	Time       time.Time `json:"time"`
	Level      string    `json:"level"`
	Msg        string    `json:"msg"`
	Capability string    `json:"capability,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}
