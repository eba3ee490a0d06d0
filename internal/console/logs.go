package console

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/funclog"
)

// logLine is one record of GET /v1/logs, in the function log's own shape.
type logLine = funclog.Record

// The messages of the function log's invocation records (dispatch).
const (
	msgInvocation       = "invocation"
	msgInvocationFailed = "invocation failed"
)

// isInvocation reports whether the line is an invocation's record rather
// than something the function logged.
func isInvocation(l *logLine) bool {
	return l.Msg == msgInvocation || l.Msg == msgInvocationFailed
}

// failed reports whether an invocation record is one that failed: it
// trapped, timed out or returned an error, or answered 5xx.
func invocationFailed(l *logLine) bool { return l.Msg == msgInvocationFailed || l.Status >= 500 }

// readLogs reads the log lines q asks for, oldest first.
func (c *Console) readLogs(r *http.Request, rq *request, q url.Values) ([]logLine, error) {
	var raw []byte
	if err := c.call(r.Context(), r, rq, "GET", "/v1/logs?"+q.Encode(), nil, &raw, ""); err != nil {
		return nil, err
	}
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out, nil
}

type logsPage struct {
	App, Function, Level, Trace string
	Lines                       []logLine
	Err                         string
	// FeedURL is where the follow script asks for newer lines, from
	// Since on (the server's clock, not the browser's).
	FeedURL, Since string
}

// logFilters reads the filters of the logs page and its feed.
func logFilters(r *http.Request) (url.Values, logsPage) {
	q := r.URL.Query()
	p := logsPage{App: strings.TrimSpace(q.Get("app")), Function: strings.TrimSpace(q.Get("function")),
		Level: q.Get("level"), Trace: strings.TrimSpace(q.Get("trace"))}
	vals := url.Values{}
	for k, v := range map[string]string{"app": p.App, "function": p.Function, "trace": p.Trace} {
		if v != "" {
			vals.Set(k, v)
		}
	}
	return vals, p
}

func keepLevel(level, want string) bool {
	switch want {
	case "warn":
		return level == "warn" || level == "error"
	case "error":
		return level == "error"
	}
	return true
}

func (c *Console) logs(w http.ResponseWriter, r *http.Request, rq *request) {
	vals, p := logFilters(r)
	vals.Set("limit", "200")
	lines, err := c.readLogs(r, rq, vals)
	p.Err = sectionErr(err)
	for i := len(lines) - 1; i >= 0; i-- { // newest first
		if keepLevel(lines[i].Level, p.Level) {
			p.Lines = append(p.Lines, lines[i])
		}
	}
	feed := url.Values{}
	for k, v := range vals {
		if k != "limit" {
			feed[k] = v
		}
	}
	if p.Level != "" {
		feed.Set("level", p.Level)
	}
	p.FeedURL = "/console/logs/feed?" + feed.Encode()
	p.Since = time.Now().UTC().Format(time.RFC3339Nano)
	status := http.StatusOK
	if p.Err != "" {
		status = http.StatusBadRequest
	}
	c.render(w, r, rq, status, "logs", "Logs", "logs", p)
}

// maxFeed bounds one answer of the follow feed.
const maxFeed = 500

// logFeed answers the follow script: the lines newer than ?since, as
// JSON, at most maxFeed. The script asks every two seconds; a poll,
// unlike a stream held open, needs nothing of the listener's timeouts
// and stops when the tab goes.
func (c *Console) logFeed(w http.ResponseWriter, r *http.Request, rq *request) {
	vals, p := logFilters(r)
	since := r.URL.Query().Get("since")
	if _, err := time.Parse(time.RFC3339Nano, since); err != nil {
		since = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	}
	vals.Set("since", since)
	vals.Set("limit", strconv.Itoa(maxFeed))
	lines, err := c.readLogs(r, rq, vals)
	if err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	sinceT, _ := time.Parse(time.RFC3339Nano, since)
	out := []logLine{}
	for _, l := range lines {
		if l.Time.After(sinceT) && keepLevel(l.Level, p.Level) {
			out = append(out, l)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
