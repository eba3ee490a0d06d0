package gateway

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// checkSchema checks a request against its route's content types and
// schemas, after authentication, authorization and the body cap (so an
// unauthenticated caller learns nothing about the schema) and before the
// function runs. A refusal answers 415 or 400 with a message naming the
// failing field and keyword, never the submitted value; it is counted and
// written to the security log.
func (g *Gateway) checkSchema(w http.ResponseWriter, r *http.Request, reqID string, rt *route.Route, params map[string]string, body []byte) bool {
	var query url.Values
	if r.URL.RawQuery != "" {
		query = r.URL.Query()
	}
	err := rt.Schema.Check(r.Header.Get("Content-Type"), query, params, body)
	if err == nil {
		return true
	}
	status, kind := http.StatusBadRequest, schema.KindBody
	var se *schema.Error
	if errors.As(err, &se) {
		status, kind = se.Status(), se.Kind
	}
	trigger := rt.Method + " " + rt.Path
	g.cfg.Metrics.SchemaViolation(rt.App, rt.Function, trigger, kind)
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "request refused by schema",
		slog.Bool(logkey.Security, true),
		slog.String(logkey.RequestID, reqID),
		slog.String(logkey.App, rt.App),
		slog.String(logkey.Function, rt.Function),
		slog.String("route", trigger),
		slog.String("kind", kind),
		slog.String(logkey.Reason, err.Error()),
		slog.String("remote", r.RemoteAddr),
		slog.String(logkey.Method, r.Method),
		slog.String("path", rt.Path))
	writeError(w, status, err.Error(), reqID)
	return false
}
