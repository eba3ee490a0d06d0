package capability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/policy"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Functions is the platform as invoke needs it. The server implements it
// over the registry's active snapshot and dispatch.Invoke, so a call from
// one function to another takes the same path as every other invocation
// (recorded with its request id, drained at shutdown).
type Functions interface {
	// Resolve matches method and path (escaped, without the query) against
	// every HTTP route of app, private ones included, and returns the route
	// with the function behind it, both from one snapshot. No match is an
	// error wrapping aegis.ErrNotFound, or route.ErrMethodNotAllowed when
	// only other methods match.
	Resolve(app, method, path string) (*Target, error)
}

// Target is a matched route and the function that answers it.
type Target struct {
	Route  *route.Route
	Params map[string]string
	// Limits are the called function's, defaults applied.
	Limits manifest.Limits
	// Invoke runs the function through dispatch.
	Invoke func(ctx context.Context, req *sandbox.Request) (*sandbox.Response, error)
}

// DefaultHopLimit is the highest hop an invoke call may reach unless
// Config says otherwise. It is the bus's limit (bus.DefaultHopLimit; the
// server passes that one), so a chain mixing events and calls ends at the
// same depth whichever it is made of.
const DefaultHopLimit = 16

// ruleTimeout bounds one evaluation of a route's rule on top of its cost
// limit, as at the gateway.
const ruleTimeout = 100 * time.Millisecond

// maxInvokeReserve caps the time kept back from a callee, see calleeContext.
// Answering with an error takes a guest about a millisecond of CPU; the
// rest is room for a loaded machine. The cap keeps a chain of 16 calls
// from losing more than 1.6 s to reserves.
const maxInvokeReserve = 100 * time.Millisecond

// errCallerDeadline is the cause of a callee's context ending because its
// caller's deadline is near.
var errCallerDeadline = errors.New("the caller's deadline is near")

