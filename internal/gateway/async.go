package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// ResultStore keeps async invocation results (a JetStream KV bucket with a
// TTL). A record is created once, failing with aegis.ErrConflict when its
// key exists, and then only updated at the revision its writer holds: no
// write ever lands on someone else's record.
type ResultStore interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
}

// AsyncStore records async invocations and their results.
type AsyncStore struct{ store ResultStore }

// NewAsyncStore wraps a result store.
func NewAsyncStore(s ResultStore) *AsyncStore { return &AsyncStore{store: s} }

// AsyncResult is what GET /_aegis/invocations/{id} answers.
type AsyncResult struct {
	Status   string         `json:"status"` // "pending", "done", "failed"
	Owner    string         `json:"-"`
	Response *AsyncResponse `json:"response,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// AsyncResponse is the function's answer to an async invocation.
type AsyncResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body"` // base64 in JSON
}

// stored adds what the client never sees: the owner and, for a JWT owner,
// how the route checked the token, so a reader's token is checked the same
// way.
type stored struct {
	AsyncResult
	Owner string    `json:"owner"`
	JWT   *ownerJWT `json:"jwt,omitempty"`
}

// ownerJWT is the route's JWT configuration when the result was asked for.
type ownerJWT struct {
	Issuer     string        `json:"issuer"`
	Audience   string        `json:"audience"`
	Algorithms []string      `json:"algorithms"`
	Skew       time.Duration `json:"skew"`
}

// create records a new pending invocation under a fresh id the server
// mints, and returns the id and the record's revision. Ids are never taken
// from a client: one that could choose an id could aim at someone else's
// record. Creation refuses an existing key all the same, so even a
// collision of random ids overwrites nothing; it is retried once with
// another id.
func (a *AsyncStore) create(ctx context.Context, r AsyncResult, jwt *ownerJWT) (string, uint64, error) {
	b, err := encodeResult(r, jwt)
	if err != nil {
		return "", 0, err
	}
	for range 2 {
		id := telemetry.NewID()
		rev, err := a.store.Create(ctx, "inv."+id, b)
		if errors.Is(err, aegis.ErrConflict) {
			continue
		}
		if err != nil {
			return "", 0, fmt.Errorf("record invocation: %w", err)
		}
		return id, rev, nil
	}
	return "", 0, fmt.Errorf("record invocation: %w: fresh ids taken", aegis.ErrConflict)
}

// finish replaces the pending record created at rev with the outcome.
func (a *AsyncStore) finish(ctx context.Context, id string, rev uint64, r AsyncResult, jwt *ownerJWT) error {
	b, err := encodeResult(r, jwt)
	if err != nil {
		return err
	}
	if _, err := a.store.Update(ctx, "inv."+id, b, rev); err != nil {
		return fmt.Errorf("record result of invocation %s: %w", id, err)
	}
	return nil
}

// errNoRecord: a queued invocation whose record is gone (expired, or
// never written by this platform).
var errNoRecord = errors.New("no invocation record")

// settled reports whether the invocation created at rev has its result:
// its record was updated since, or says so.
func (a *AsyncStore) settled(ctx context.Context, id string, rev uint64) (bool, error) {
	b, cur, err := a.store.Get(ctx, "inv."+id)
	if errors.Is(err, aegis.ErrNotFound) {
		return false, errNoRecord
	}
	if err != nil {
		return false, fmt.Errorf("read invocation %s: %w", id, err)
	}
	if cur != rev {
		return true, nil
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return false, fmt.Errorf("decode invocation %s: %w", id, err)
	}
	return s.Status != "pending", nil
}

func encodeResult(r AsyncResult, jwt *ownerJWT) ([]byte, error) {
	return json.Marshal(stored{AsyncResult: r, Owner: r.Owner, JWT: jwt})
}

func (a *AsyncStore) get(ctx context.Context, id string) (*AsyncResult, *ownerJWT, error) {
	b, _, err := a.store.Get(ctx, "inv."+id)
	if err != nil {
		return nil, nil, err
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("decode invocation %s: %w", id, err)
	}
	s.AsyncResult.Owner = s.Owner
	return &s.AsyncResult, s.JWT, nil
}

// ownerOf names who may read an async result: an API key by its name, a
// JWT bearer by issuer and subject ("jwt:…"; key names cannot hold ':'). A
// signed webhook's sender ("hmac:…") matches neither, so such results
// cannot be read back: webhooks are delivered, not polled, and readable by
// no one is safer than readable by everyone.
func ownerOf(ident *sandbox.Identity) string {
	switch {
	case ident == nil:
		return "" // public route: anyone holding the id may read the result
	case ident.Scheme == manifest.AuthAPIKey:
		return ident.Subject
	case ident.Scheme == manifest.AuthJWT:
		return "jwt:" + ident.Issuer + " " + ident.Subject
	default:
		return ident.Scheme + ":" + ident.Subject
	}
}

