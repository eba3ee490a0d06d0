package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aegis-platform/aegis/adminapi"
)

type (
	// Trace is one trace's invocations as a causal tree (GET /v1/traces/{id}).
	Trace = adminapi.Trace
	// TraceNode is one invocation of a trace.
	TraceNode = adminapi.TraceNode
	// TraceLog is a line an invocation of a trace logged.
	TraceLog = adminapi.TraceLog
)

// Trace returns the causal tree of the trace with id (32 hex characters:
// the X-Aegis-Trace-Id of a response, or the trace id of a traceparent).
func (c *Client) Trace(ctx context.Context, id string) (*Trace, error) {
	var out Trace
	if err := c.call(ctx, http.MethodGet, "/v1/traces/"+url.PathEscape(id), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