// invokeMethods are the methods a manifest may route; anything else can
// match nothing, so it is refused as malformed rather than "not found".
var invokeMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Invoke calls an HTTP route of another function of the caller's app,
// private routes included. In order: the request is validated; the caller
// must hold some invoke grant at all; the path is matched against the
// caller's own app (never another app's routes); the function behind the
// route must be named in grants.invoke; the chain must stay within the hop
// limit; the route's rule, if any, must allow the call, with the calling
// function as identity; the body must fit the callee's max_body; the
// route's schemas, if any, must accept the request (a refusal is the
// gateway's 400 or 415, returned as the response). The call then goes
// through dispatch like any invocation, with the caller's request id,
// hop + 1 and identity {scheme "function", subject "app/function"}, and
// ends before the caller's own deadline. A refusal writes one security log
// line.
func (h *Host) Invoke(ctx context.Context, c *sandbox.Caller, req *sandbox.InvokeRequest) (*sandbox.InvokeResponse, error) {
	if req == nil {
		return nil, invalid("invoke request is empty")
	}
	method, rawPath, query, err := parseInvokeTarget(req.Method, req.Path)
	if err != nil {
		return nil, err
	}
	g := grantsOf(c)
	if g == nil || len(g.Invoke) == 0 {
		// Deny by default, before the route table is even consulted.
		return nil, h.deny(ctx, c, denial{
			capability: "invoke", resource: method + " " + rawPath, reason: "no invoke grant",
			msg: fmt.Sprintf("invoke %s %s not granted", method, rawPath),
		})
	}
	if h.cfg.Functions == nil {
		return nil, errNoBackend("invoke")
	}
	t, err := h.cfg.Functions.Resolve(c.App, method, rawPath)
	switch {
	case errors.Is(err, aegis.ErrNotFound), errors.Is(err, route.ErrMethodNotAllowed):
		// Another method on the same path is "not found" too: the guest
		// asked for a route, and that route does not exist.
		return nil, fmt.Errorf("invoke %s %s: no route of app %q matches: %w", method, rawPath, c.App, aegis.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("invoke %s %s: %w", method, rawPath, err)
	case t == nil || t.Route == nil || t.Invoke == nil || t.Route.App != c.App:
		// Resolve is scoped to the caller's app; anything else is a bug
		// that must not become a way into another app.
		return nil, fmt.Errorf("invoke %s %s: no route of app %q matches: %w", method, rawPath, c.App, aegis.ErrNotFound)
	}
	rt := t.Route
	target := rt.Function
	if !slices.Contains(g.Invoke, target) {
		return nil, h.deny(ctx, c, denial{
			capability: "invoke", resource: target, reason: "no invoke grant for " + rt.Method + " " + rt.Path,
			msg: fmt.Sprintf("invoke of function %q (%s %s) not granted", target, rt.Method, rt.Path),
		})
	}
	hop := max(c.Hop, 0) + 1
	if hop > h.cfg.HopLimit {
		// A loop (A invokes B invokes A …) or a chain too deep to be
		// anything else ends here, before a single instance more is taken.
		h.security(ctx, c, denial{capability: "invoke", resource: target, reason: "hop limit"})
		return nil, fmt.Errorf("invoke of function %q: hop %d is over the limit of %d calls and events in a chain: %w",
			target, hop, h.cfg.HopLimit, aegis.ErrLimitExceeded)
	}

	path, err := url.PathUnescape(rawPath)
	if err != nil {
		// Resolve matched it, so it decodes; this only keeps a future
		// matcher from handing the callee a path it never checked.
		return nil, invalid("invoke path %q is malformed", rawPath)
	}
	headers := invokeHeaders(req.Headers)
	ident := &sandbox.Identity{Scheme: sandbox.SchemeFunction, Subject: c.App + "/" + c.Function}
	if rt.Rule != nil {
		if err := h.allowRule(ctx, c, rt, method, path, t.Params, query, headers, ident); err != nil {
			return nil, err
		}
	}
	limits := calleeLimits(t.Limits)
	if int64(len(req.Body)) > limits.maxBody {
		return nil, fmt.Errorf("invoke of function %q: request body of %d bytes over its max_body of %d: %w",
			target, len(req.Body), limits.maxBody, aegis.ErrLimitExceeded)
	}
	// schema validation: the route's content types and JSON Schemas (the
	// same compiled check the gateway runs) after the body cap, as there.
	if rt.Schema != nil {
		if resp := h.checkSchema(ctx, c, rt, query, t.Params, headers, req.Body); resp != nil {
			return resp, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("invoke of function %q: the calling invocation is ending: %w", target, aegis.ErrUnavailable)
	}

	sreq := &sandbox.Request{
		Kind: sandbox.KindHTTP, RequestID: c.RequestID, Method: method, Path: path,
		Params: t.Params, Query: query, Headers: headers, Body: req.Body,
		Identity: ident, Hop: hop,
	}
	cctx, cancel := calleeContext(ctx)
	defer cancel()
	start := time.Now()
	resp, err := t.Invoke(cctx, sreq)
	attrs := []slog.Attr{
		slog.String(logkey.App, c.App), slog.String(logkey.Function, c.Function),
		slog.String(logkey.Version, c.Version), slog.String(logkey.RequestID, c.RequestID),
		slog.String(logkey.Resource, target), slog.String("route", rt.Method+" "+rt.Path),
		slog.Int("hop", hop), slog.Duration(logkey.Duration, time.Since(start)),
	}
	if err != nil {
		err = invokeFailure(ctx, target, err)
		h.log.LogAttrs(ctx, slog.LevelInfo, "invoke", append(attrs, slog.String(logkey.Error, err.Error()))...)
		return nil, err
	}
	if resp == nil {
		resp = &sandbox.Response{}
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "invoke", append(attrs, slog.Int(logkey.Status, status))...)
	// The sandbox already holds the callee to its max_response; checked
	// again so a different Functions cannot hand the guest more.
	if int64(len(resp.Body)) > limits.maxResponse {
		return nil, fmt.Errorf("invoke of function %q: response over its max_response of %d bytes: %w",
			target, limits.maxResponse, aegis.ErrLimitExceeded)
	}
	return &sandbox.InvokeResponse{Status: status, Headers: resp.Headers, Body: resp.Body}, nil
}

// parseInvokeTarget checks the method and splits the path from its query.
// The path is left escaped for the route table, which decodes each segment
// exactly once (as for a request at the gateway).
func parseInvokeTarget(m, p string) (method, path string, query map[string][]string, err error) {
	method = strings.ToUpper(m)
	if method == "" {
		method = http.MethodGet
	}
	if !invokeMethods[method] {
		return "", "", nil, invalid("invoke method %q not supported", m)
	}
	path, rawQuery, hasQuery := strings.Cut(p, "?")
	switch {
	case !strings.HasPrefix(path, "/"):
		return "", "", nil, invalid("invoke path must start with \"/\"")
	case len(path) > route.MaxPathLen:
		return "", "", nil, invalid("invoke path is longer than %d bytes", route.MaxPathLen)
	case strings.ContainsAny(p, "#"):
		return "", "", nil, invalid("invoke path must not carry a fragment")
	}
	if hasQuery && rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return "", "", nil, invalid("invoke query is malformed")
		}
		query = q
	}
	return method, path, query, nil
}

