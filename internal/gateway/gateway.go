// Package gateway is the HTTP ingress for functions: it routes a request by
// the active manifests, authenticates it (deny by default), caps its body,
// checks it against the route's content types and schemas, invokes the
// function and turns every failure into a sanitized JSON error
// that carries the request id and nothing internal.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/admission"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/connlimit"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/ratelimit"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Config wires a Gateway.
type Config struct {
	Snapshot   func() *registry.Snapshot
	Keys       *auth.Keys
	JWT        *auth.JWTVerifier // for routes whose auth lists "jwt"
	Webhooks   *auth.Webhooks    // for routes whose auth lists "hmac"
	Dispatcher *dispatch.Dispatcher
	Async      *AsyncStore
	// Queue holds accepted asynchronous invocations until a server runs
	// them (queue.go); Async needs it. Data seals a queued invocation with
	// its app's data key (nil: stored as it is), SigningKey signs it: the
	// event signing key, the same on every server.
	Queue      AsyncQueue
	Data       DataSealer
	SigningKey []byte
	Logger     *slog.Logger
	// MaxAsync bounds invocations running in the background on this
	// server (default DefaultMaxAsync); MaxAsyncPerCaller and
	// MaxAsyncPerFunction bound those of one caller (sandbox.OriginOf) and
	// of one function within it (backpressure.go).
	MaxAsync, MaxAsyncPerCaller, MaxAsyncPerFunction int
	// Metrics counts refusals by a full queue and authentication
	// failures; nil counts nothing.
	Metrics *metrics.Metrics
	// Rejected, when set, counts a request refused by a rate limit in the
	// usage of the caller it would have been charged to (the server hands
	// usage.Recorder.Reject); before authentication that is "public".
	Rejected func(app, function, origin string)
	// Admission runs a route's checks after authentication (key scope,
	// rule, body cap, schemas); the server shares one with invoke. Nil
	// makes one logging to Logger.
	Admission *admission.Admission
	// Spans, when set, receives the gateway's span of every request
	// (OpenTelemetry export); nil exports nothing and costs nothing.
	Spans telemetry.SpanSink
	// Guard, when set, refuses requests from blocked addresses before
	// anything else and is told of authentication failures and of
	// requests for undeclared paths (docs/guard.md); nil guards nothing.
	Guard *guard.Guard
	// Proxies are the peers whose X-Forwarded-For names the client the
	// guard counts and blocks (--trusted-proxy); empty, the connection's
	// address is the client's. Only the guard reads it.
	Proxies guard.Proxies
}

// Gateway is an http.Handler.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	async    *asyncBounds
	bg       context.Context
	cancelBg context.CancelFunc

	// stopQueue, set by Open, ends this server's share of the queue;
	// atomic, since handlers that Open started may read it first.
	stopQueue atomic.Pointer[func()]
	haltOnce  sync.Once
	closeOnce sync.Once
}

// HeaderAsync asks for an asynchronous invocation.
const HeaderAsync = "X-Aegis-Async"

