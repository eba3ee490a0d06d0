// Package admission decides whether a request may reach the function behind
// a route, the same way for a request from outside (the gateway) and for a
// call from another function (invoke): the API key's scope, the route's
// rule, the body cap, then the route's content types and schemas, in that
// order, so that a caller who may not call learns nothing about the schema
// and a body is only read for a caller who may send one.
//
// A refusal is typed (Refusal) and written to the security log and the
// metrics here, once; the caller only turns it into its answer (a status
// at the gateway, an error or a response for invoke). Authentication stays
// with the gateway, which alone sees credentials; everything after it that
// a route decides is in this package, which is where per-route limits,
// budgets and the guard's decisions hook in. Rate limits (rate.go) are the
// gateway's alone and run around authentication rather than in Admit:
// LimitRequest before it, LimitCaller after; invoke calls neither.
package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/policy"
	"github.com/aegis-platform/aegis/internal/ratelimit"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// RuleTimeout bounds one evaluation of a route's rule on top of its cost
// limit.
const RuleTimeout = 100 * time.Millisecond

// Step names the check that refused a request.
type Step string

// The steps, in the order they run.
const (
	StepScope  Step = "scope"  // the API key's scopes do not cover the function
	StepRule   Step = "rule"   // the route's rule did not allow the request
	StepBody   Step = "body"   // the body is over max_body or could not be read
	StepSchema Step = "schema" // the content type, params, query or body do not match
	// StepRate is a rate limit (rate.go): the gateway's alone, before
	// authentication (the route's total and per-address rates) and right
	// after it (the key's rate, the route's per-caller rate).
	StepRate Step = "rate"
)

// Refusal is a request the route does not admit.
type Refusal struct {
	Step Step
	// Status is the HTTP answer: 403, 413, 400 or 415.
	Status int
	// Message is safe for the caller: it never quotes a rule, a rule's
	// error or a submitted value (a schema refusal names the field and the
	// keyword).
	Message string
	// Reason is for the security log only.
	Reason string
	// Kind is the root sentinel: ErrPermissionDenied, ErrLimitExceeded or
	// ErrInvalidArgument.
	Kind error
	// Rate is the refusing limit's decision (StepRate only): the headers
	// the answer carries.
	Rate ratelimit.Decision
}

func (r *Refusal) Error() string { return r.Message }
func (r *Refusal) Unwrap() error { return r.Kind }

// Request is what admission looks at.
type Request struct {
	Route  *route.Route
	Params map[string]string
	Method string
	// Path is decoded, as the function will see it.
	Path  string
	Query map[string][]string
	// Headers are those the function will see, in canonical form: never a
	// credential, so a rule cannot read one either.
	Headers  map[string][]string
	Identity *sandbox.Identity
	// MaxBody is the function's max_body in bytes.
	MaxBody int64

	RequestID string
	// Remote is the client's address (gateway); Caller the calling
	// "app/function" (invoke). Both go to the log; Remote also keys the
	// route's per-address rate.
	Remote, Caller string
	// Origin is the principal the request is charged to
	// (sandbox.OriginOf(Identity)), the key of the route's per-caller
	// rate; computed from Identity when empty.
	Origin string
}

// Admission is safe for concurrent use.
type Admission struct {
	log     *slog.Logger
	metrics *metrics.Metrics
	rates   *rates
}

// New returns an Admission logging refusals to log (nil: nowhere) and
// counting schema refusals in m (nil: not counted).
func New(log *slog.Logger, m *metrics.Metrics) *Admission {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Admission{log: log, metrics: m, rates: newRates()}
}

// BodyFunc returns a request's body, which may not exceed limit bytes; an
// error wrapping aegis.ErrLimitExceeded means it did. The gateway reads the
// connection in it (after the rule), invoke hands over what the guest
// passed (BodyOf).
type BodyFunc func(limit int64) ([]byte, error)

