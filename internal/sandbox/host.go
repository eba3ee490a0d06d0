package sandbox

import (
	"context"
	"log/slog"

	"github.com/aegis-platform/aegis/internal/telemetry"

	"github.com/aegis-platform/aegis/manifest"
)

// Caller identifies who makes a host call: the function version running one
// invocation. The sandbox fills it; the Host must check Grants before it
// touches anything.
type Caller struct {
	App       string
	Function  string
	Version   string
	RequestID string
	// Hop is the hop of the event or invoke call being handled (0 for a
	// request from outside); what the function publishes or invokes
	// carries Hop+1.
	Hop    int
	Grants *manifest.Grants
	// Egress is Grants.Egress.Hosts parsed once, when the function was
	// built: fetch matches against these, never against the strings.
	Egress []manifest.HostPattern
	// Origin is the principal the chain is charged to (Request.Origin);
	// what the function publishes or invokes carries it on.
	Origin string
	// Chain is Request.Chain: the functions that led here.
	Chain []string
	// Limits are the function's limits, defaults applied: the host
	// enforces the per-invocation caps (max_fetches, max_egress,
	// max_publishes, max_event_size) from them.
	Limits *manifest.Limits
	// Meter counts this invocation's use of capped capabilities: the
	// Request's Meter, or one of the invocation's own.
	Meter *Meter
	// Trace is the invocation's span (Request.Trace): what it publishes
	// or invokes, and every host call's span, is a child of it.
	Trace telemetry.Span
}

// FetchRequest is an outbound HTTP request asked for by a guest.
type FetchRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// FetchResponse is what fetch hands back to the guest.
type FetchResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// InvokeRequest is a call to an HTTP route of another function of the
// same app, asked for by a guest. Path is the escaped path as a client
// would send it and may carry a "?query".
type InvokeRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// InvokeResponse is the called function's answer, handed back to the guest.
type InvokeResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// Host is the set of capabilities a guest can reach through the "aegis"
// import module. The capability package implements it; every method checks
// the caller's grants first and returns errors wrapping the sentinels of the
// root aegis package (ErrPermissionDenied, ErrNotFound, ErrInvalidArgument,
// ErrLimitExceeded, ErrUnavailable), which the ABI maps to result codes.
type Host interface {
	KVGet(ctx context.Context, c *Caller, table, key string) ([]byte, error)
	KVPut(ctx context.Context, c *Caller, table, key string, value []byte) error
	KVDelete(ctx context.Context, c *Caller, table, key string) error
	KVList(ctx context.Context, c *Caller, table, prefix string) ([]string, error)

	ObjectGet(ctx context.Context, c *Caller, key string) ([]byte, error)
	ObjectPut(ctx context.Context, c *Caller, key string, data []byte) error
	ObjectDelete(ctx context.Context, c *Caller, key string) error
	ObjectList(ctx context.Context, c *Caller, prefix string) ([]string, error)

	Publish(ctx context.Context, c *Caller, topic string, data []byte) error
	Fetch(ctx context.Context, c *Caller, req *FetchRequest) (*FetchResponse, error)
	// Invoke calls a route of another function of the caller's app, private
	// routes included. ctx carries the caller's deadline.
	Invoke(ctx context.Context, c *Caller, req *InvokeRequest) (*InvokeResponse, error)

	// Secret returns the current value of the caller's app's secret name.
	// The sandbox keeps what an invocation read, to scrub it from the
	// invocation's log lines and error message (scrub.go).
	Secret(ctx context.Context, c *Caller, name string) ([]byte, error)

	// Log records a guest log line (also used for guest stdout/stderr).
	Log(ctx context.Context, c *Caller, level slog.Level, msg string)
}