// invokeHeaders turns the guest's headers into a request's, canonical
// names, minus what describes a connection rather than the request: those
// have no meaning between two functions and the gateway never forwards
// them either.
func invokeHeaders(in map[string]string) map[string][]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string][]string, len(in))
	for k, v := range in {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop[ck] || transportOwned[ck] {
			continue
		}
		out[ck] = append(out[ck], v)
	}
	for _, vs := range out {
		slices.Sort(vs) // "x-a" and "X-A" both given: a stable order
	}
	return out
}

// allowRule evaluates the route's rule with the calling function as the
// identity. A rule written for outside callers (identity.claims, key_name)
// denies a function, as it would any caller it does not expect.
func (h *Host) allowRule(ctx context.Context, c *sandbox.Caller, rt *route.Route, method, path string,
	params map[string]string, query, headers map[string][]string, ident *sandbox.Identity) error {
	preq := &policy.Request{Method: method, Path: path, Params: params, Query: query, Headers: map[string][]string{}}
	for k, v := range headers {
		preq.Headers[strings.ToLower(k)] = v
	}
	rctx, cancel := context.WithTimeout(ctx, ruleTimeout)
	defer cancel()
	ok, err := rt.Rule.Allow(rctx, preq, &policy.Identity{Scheme: ident.Scheme, Subject: ident.Subject})
	if ok {
		return nil
	}
	reason := "rule false"
	if err != nil {
		reason = err.Error() // "rule error: …", for the log only
	}
	return h.deny(ctx, c, denial{
		capability: "invoke", resource: rt.Function, reason: reason,
		msg: fmt.Sprintf("invoke of function %q (%s %s) denied by its rule", rt.Function, rt.Method, rt.Path),
	})
}

