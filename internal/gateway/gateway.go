// Package gateway is the HTTP ingress for functions: it routes a request by
// the active manifests, authenticates it (deny by default), caps its body,
// invokes the function and turns every failure into a sanitized JSON error
// that carries the request id and nothing internal.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// Config wires a Gateway.
type Config struct {
	Snapshot   func() *registry.Snapshot
	Keys       *auth.Keys
	Dispatcher *dispatch.Dispatcher
	Async      *AsyncStore
	Logger     *slog.Logger
	// MaxAsync bounds invocations running in the background (default 256).
	MaxAsync int
}

// Gateway is an http.Handler.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	asyncSem chan struct{}
	bg       context.Context
	cancelBg context.CancelFunc
}

// HeaderAsync asks for an asynchronous invocation.
const HeaderAsync = "X-Aegis-Async"

// New returns a gateway.
func New(cfg Config) *Gateway {
	if cfg.MaxAsync <= 0 {
		cfg.MaxAsync = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Gateway{cfg: cfg, log: cfg.Logger, asyncSem: make(chan struct{}, cfg.MaxAsync), bg: bg, cancelBg: cancel}
}

// ServeHTTP handles one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get("X-Request-Id")
	if !telemetry.ValidRequestID(reqID) {
		reqID = telemetry.NewRequestID()
	}
	w.Header().Set("X-Request-Id", reqID)

	if strings.HasPrefix(r.URL.Path, "/_aegis/") {
		g.serveInternal(w, r, reqID)
		return
	}
	snap := g.cfg.Snapshot()
	rt, params, err := snap.Routes.Match(r.Method, r.URL.EscapedPath())
	if err != nil {
		var mna *route.MethodNotAllowedError
		if errors.As(err, &mna) {
			w.Header().Set("Allow", strings.Join(mna.Allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method not allowed", reqID)
			return
		}
		writeError(w, http.StatusNotFound, "not found", reqID)
		return
	}
	fn, ok := snap.Function(rt.App, rt.Function)
	if !ok {
		writeError(w, http.StatusNotFound, "not found", reqID)
		return
	}
	var ident *auth.Identity
	if !rt.Public {
		if ident = g.authenticate(w, r, reqID, rt); ident == nil {
			return
		}
	}
	body, ok := g.readBody(w, r, reqID, fn)
	if !ok {
		return
	}
	req := &sandbox.Request{
		Kind: sandbox.KindHTTP, RequestID: reqID, Method: r.Method, Path: r.URL.Path,
		Params: params, Headers: forwardHeaders(r.Header), Body: body,
	}
	if r.URL.RawQuery != "" {
		// URL.Query allocates a map even for an empty query; the guest
		// sees no "query" field either way.
		req.Query = r.URL.Query()
	}
	if strings.EqualFold(r.Header.Get(HeaderAsync), "true") {
		g.startAsync(w, reqID, fn, req, ident)
		return
	}
	resp, err := g.cfg.Dispatcher.Invoke(r.Context(), fn, req)
	if err != nil {
		status, msg := classify(err)
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, status, msg, reqID)
		return
	}
	writeResponse(w, resp)
}

// authenticate returns the caller's identity, or answers 401 and returns nil.
// Every failure looks the same to the client; the reason goes to the log.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, reqID string, rt *route.Route) *auth.Identity {
	token, ok := auth.ParseBearer(r.Header.Get("Authorization"))
	var ident *auth.Identity
	var err error
	if !ok {
		err = auth.ErrUnauthenticated
	} else {
		ident, err = g.cfg.Keys.Verify(r.Context(), token)
	}
	if err == nil {
		return ident
	}
	reason := "missing credentials"
	if ok {
		reason = auth.Reason(err)
	}
	if !errors.Is(err, auth.ErrUnauthenticated) {
		// The key store failed: fail closed, but as unavailable, not as a bad key.
		g.log.Error("authentication unavailable", "request_id", reqID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "service unavailable", reqID)
		return nil
	}
	g.log.Warn("authentication failed", "security", true, "request_id", reqID, "app", rt.App,
		"function", rt.Function, "reason", reason, "remote", r.RemoteAddr, "method", r.Method, "path", rt.Path)
	w.Header().Set("WWW-Authenticate", `Bearer realm="aegis"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", reqID)
	return nil
}

func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, reqID string, fn *registry.Function) ([]byte, bool) {
	limit := int64(fn.Spec.Limits.MaxBody)
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large", reqID)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large", reqID)
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "could not read request body", reqID)
		return nil, false
	}
	return body, true
}

// classify maps an invocation error to a status and a message safe for clients.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, sandbox.ErrTimeout):
		return http.StatusGatewayTimeout, "function timed out"
	case errors.Is(err, sandbox.ErrResponseTooLarge):
		return http.StatusBadGateway, "function response too large"
	case errors.Is(err, sandbox.ErrMemory), errors.Is(err, sandbox.ErrTrap):
		return http.StatusInternalServerError, "function failed"
	case errors.Is(err, aegis.ErrLimitExceeded):
		return http.StatusTooManyRequests, "function is at its concurrency limit"
	case errors.Is(err, aegis.ErrUnavailable):
		return http.StatusServiceUnavailable, "service unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request cancelled"
	default:
		return http.StatusInternalServerError, "function failed"
	}
}

// hopHeaders are never forwarded in either direction.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

// forwardHeaders copies request headers for the guest, minus hop-by-hop
// headers and the caller's credentials: functions never see platform keys.
func forwardHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if hopHeaders[k] || k == "Authorization" || k == HeaderAsync {
			continue
		}
		out[k] = v
	}
	return out
}

func writeResponse(w http.ResponseWriter, resp *sandbox.Response) {
	h := w.Header()
	for k, v := range resp.Headers {
		ck := http.CanonicalHeaderKey(k)
		if hopHeaders[ck] || ck == "X-Request-Id" || !validHeaderName(ck) {
			continue
		}
		h.Set(ck, v)
	}
	if h.Get("Content-Type") == "" && len(resp.Body) > 0 {
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set("X-Content-Type-Options", "nosniff")
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

// ErrorBody is the only shape of error a client ever sees.
type ErrorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

func writeError(w http.ResponseWriter, status int, msg, reqID string) {
	WriteError(w, status, msg, reqID)
}

// WriteError writes {"error", "request_id"} with status; shared with the admin API.
func WriteError(w http.ResponseWriter, status int, msg, reqID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: msg, RequestID: reqID})
}

// Close cancels background (async) invocations.
func (g *Gateway) Close() { g.cancelBg() }

// asyncTimeout bounds a background invocation beyond the function's own timeout.
const asyncTimeout = 10 * time.Minute