// New returns a gateway.
func New(cfg Config) *Gateway {
	if cfg.MaxAsync <= 0 {
		cfg.MaxAsync = DefaultMaxAsync
	}
	if cfg.MaxAsyncPerCaller <= 0 {
		cfg.MaxAsyncPerCaller = min(DefaultMaxAsyncPerCaller, cfg.MaxAsync)
	}
	if cfg.MaxAsyncPerFunction <= 0 {
		cfg.MaxAsyncPerFunction = min(DefaultMaxAsyncPerFunction, cfg.MaxAsync)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Admission == nil {
		cfg.Admission = admission.New(cfg.Logger, nil)
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Gateway{cfg: cfg, log: cfg.Logger, async: newAsyncBounds(cfg.MaxAsync, cfg.MaxAsyncPerCaller, cfg.MaxAsyncPerFunction), bg: bg, cancelBg: cancel}
}

// ServeHTTP handles one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID, span := requestTrace(r)
	h := w.Header()
	h.Set("X-Request-Id", reqID)
	if span.TraceID != "" {
		h.Set(telemetry.HeaderTraceID, span.TraceID)
	}
	if g.cfg.Spans != nil {
		sw := &statusWriter{StatusWriter: telemetry.NewStatusWriter(w)}
		gw, start := g.gatewaySpan(&span)
		defer func() { g.endSpan(gw, start, r, sw.route, sw) }()
		w = sw
	}

	// A blocked address is refused before its request is routed or its
	// credentials looked at: a map lookup, and the plain 403 of any
	// refusal, which says nothing of the block.
	if gd := g.cfg.Guard; gd != nil && gd.HasBlocks() && gd.Blocked(g.clientAddr(r)) {
		writeError(w, http.StatusForbidden, httperr.MsgForbidden, reqID)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_aegis/") {
		g.serveInternal(w, r, reqID)
		return
	}
	snap := g.cfg.Snapshot()
	rt, params, err := snap.Routes.Match(r.Method, r.URL.EscapedPath())
	if err != nil {
		g.logPrivateProbe(snap, r, reqID)
		var mna *route.MethodNotAllowedError
		if errors.As(err, &mna) {
			w.Header().Set("Allow", strings.Join(mna.Allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method not allowed", reqID)
			return
		}
		g.noteGuard(guard.RouteMiss, r)
		writeError(w, http.StatusNotFound, "not found", reqID)
		return
	}
	fn, ok := snap.Function(rt.App, rt.Function)
	if !ok {
		writeError(w, http.StatusNotFound, "not found", reqID)
		return
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.route = rt
	}
	// A route the guard disabled answers like a blocked address.
	if g.cfg.Guard.RouteDisabled(rt.App, rt.Name) {
		writeError(w, http.StatusForbidden, httperr.MsgForbidden, reqID)
		return
	}
	// The route's total and per-address rates are counted before the
	// credentials are looked at, so a flood or a brute force is turned
	// away for the price of a map lookup.
	admit := &admission.Request{Route: rt, Params: params, Method: r.Method, Path: r.URL.Path,
		RequestID: reqID, Remote: r.RemoteAddr}
	shown, refused := g.cfg.Admission.LimitRequest(r.Context(), admit)
	if refused != nil {
		g.observe(guard.RateLimited, r, rt, nil)
		g.rejected(rt, sandbox.OriginPublic)
		admission.WriteRateLimited(w, refused, reqID)
		return
	}
	// Every answer from here on, a 401, the function's or an error,
	// carries the tightest limit the request was counted in (none on a
	// route and key without rates).
	shown.SetHeaders(w.Header())
	var ident *sandbox.Identity
	var body []byte
	if !rt.Public {
		// A signed webhook's body is read (within max_body) to check its
		// signature; other schemes are settled before the body is read.
		if ident, body, ok = g.authenticate(w, r, reqID, rt, fn); !ok {
			return
		}
		// A key the guard suspended is refused like a blocked address.
		if ident != nil && ident.KeyID != "" && g.cfg.Guard.Suspended(ident.KeyID) {
			writeError(w, http.StatusForbidden, httperr.MsgForbidden, reqID)
			return
		}
	}
	req := &sandbox.Request{
		Kind: sandbox.KindHTTP, RequestID: reqID, Method: r.Method, Path: r.URL.Path,
		Params: params, Headers: forwardHeaders(r.Header, rt), Identity: ident, Origin: sandbox.OriginOf(ident),
		Trace: span,
	}
	if r.URL.RawQuery != "" {
		// URL.Query allocates a map even for an empty query; the guest
		// sees no "query" field either way.
		req.Query = r.URL.Query()
	}
	admit.Query, admit.Headers, admit.Identity, admit.Origin = req.Query, req.Headers, ident, req.Origin
	admit.MaxBody = int64(fn.Spec.Limits.MaxBody)
	req.Trigger = rt.Name // the call graph's route (callgraph.RouteName)
	if ident != nil {
		var d ratelimit.Decision
		if d, refused = g.cfg.Admission.LimitCaller(r.Context(), admit); refused != nil {
			g.observe(guard.RateLimited, r, rt, ident)
			g.rejected(rt, sandbox.OriginOf(ident))
			admission.WriteRateLimited(w, refused, reqID)
			return
		}
		if !d.IsZero() {
			shown = shown.Tighter(d)
			shown.SetHeaders(w.Header())
		}
	}
	read := func(limit int64) ([]byte, error) {
		if body != nil {
			return body, nil // read (within the cap) for the webhook's signature
		}
		return readBody(w, r, limit)
	}
	if req.Body, refused = g.cfg.Admission.Admit(r.Context(), admit, read); refused != nil {
		if refused.Step == admission.StepSchema {
			g.observe(guard.SchemaViolation, r, rt, ident)
		}
		writeError(w, refused.Status, refused.Message, reqID)
		return
	}
	if strings.EqualFold(r.Header.Get(HeaderAsync), "true") {
		g.startAsync(w, r, reqID, rt, fn, req, ident)
		return
	}
	connlimit.ExtendForRun(w, r, fn.Spec.Limits.Timeout.Std())
	resp, err := g.cfg.Dispatcher.Invoke(r.Context(), fn, req)
	if err != nil {
		httperr.WriteErr(w, err, reqID)
		return
	}
	writeResponse(w, resp)
}

// noteGuard tells the guard, if any, of one signal from r's client.
func (g *Gateway) noteGuard(sig guard.Signal, r *http.Request) {
	if g.cfg.Guard != nil {
		g.cfg.Guard.Note(sig, g.clientAddr(r))
	}
}

// observe tells the guard of a refusal of r on route rt, from its client
// and (when it authenticated with one) its API key.
func (g *Gateway) observe(sig guard.Signal, r *http.Request, rt *route.Route, ident *sandbox.Identity) {
	if !g.cfg.Guard.Wants(sig) {
		return
	}
	e := guard.Event{Signal: sig, Remote: g.clientAddr(r), App: rt.App, Function: rt.Function, Route: rt.Name}
	if ident != nil {
		e.Key = ident.KeyID
	}
	g.cfg.Guard.Observe(e)
}

// clientAddr is the address the guard knows r's client by: the
// connection's, or behind a trusted proxy the one its X-Forwarded-For
// names.
func (g *Gateway) clientAddr(r *http.Request) string {
	return g.cfg.Proxies.ClientAddress(r.RemoteAddr, r.Header["X-Forwarded-For"])
}

// rejected counts a rate-limited request in the caller's usage.
func (g *Gateway) rejected(rt *route.Route, origin string) {
	if g.cfg.Rejected != nil {
		g.cfg.Rejected(rt.App, rt.Function, origin)
	}
}

// logPrivateProbe writes a security log line when a request the gateway
// does not serve would have matched a private route: someone outside knows
// (or guesses) an internal path. The answer stays the plain 404/405 of an
// undeclared route; only the log knows. It runs on misses alone and costs
// one more table match, so served requests pay nothing and a flood of
// misses no more than twice; it logs the route's pattern, never the raw
// path a client chose.
func (g *Gateway) logPrivateProbe(snap *registry.Snapshot, r *http.Request, reqID string) {
	rt, ok := snap.PrivateRoute(r.Method, r.URL.EscapedPath())
	if !ok {
		return
	}
	g.log.Warn("private route called from outside", logkey.Security, true, logkey.RequestID, reqID,
		logkey.App, rt.App, logkey.Function, rt.Function, logkey.Method, r.Method, logkey.Path, rt.Path, logkey.Remote, r.RemoteAddr)
}

// authenticate returns the caller's identity, or answers and returns false.
// The route's schemes are tried in the order it lists them, each only if
// the request carries its kind of credential; the first that verifies lets
// the request in. Every refusal looks the same to the client (401); the
// reason goes to the security log. A scheme that cannot verify at all (the
// key store or the issuer's keys unavailable) answers 503: fail closed.
// When an hmac check had to read the body, it is returned.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, reqID string, rt *route.Route, fn *registry.Function) (*sandbox.Identity, []byte, bool) {
	schemes := rt.Auth
	if len(schemes) == 0 {
		schemes = defaultAuth
	}
	reason := "missing credentials"
	failed, failedReason := metrics.SchemeNone, reason // the metric's labels: the last scheme tried, its reason alone
	failedKey := ""                                    // the id of an existing key presented with a wrong secret, revoked or expired
	var unavailable error
	for _, scheme := range schemes {
		ident, body, tried, err := g.verify(w, r, reqID, rt, fn, scheme)
		if !tried {
			continue
		}
		if err == nil {
			return ident, body, true
		}
		if errors.Is(err, errBodyAnswered) {
			return nil, nil, false
		}
		if !errors.Is(err, auth.ErrUnauthenticated) {
			unavailable = err
			continue
		}
		reason = auth.Reason(err)
		failed, failedReason = scheme, reason
		if scheme == manifest.AuthAPIKey && (reason == auth.ReasonWrongSecret || reason == auth.ReasonRevoked || reason == auth.ReasonExpired) {
			token, _ := auth.ParseBearer(r.Header.Get("Authorization"))
			failedKey = auth.KeyID(token)
		}
		if len(schemes) > 1 {
			reason = scheme + ": " + reason
		}
	}
	if unavailable != nil {
		g.log.Error("authentication unavailable", logkey.RequestID, reqID, logkey.App, rt.App, logkey.Function, rt.Function, logkey.Error, unavailable)
		writeError(w, http.StatusServiceUnavailable, "service unavailable", reqID)
		return nil, nil, false
	}
	g.log.Warn("authentication failed", logkey.Security, true, logkey.RequestID, reqID, logkey.App, rt.App,
		logkey.Function, rt.Function, logkey.Reason, reason, logkey.Remote, r.RemoteAddr, logkey.Method, r.Method, logkey.Path, rt.Path)
	g.cfg.Metrics.AuthFailure(failed, failedReason)
	if g.cfg.Guard != nil {
		g.cfg.Guard.Observe(guard.Event{Signal: guard.AuthFailure, Remote: g.clientAddr(r), Key: failedKey,
			App: rt.App, Function: rt.Function, Route: rt.Name})
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="aegis"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", reqID)
	return nil, nil, false
}

var defaultAuth = []string{manifest.AuthAPIKey}

// errBodyAnswered: reading a webhook's body failed and the answer (413,
// 400) has been written.
var errBodyAnswered = errors.New("request answered while reading the body")

// verify checks one scheme. tried is false when the request carries no
// credential of that kind.
func (g *Gateway) verify(w http.ResponseWriter, r *http.Request, reqID string, rt *route.Route, fn *registry.Function, scheme string) (ident *sandbox.Identity, body []byte, tried bool, err error) {
	ctx := r.Context()
	switch scheme {
	case manifest.AuthAPIKey:
		token, ok := auth.ParseBearer(r.Header.Get("Authorization"))
		if !ok || (auth.LooksLikeJWT(token) && slices.Contains(rt.Auth, manifest.AuthJWT)) {
			return nil, nil, false, nil
		}
		id, err := g.cfg.Keys.Verify(ctx, token)
		if err != nil {
			return nil, nil, true, err
		}
		return &sandbox.Identity{Scheme: scheme, Subject: id.KeyName, Scopes: id.Scopes,
			Rate: id.Rate, Burst: id.Burst, Budget: id.Budget, KeyID: id.KeyID}, nil, true, nil
	case manifest.AuthJWT:
		token, ok := auth.ParseBearerMax(r.Header.Get("Authorization"), auth.MaxJWTLen)
		if !ok || rt.JWT == nil || g.cfg.JWT == nil ||
			(!auth.LooksLikeJWT(token) && slices.Contains(rt.Auth, manifest.AuthAPIKey)) {
			return nil, nil, false, nil
		}
		c := rt.JWT
		id, err := g.cfg.JWT.Verify(ctx, token, auth.JWTConfig{
			Issuer: c.Issuer, Audience: c.Audience, Algorithms: c.Algorithms, Skew: c.Skew.Std(),
		})
		if err != nil {
			return nil, nil, true, err
		}
		return &sandbox.Identity{Scheme: scheme, Subject: id.Subject, Issuer: id.Issuer, Claims: id.Claims}, nil, true, nil
	case manifest.AuthHMAC:
		header := r.Header.Get(signatureHeader(rt))
		if header == "" || rt.HMAC == nil || g.cfg.Webhooks == nil {
			return nil, nil, false, nil
		}
		// The timestamp is checked before the body is read, so a stale or
		// unsigned request costs no read.
		if _, err := g.cfg.Webhooks.CheckTimestamp(header); err != nil {
			return nil, nil, true, err
		}
		body, err := readBody(w, r, int64(fn.Spec.Limits.MaxBody))
		if err != nil {
			writeBodyError(w, err, reqID)
			return nil, nil, true, errBodyAnswered
		}
		if err := g.cfg.Webhooks.Verify(ctx, rt.App, rt.HMAC.Secret, header, body); err != nil {
			return nil, nil, true, err
		}
		return &sandbox.Identity{Scheme: scheme, Subject: rt.HMAC.Secret}, body, true, nil
	}
	return nil, nil, false, nil
}

// signatureHeader is the header a route's webhook signature travels in.
func signatureHeader(rt *route.Route) string {
	if rt.HMAC != nil && rt.HMAC.Header != "" {
		return rt.HMAC.Header
	}
	return manifest.DefaultHMACHeader
}

// readBody reads r's body, which may not exceed limit bytes: a declared
// length over it is refused before anything is read. Going over wraps
// aegis.ErrLimitExceeded, as admission expects.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("declared body of %d bytes over max_body of %d: %w", r.ContentLength, limit, aegis.ErrLimitExceeded)
	}
	body, err := readAtMost(w, r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("body over max_body of %d: %w", limit, aegis.ErrLimitExceeded)
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return body, nil
}

// writeBodyError answers a body readBody refused, as admission would.
func writeBodyError(w http.ResponseWriter, err error, reqID string) {
	if errors.Is(err, aegis.ErrLimitExceeded) {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large", reqID)
		return
	}
	writeError(w, http.StatusBadRequest, "could not read request body", reqID)
}

// presizeBody is the largest declared body read straight into a buffer of
// its size. A larger one is read into a buffer growing as it arrives, so a
// client declaring a large length and sending nothing cannot make the
// gateway allocate it up front.
const presizeBody = 64 << 10

// readAtMost reads r's body, which may not exceed limit bytes; the caller
// has refused a declared length over it. A small body of declared length
// is read into one buffer of exactly its size: net/http ends a body at its
// declared length, so it cannot overflow, and the general path's limiting
// reader and 512-byte starting buffer are not needed.
func readAtMost(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength >= 0 && r.ContentLength <= presizeBody {
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// isHopHeader reports the headers never forwarded in either direction (in
// canonical form). A switch rather than a map: it runs for every header of
// every request and response, and compares without hashing.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
		return true
	}
	return false
}

// forwardHeaders copies request headers for the guest, minus hop-by-hop
// headers and the caller's credentials: functions never see platform keys,
// bearer tokens or webhook signatures, only the identity verified from them.
func forwardHeaders(h http.Header, rt *route.Route) map[string][]string {
	// The default signature header is a constant in canonical form; only a
	// route's own needs canonicalizing.
	sig := manifest.DefaultHMACHeader
	if rt.HMAC != nil && rt.HMAC.Header != "" {
		sig = http.CanonicalHeaderKey(rt.HMAC.Header)
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if isHopHeader(k) || k == "Authorization" || k == HeaderAsync || k == sig || k == manifest.DefaultHMACHeader {
			continue
		}
		out[k] = v
	}
	return out
}

// Header values the gateway sets on most responses, shared rather than
// allocated per response. Sharing is safe: net/http only reads them, Set
// replaces a value, and Add appends to a full slice, which copies it.
var (
	octetStream = []string{"application/octet-stream"}
	noSniff     = []string{"nosniff"}
)

func writeResponse(w http.ResponseWriter, resp *sandbox.Response) {
	h := w.Header()
	for k, v := range resp.Headers {
		ck := http.CanonicalHeaderKey(k)
		if isHopHeader(ck) || ck == "X-Request-Id" || !validHeaderName(ck) {
			continue
		}
		if (ck == "Ratelimit" || ck == "Ratelimit-Policy") && h[ck] != nil {
			continue // the platform's own limit, set before the function ran
		}
		h[ck] = sandbox.FieldLines(v) // what Set does, one line or several
	}
	if h.Get("Content-Type") == "" && len(resp.Body) > 0 {
		h["Content-Type"] = octetStream
	}
	h["X-Content-Type-Options"] = noSniff
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 100 || status > 599 {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func writeError(w http.ResponseWriter, status int, msg, reqID string) {
	httperr.Write(w, status, msg, reqID)
}

// Close stops taking queued invocations and waits for those running,
// cancelled: each goes back to the queue for another server. It is safe
// to call twice.
func (g *Gateway) Close() {
	g.closeOnce.Do(func() {
		g.cancelBg()
		g.haltQueue()
	})
}

// asyncTimeout bounds a background invocation beyond the function's own timeout.
const asyncTimeout = 10 * time.Minute