// checkSchema runs the route's request check and returns the answer to a
// request it refuses, or nil. A refusal is a response, 400 (415 for a
// media type) with the gateway's error shape, not a host-call error: the
// callee's contract refused the request as it would a client's, and the
// caller reads why exactly as a client would. The message names fields and
// keywords, never values.
func (h *Host) checkSchema(ctx context.Context, c *sandbox.Caller, rt *route.Route, query map[string][]string,
	params map[string]string, headers map[string][]string, body []byte) *sandbox.InvokeResponse {
	var contentType string
	if v := headers["Content-Type"]; len(v) > 0 {
		contentType = v[0]
	}
	err := rt.Schema.Check(contentType, url.Values(query), params, body)
	if err == nil {
		return nil
	}
	status, kind := http.StatusBadRequest, schema.KindBody
	var se *schema.Error
	if errors.As(err, &se) {
		status, kind = se.Status(), se.Kind
	}
	h.cfg.Metrics.SchemaViolation(rt.App, rt.Function, rt.Method+" "+rt.Path, kind)
	h.log.LogAttrs(ctx, slog.LevelWarn, "request refused by schema",
		slog.Bool(logkey.Security, true),
		slog.String(logkey.RequestID, c.RequestID),
		slog.String(logkey.App, rt.App),
		slog.String(logkey.Function, rt.Function),
		slog.String("route", rt.Method+" "+rt.Path),
		slog.String("kind", kind),
		slog.String(logkey.Reason, err.Error()),
		slog.String("caller", c.App+"/"+c.Function))
	b, jerr := json.Marshal(map[string]string{"error": err.Error(), "request_id": c.RequestID})
	if jerr != nil {
		b = []byte(`{"error":"request does not match schema"}`)
	}
	return &sandbox.InvokeResponse{Status: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: b}
}

// limitsOf are a callee's size limits in bytes, defaults filled in.
type limitsOf struct{ maxBody, maxResponse int64 }

func calleeLimits(l manifest.Limits) limitsOf {
	out := limitsOf{maxBody: int64(l.MaxBody), maxResponse: int64(l.MaxResponse)}
	if out.maxBody <= 0 {
		out.maxBody = manifest.DefaultMaxBody
	}
	if out.maxResponse <= 0 {
		out.maxResponse = manifest.DefaultMaxResponse
	}
	return out
}

// calleeContext is the caller's context ending a little before the
// caller's deadline: a tenth of the time left, at most maxInvokeReserve.
// Whatever stops the callee then (a busy pool, a slow function) comes back
// to the caller as an error it still has time to act on, instead of the
// caller being stopped at its own deadline while it waits.
func calleeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(time.Until(dl)/10, maxInvokeReserve)
	return context.WithDeadlineCause(ctx, dl.Add(-max(reserve, 0)), errCallerDeadline)
}

// invokeFailure turns the callee's failure into what the caller sees:
// which limit it hit, or that it failed. The detail (a trap's message, a
// stack) stays in the callee's logs, joined by the request id.
func invokeFailure(ctx context.Context, target string, err error) error {
	switch {
	case ctx.Err() != nil:
		// The caller itself is being stopped (its timeout, a client gone):
		// whatever the callee reports is a consequence of that.
		return fmt.Errorf("invoke of function %q: the calling invocation is ending: %w", target, aegis.ErrUnavailable)
	case errors.Is(err, sandbox.ErrTimeout):
		return fmt.Errorf("invoke of function %q: it timed out: %w", target, aegis.ErrLimitExceeded)
	case errors.Is(err, sandbox.ErrResponseTooLarge):
		return fmt.Errorf("invoke of function %q: its response is over its max_response: %w", target, aegis.ErrLimitExceeded)
	case errors.Is(err, sandbox.ErrMemory), errors.Is(err, sandbox.ErrTrap):
		return fmt.Errorf("invoke of function %q: it failed: %w", target, aegis.ErrUnavailable)
	case errors.Is(err, aegis.ErrLimitExceeded):
		// The only limit left is the pool: every instance busy until the
		// callee's timeout or the caller's deadline.
		return fmt.Errorf("invoke of function %q: it is at its concurrency limit: %w", target, aegis.ErrLimitExceeded)
	case errors.Is(err, errCallerDeadline):
		return fmt.Errorf("invoke of function %q: no answer before the caller's deadline: %w", target, aegis.ErrLimitExceeded)
	case errors.Is(err, aegis.ErrUnavailable):
		return fmt.Errorf("invoke of function %q: it is unavailable: %w", target, aegis.ErrUnavailable)
	}
	return fmt.Errorf("invoke of function %q: %w", target, err)
}
