package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// UsageQuery narrows Usage: one app ("" for every app the token sees), the
// period back from now (zero: the server's default, 24h), and By
// ("function" adds callers up, "caller" adds functions up, "" keeps both).
type UsageQuery struct {
	App   string
	By    string
	Since time.Duration
}

// Usage lists what each app, function and caller used (GET /v1/usage).
func (c *Client) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	v := url.Values{}
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.By != "" {
		v.Set("by", q.By)
	}
	if q.Since > 0 {
		v.Set("since", q.Since.String())
	}
	path := "/v1/usage"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []UsageRow
	return out, c.call(ctx, http.MethodGet, path, nil, &out, http.StatusOK)
}

// Budgets lists the budgets in their current window, of one app when app
// is not empty (GET /v1/usage/budgets).
func (c *Client) Budgets(ctx context.Context, app string) ([]BudgetState, error) {
	var out []BudgetState
	return out, c.call(ctx, http.MethodGet, "/v1/usage/budgets"+query("app", app), nil, &out, http.StatusOK)
}
