package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
)

// GuardAlert is one incident the guard raised an alert for (docs/guard.md).
type GuardAlert = adminapi.GuardAlert

// GuardAlertQuery narrows GuardAlerts and FollowGuardAlerts: alerts raised
// at or after Since (zero: any time), at most Limit of the newest (zero:
// the server's default, 100; at most 10000).
type GuardAlertQuery struct {
	Since time.Time
	Limit int
}

func (q GuardAlertQuery) params(follow bool) string {
	var since, limit, f string
	if !q.Since.IsZero() {
		since = q.Since.UTC().Format(time.RFC3339Nano)
	}
	if q.Limit > 0 {
		limit = strconv.Itoa(q.Limit)
	}
	if follow {
		f = "true"
	}
	return query("since", since, "limit", limit, "follow", f)
}

// GuardAlerts lists the guard's alerts, shared by every server on the
// NATS, oldest first (GET /v1/guard/alerts).
func (c *Client) GuardAlerts(ctx context.Context, q GuardAlertQuery) ([]GuardAlert, error) {
	var out []GuardAlert
	if err := c.call(ctx, http.MethodGet, "/v1/guard/alerts"+q.params(false), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return out, nil
}

// FollowGuardAlerts hands fn the alerts GuardAlerts would list, then each
// new one as the guard raises it (GET /v1/guard/alerts?follow=true). It
// returns when fn fails (that error), when ctx ends (ctx.Err()) or when
// the server ends the stream (nil).
func (c *Client) FollowGuardAlerts(ctx context.Context, q GuardAlertQuery, fn func(GuardAlert) error) error {
	if fn == nil {
		return errors.New("nil alert callback")
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/guard/alerts"+q.params(true), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readNDJSON(ctx, resp.Body, "alert", "alert stream", 16<<10, fn)
}
