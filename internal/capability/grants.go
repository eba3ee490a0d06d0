package capability

import (
	"context"
	"log/slog"
	"strings"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// matchAny reports whether any pattern of any list covers name, by the one
// rule of grant patterns (manifest.MatchPattern).
func matchAny(name string, lists ...[]string) bool {
	for _, list := range lists {
		for _, p := range list {
			if manifest.MatchPattern(p, name) {
				return true
			}
		}
	}
	return false
}

// coversPrefix reports whether some pattern covers (as manifest.MatchPattern
// reads it) every name that starts with prefix. Only "*" and prefix patterns can: an exact pattern "a/b"
// does not cover "a/bc", which the prefix "a/b" would also list.
func coversPrefix(prefix string, lists ...[]string) bool {
	for _, list := range lists {
		for _, p := range list {
			if pp, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(prefix, pp) {
				return true
			}
		}
	}
	return false
}

// grantsOf returns the caller's grants, or nil when there is no caller or
// no grants, which every check treats as "nothing granted".
func grantsOf(c *sandbox.Caller) *manifest.Grants {
	if c == nil {
		return nil
	}
	return c.Grants
}

// denial describes one refused host call for the guest and the security log.
type denial struct {
	capability string // "kv.put", "objects.get", "events.publish", "fetch", "invoke"
	resource   string // table/key, object key, topic, host, function
	reason     string // short, for the logs; the guest gets msg
	// detail follows reason in the server's log only: what the operator
	// may know and the function's developer need not (a resolved internal
	// address).
	detail string
	msg    string // e.g. `kv write to table "secrets" not granted`
}

// deny writes the one security log line of a refused host call and returns
// the error for the guest, wrapping aegis.ErrPermissionDenied.
func (h *Host) deny(ctx context.Context, c *sandbox.Caller, d denial) error {
	h.security(ctx, c, d)
	if c != nil {
		h.cfg.Metrics.PermissionDenied(c.App, c.Function, d.capability)
		h.cfg.Guard.Observe(guard.Event{Signal: guard.PermissionDenied, App: c.App, Function: c.Function})
	}
	h.graphDenied(c, d)
	return &deniedError{msg: d.msg, reason: d.reason}
}

// deniedError is a refused host call as the guest gets it (msg, wrapping
// aegis.ErrPermissionDenied), keeping the short reason for its span.
type deniedError struct {
	msg, reason string
}

func (e *deniedError) Error() string { return e.msg + ": " + aegis.ErrPermissionDenied.Error() }
func (e *deniedError) Unwrap() error { return aegis.ErrPermissionDenied }

// security writes a security log line. Every refusal goes through here so
// the keys stay the same and one query finds them all.
func (h *Host) security(ctx context.Context, c *sandbox.Caller, d denial) {
	var app, fn, version, rid string
	if c != nil {
		app, fn, version, rid = c.App, c.Function, c.Version, c.RequestID
	}
	attrs := []slog.Attr{
		slog.Bool(logkey.Security, true),
		slog.String(logkey.App, app),
		slog.String(logkey.Function, fn),
		slog.String(logkey.Version, version),
		slog.String(logkey.Capability, d.capability),
		slog.String(logkey.Resource, d.resource),
		slog.String(logkey.RequestID, rid),
	}
	if reason := strings.TrimSpace(d.reason + " " + d.detail); reason != "" {
		attrs = append(attrs, slog.String(logkey.Reason, reason))
	}
	h.log.LogAttrs(ctx, slog.LevelWarn, "capability denied", attrs...)
	// The same denial in the function's own log, charged to the output
	// budget of its invocation like a line it logged (about the size the
	// record takes), so a guest looping on a refused call cannot fill it.
	if h.cfg.Logs != nil && c != nil && sandbox.TakeLogBudget(ctx, denialRecordSize+len(d.resource)+len(d.reason)) {
		h.cfg.Logs.FunctionDenied(ctx, c, d.capability, d.resource, d.reason)
	}
}

// denialRecordSize is roughly what a denial record costs in the function
// log beside its resource and reason: time, names, request id.
const denialRecordSize = 256
