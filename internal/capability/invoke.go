package capability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/admission"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
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
	h.graphInvoke(c, target)
	hop := max(c.Hop, 0) + 1
	if hop > h.cfg.HopLimit {
		// A loop (A invokes B invokes A …) or a chain too deep to be
		// anything else ends here, before a single instance more is taken.
		path := strings.Join(append(sandbox.Extend(c.Chain, c.Function), target), " → ")
		h.security(ctx, c, denial{capability: "invoke", resource: target, reason: "hop limit", detail: path})
		h.cfg.Guard.Observe(guard.Event{Signal: guard.HopLimit, App: c.App, Function: c.Function})
		return nil, fmt.Errorf("invoke of function %q: hop %d is over the limit of %d calls and events in a chain (%s): %w",
			target, hop, h.cfg.HopLimit, path, aegis.ErrLimitExceeded)
	}

	path, err := url.PathUnescape(rawPath)
	if err != nil {
		// Resolve matched it, so it decodes; this only keeps a future
		// matcher from handing the callee a path it never checked.
		return nil, invalid("invoke path %q is malformed", rawPath)
	}
	headers := invokeHeaders(req.Headers)
	ident := &sandbox.Identity{Scheme: sandbox.SchemeFunction, Subject: c.App + "/" + c.Function}
	limits := calleeLimits(t.Limits)
	// The route's own checks, as for a request at the gateway: its rule
	// with the calling function as identity, the callee's max_body, its
	// content types and schemas.
	body, refused := h.cfg.Admission.Admit(ctx, &admission.Request{
		Route: rt, Params: t.Params, Method: method, Path: path, Query: query, Headers: headers,
		Identity: ident, MaxBody: limits.maxBody,
		RequestID: c.RequestID, Caller: c.App + "/" + c.Function,
	}, admission.BodyOf(req.Body))
	if refused != nil {
		switch refused.Step {
		case admission.StepSchema:
			// The callee's contract refused the request as it would a
			// client's, and the caller reads why exactly as a client
			// would: a response, not a host-call error.
			return &sandbox.InvokeResponse{Status: refused.Status,
				Headers: map[string]string{"Content-Type": "application/json"},
				Body:    httperr.Marshal(refused.Message, c.RequestID)}, nil
		case admission.StepBody:
			return nil, fmt.Errorf("invoke of function %q: request body of %d bytes over its max_body of %d: %w",
				target, len(req.Body), limits.maxBody, aegis.ErrLimitExceeded)
		default:
			return nil, fmt.Errorf("invoke of function %q (%s %s) denied by its rule: %w",
				target, rt.Method, rt.Path, aegis.ErrPermissionDenied)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("invoke of function %q: the calling invocation is ending: %w", target, aegis.ErrUnavailable)
	}

	sreq := &sandbox.Request{
		Kind: sandbox.KindHTTP, RequestID: c.RequestID, Method: method, Path: path,
		Params: t.Params, Query: query, Headers: headers, Body: body,
		Identity: ident, Hop: hop,
		// The callee's work is charged to whoever started the chain.
		Origin: c.Origin, Chain: sandbox.Extend(c.Chain, c.Function),
		// The callee's invocation is a child of the caller's in its trace.
		Trace: telemetry.Span{TraceID: c.Trace.TraceID, ParentID: c.Trace.SpanID},
	}
	cctx, cancel := calleeContext(ctx)
	defer cancel()
	start := time.Now()
	resp, err := t.Invoke(cctx, sreq)
	attrs := []slog.Attr{
		slog.String(logkey.App, c.App), slog.String(logkey.Function, c.Function),
		slog.String(logkey.Version, c.Version), slog.String(logkey.RequestID, c.RequestID),
		slog.String(logkey.Resource, target), slog.String(logkey.Route, rt.Method+" "+rt.Path),
		slog.Int(logkey.Hop, hop), slog.Duration(logkey.Duration, time.Since(start)),
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
// which limit it hit, or that it failed, in the words and with the kind
// the gateway would answer a client with (httperr). The detail (a trap's
// message, a stack) stays in the callee's logs, joined by the request id.
func invokeFailure(ctx context.Context, target string, err error) error {
	switch {
	case ctx.Err() != nil:
		// The caller itself is being stopped (its timeout, a client gone):
		// whatever the callee reports is a consequence of that.
		return fmt.Errorf("invoke of function %q: the calling invocation is ending: %w", target, aegis.ErrUnavailable)
	case errors.Is(err, errCallerDeadline) && !errors.Is(err, aegis.ErrLimitExceeded) && !errors.Is(err, sandbox.ErrTrap):
		// The callee was stopped to leave the caller time, and neither hit
		// a limit of its own nor failed first.
		return fmt.Errorf("invoke of function %q: no answer before the caller's deadline: %w", target, aegis.ErrLimitExceeded)
	}
	f := httperr.Of(err)
	if f.Kind == nil {
		return fmt.Errorf("invoke of function %q: %w", target, err)
	}
	return fmt.Errorf("invoke of function %q: %s: %w", target, f.Message, f.Kind)
}