// Admit runs the route's checks and returns the body read through body,
// or the refusal. body is a parameter rather than a field of req because
// req's contents go to the log, which would move a closure the gateway
// builds for every request to the heap.
func (a *Admission) Admit(ctx context.Context, req *Request, body BodyFunc) ([]byte, *Refusal) {
	rt := req.Route
	if ident := req.Identity; ident != nil && ident.Scheme == manifest.AuthAPIKey &&
		!(&auth.Identity{KeyName: ident.Subject, Scopes: ident.Scopes}).Allows(rt.App, rt.Function) {
		return nil, a.refuse(ctx, req, &Refusal{Step: StepScope, Status: http.StatusForbidden,
			Message: "forbidden", Reason: "key scope", Kind: aegis.ErrPermissionDenied})
	}
	if rt.Rule != nil {
		if ok, reason := a.allow(ctx, req); !ok {
			return nil, a.refuse(ctx, req, &Refusal{Step: StepRule, Status: http.StatusForbidden,
				Message: "forbidden", Reason: reason, Kind: aegis.ErrPermissionDenied})
		}
	}
	b, err := body(req.MaxBody)
	switch {
	case errors.Is(err, aegis.ErrLimitExceeded):
		return nil, &Refusal{Step: StepBody, Status: http.StatusRequestEntityTooLarge,
			Message: "request body too large", Reason: err.Error(), Kind: aegis.ErrLimitExceeded}
	case err != nil:
		return nil, &Refusal{Step: StepBody, Status: http.StatusBadRequest,
			Message: "could not read request body", Reason: err.Error(), Kind: aegis.ErrInvalidArgument}
	}
	if rt.Schema != nil {
		var contentType string
		if v := req.Headers["Content-Type"]; len(v) > 0 {
			contentType = v[0]
		}
		if err := rt.Schema.Check(contentType, req.Query, req.Params, b); err != nil {
			status, kind := http.StatusBadRequest, schema.KindBody
			var se *schema.Error
			if errors.As(err, &se) {
				status, kind = se.Status(), se.Kind
			}
			a.metrics.SchemaViolation(rt.App, rt.Function, rt.Method+" "+rt.Path, kind)
			return nil, a.refuse(ctx, req, &Refusal{Step: StepSchema, Status: status,
				Message: err.Error(), Reason: err.Error(), Kind: aegis.ErrInvalidArgument}, slog.String(logkey.Kind, kind))
		}
	}
	return b, nil
}

// allow evaluates the route's rule. A rule that fails to evaluate denies;
// its error is the reason, for the log only.
func (a *Admission) allow(ctx context.Context, req *Request) (bool, string) {
	preq := &policy.Request{Method: req.Method, Path: req.Path, Params: req.Params, Query: req.Query,
		Headers: make(map[string][]string, len(req.Headers))}
	for k, v := range req.Headers {
		preq.Headers[strings.ToLower(k)] = v
	}
	var id *policy.Identity
	if ident := req.Identity; ident != nil {
		id = &policy.Identity{Scheme: ident.Scheme, Subject: ident.Subject, Issuer: ident.Issuer, Claims: ident.Claims}
		if ident.Scheme == manifest.AuthAPIKey {
			id.KeyName = ident.Subject
		}
	}
	rctx, cancel := context.WithTimeout(ctx, RuleTimeout)
	defer cancel()
	ok, err := req.Route.Rule.Allow(rctx, preq, id)
	if ok {
		return true, ""
	}
	if err != nil {
		return false, err.Error() // "rule error: …"
	}
	return false, "rule false"
}

// refuse writes the refusal's security log line and returns it. A
// refused rule or scope is "authorization denied", a schema refusal
// "request refused by schema", whoever called.
func (a *Admission) refuse(ctx context.Context, req *Request, r *Refusal, extra ...slog.Attr) *Refusal {
	rt := req.Route
	msg := "authorization denied"
	switch r.Step {
	case StepSchema:
		msg = "request refused by schema"
	case StepRate:
		msg = "rate limit exceeded"
	}
	attrs := append([]slog.Attr{
		slog.Bool(logkey.Security, true),
		slog.String(logkey.RequestID, req.RequestID),
		slog.String(logkey.App, rt.App),
		slog.String(logkey.Function, rt.Function),
		slog.String(logkey.Route, rt.Method+" "+rt.Path),
		slog.String(logkey.Reason, r.Reason),
		slog.String(logkey.Method, req.Method),
		slog.String(logkey.Path, rt.Path),
	}, extra...)
	if r.Step == StepScope && req.Identity != nil {
		attrs = append(attrs, slog.String(logkey.KeyName, req.Identity.Subject))
	}
	if req.Remote != "" {
		attrs = append(attrs, slog.String(logkey.Remote, req.Remote))
	}
	if req.Caller != "" {
		attrs = append(attrs, slog.String(logkey.Caller, req.Caller))
	}
	a.log.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
	return r
}

// BodyOf returns the BodyFunc of a body already in memory, refusing it
// when it is over the limit.
func BodyOf(body []byte) BodyFunc {
	return func(limit int64) ([]byte, error) {
		if int64(len(body)) > limit {
			return nil, fmt.Errorf("body of %d bytes over max_body of %d: %w", len(body), limit, aegis.ErrLimitExceeded)
		}
		return body, nil
	}
}