// startAsync records the invocation as pending, queues it and answers
// 202; whichever server takes it from the queue runs it (queue.go). The
// slot it takes in this server's bounds is held until the result is
// final, wherever it ran (heldSlots).
func (g *Gateway) startAsync(w http.ResponseWriter, r *http.Request, reqID string, rt *route.Route, fn *registry.Function, req *sandbox.Request, ident *sandbox.Identity) {
	if g.cfg.Async == nil || g.cfg.Queue == nil {
		writeError(w, http.StatusNotImplemented, "asynchronous invocation is not enabled", reqID)
		return
	}
	if len(req.Body) > MaxQueuedBody {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large for an asynchronous invocation", reqID)
		return
	}
	caller, function := req.Origin, rt.App+"/"+rt.Function
	if queue, bound := g.async.acquire(caller, function); queue != "" {
		g.refuseFull(w, r, reqID, rt.App, rt.Function, caller, queue, bound)
		return
	}
	owner := ownerOf(ident)
	var jwt *ownerJWT
	if ident != nil && ident.Scheme == manifest.AuthJWT && rt.JWT != nil {
		c := rt.JWT
		jwt = &ownerJWT{Issuer: c.Issuer, Audience: c.Audience, Algorithms: c.Algorithms, Skew: c.Skew.Std()}
	}
	// Not the request's context: a client hanging up after sending must
	// not leave a record without its queued invocation.
	ctx := context.WithoutCancel(r.Context())
	invID, rev, err := g.cfg.Async.create(ctx, AsyncResult{Status: "pending", Owner: owner}, jwt)
	if err != nil {
		g.async.release(caller, function)
		g.log.Error("async invocation not recorded", logkey.RequestID, reqID, logkey.Error, err)
		writeError(w, http.StatusServiceUnavailable, "service unavailable", reqID)
		return
	}
	g.hold(invID, caller, function)
	if err := g.enqueue(ctx, newQueuedJob(invID, rev, rt.App, rt.Function, owner, jwt, req)); err != nil {
		// Nobody will run it: its record says so rather than stay pending.
		g.log.Error("async invocation not queued", logkey.RequestID, reqID, logkey.InvocationID, invID, logkey.Error, err)
		if ferr := g.cfg.Async.finish(ctx, invID, rev, AsyncResult{Status: "failed", Owner: owner, Error: "service unavailable"}, jwt); ferr != nil {
			g.log.Error("async result not recorded", logkey.RequestID, reqID, logkey.InvocationID, invID, logkey.Error, ferr)
		}
		g.releaseHeld(invID)
		writeError(w, http.StatusServiceUnavailable, "service unavailable", reqID)
		return
	}
	g.log.Debug("async invocation accepted", logkey.RequestID, reqID, logkey.InvocationID, invID, logkey.App, rt.App, logkey.Function, rt.Function)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/_aegis/invocations/"+invID)
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"invocation_id": invID, "request_id": reqID})
}

// serveInternal answers the gateway's own endpoints under /_aegis/.
func (g *Gateway) serveInternal(w http.ResponseWriter, r *http.Request, reqID string) {
	id, ok := strings.CutPrefix(r.URL.Path, "/_aegis/invocations/")
	if !ok || r.Method != http.MethodGet || g.cfg.Async == nil || !telemetry.IsID(id) {
		writeError(w, http.StatusNotFound, "not found", reqID)
		return
	}
	res, jwt, err := g.cfg.Async.get(r.Context(), id)
	if err != nil && !errors.Is(err, aegis.ErrNotFound) {
		writeError(w, http.StatusServiceUnavailable, "service unavailable", reqID)
		return
	}
	// A result owned by an API key needs that key, one owned by a JWT
	// bearer a token of the same issuer and subject, checked as the route
	// checked the first; an unknown id and a result owned by someone else
	// look the same (404).
	if res != nil && res.Owner != "" {
		reader, ok := g.asyncReader(r, jwt)
		if !ok {
			g.cfg.Metrics.AuthFailure(metrics.SchemeAsyncResult, metrics.ReasonUnverified)
			g.noteGuard(guard.AuthFailure, r)
			writeError(w, http.StatusUnauthorized, "unauthorized", reqID)
			return
		}
		if reader != res.Owner {
			res = nil
		}
	}
	if res == nil {
		writeError(w, http.StatusNotFound, "not found", reqID)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(res)
}

// asyncReader is who is asking for a result, named as ownerOf names an
// owner: a valid API key's name or, when the result's route took JWTs, a
// valid token's issuer and subject. False when the request proves neither.
func (g *Gateway) asyncReader(r *http.Request, jwt *ownerJWT) (string, bool) {
	token, ok := auth.ParseBearerMax(r.Header.Get("Authorization"), auth.MaxJWTLen)
	if !ok {
		return "", false
	}
	if jwt != nil && g.cfg.JWT != nil && auth.LooksLikeJWT(token) {
		id, err := g.cfg.JWT.Verify(r.Context(), token, auth.JWTConfig{
			Issuer: jwt.Issuer, Audience: jwt.Audience, Algorithms: jwt.Algorithms, Skew: jwt.Skew,
		})
		if err != nil {
			return "", false
		}
		return ownerOf(&sandbox.Identity{Scheme: manifest.AuthJWT, Issuer: id.Issuer, Subject: id.Subject}), true
	}
	ident, err := g.cfg.Keys.Verify(r.Context(), token)
	if err != nil {
		return "", false
	}
	return ident.KeyName, true
}
