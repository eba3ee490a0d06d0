package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aegis-platform/aegis/internal/connlimit"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Alerts is the guard's record of alerts every server shares (the
// server's *alert.Log).
type Alerts interface {
	// List returns the newest limit alerts raised at or after since,
	// oldest first.
	List(ctx context.Context, since time.Time, limit int) ([]guard.Alert, error)
	// Follow hands fn what List would, then every new alert, until ctx
	// ends (nil) or fn fails (its error).
	Follow(ctx context.Context, since time.Time, limit int, fn func(guard.Alert) error) error
}

// maxAlertLimit bounds ?limit= of GET /v1/guard/alerts.
const maxAlertLimit = 10000

// guardAlerts lists the guard's alerts (GET
// /v1/guard/alerts?since=1h&limit=100), or with follow=true streams them,
// one JSON object a line, until the client goes away.
func (a *API) guardAlerts(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	since, err := parseSince(q.Get("since"), time.Now())
	if err != nil {
		return err
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > maxAlertLimit {
			return &userError{http.StatusBadRequest, "limit must be a number from 1 to 10000"}
		}
		limit = n
	}
	follow := false
	switch q.Get("follow") {
	case "", "false", "0":
	case "true", "1":
		follow = true
	default:
		return &userError{http.StatusBadRequest, "follow must be true or false"}
	}
	if !follow {
		alerts, err := a.cfg.Alerts.List(r.Context(), since, limit)
		if err != nil {
			return err
		}
		if alerts == nil {
			alerts = []guard.Alert{} // an empty list, never null
		}
		writeJSON(w, http.StatusOK, alerts)
		return nil
	}
	connlimit.Unbounded(w) // a follower stays until it goes away
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // the headers now: the first alert may be a long way off
	enc := json.NewEncoder(w)
	// The callback runs on the stream's goroutine and may still be running
	// when Follow returns: writes to w are serialized, and none is made
	// once this handler is done with w.
	var mu sync.Mutex
	done := false
	defer func() { mu.Lock(); done = true; mu.Unlock() }()
	err = a.cfg.Alerts.Follow(r.Context(), since, limit, func(al guard.Alert) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return context.Canceled
		}
		if err := enc.Encode(al); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil {
		a.log.Warn("alert stream ended", logkey.Error, err)
	}
	return nil // headers are sent; an error can no longer change the status
}

// parseSince reads ?since=: an RFC 3339 time, or a positive duration back
// from now ("1h"); empty is no bound.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, &userError{http.StatusBadRequest, "since: a duration back from now must be positive, such as \"1h\""}
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &userError{http.StatusBadRequest, "since: want a duration such as \"1h\" or an RFC 3339 time"}
	}
	return t, nil
}
