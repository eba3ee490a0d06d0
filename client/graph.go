package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aegis-platform/aegis/adminapi"
)

type (
	// Graph is an app's call graph: declared edges beside observed ones.
	Graph = adminapi.Graph
	// GraphEdge is one edge of a Graph, with its flags.
	GraphEdge = adminapi.GraphEdge
)

// Graph reads the call graph of app (GET /v1/apps/{app}/graph): the edges
// its active manifest declares and those observed at run time, each with
// its counts and flags (docs/callgraph.md).
func (c *Client) Graph(ctx context.Context, app string) (*Graph, error) {
	var out Graph
	if err := c.call(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app)+"/graph", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
