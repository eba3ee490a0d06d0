package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

// ResultStore keeps async invocation results (a JetStream KV bucket with a TTL).
type ResultStore interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Put(ctx context.Context, key string, v []byte) (uint64, error)
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

// stored adds the owner, which the client never sees.
type stored struct {
	AsyncResult
	Owner string `json:"owner"`
}

func (a *AsyncStore) put(ctx context.Context, id string, r AsyncResult) error {
	b, err := json.Marshal(stored{AsyncResult: r, Owner: r.Owner})
	if err != nil {
		return err
	}
	_, err = a.store.Put(ctx, "inv."+id, b)
	return err
}

func (a *AsyncStore) get(ctx context.Context, id string) (*AsyncResult, error) {
	b, _, err := a.store.Get(ctx, "inv."+id)
	if err != nil {
		return nil, err
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode invocation %s: %w", id, err)
	}
	s.AsyncResult.Owner = s.Owner
	return &s.AsyncResult, nil
}

// ownerOf names who may read an async result. An API key's name is checked
// by serveInternal; "jwt:…" and "hmac:…" owners match no key name (names
// cannot hold ':'), so those results cannot be read back by anyone yet,
// which is safer than readable by everyone.
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

// startAsync answers 202 at once and runs the invocation in the background.
func (g *Gateway) startAsync(w http.ResponseWriter, reqID string, fn *registry.Function, req *sandbox.Request, ident *sandbox.Identity) {
	if g.cfg.Async == nil {
		writeError(w, http.StatusNotImplemented, "asynchronous invocation is not enabled", reqID)
		return
	}
	select {
	case g.asyncSem <- struct{}{}:
	default:
		writeError(w, http.StatusServiceUnavailable, "too many asynchronous invocations in flight", reqID)
		return
	}
	owner := ownerOf(ident)
	if err := g.cfg.Async.put(context.Background(), reqID, AsyncResult{Status: "pending", Owner: owner}); err != nil {
		<-g.asyncSem
		g.log.Error("async invocation not recorded", "request_id", reqID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "service unavailable", reqID)
		return
	}
	go func() {
		defer func() { <-g.asyncSem }()
		ctx, cancel := context.WithTimeout(g.bg, asyncTimeout)
		defer cancel()
		res := AsyncResult{Status: "done", Owner: owner}
		resp, err := g.cfg.Dispatcher.Invoke(ctx, fn, req)
		if err != nil {
			_, msg := classify(err)
			res.Status, res.Error = "failed", msg
		} else {
			st := resp.Status
			if st == 0 {
				st = http.StatusOK
			}
			res.Response = &AsyncResponse{Status: st, Headers: resp.Headers, Body: resp.Body}
		}
		if err := g.cfg.Async.put(context.Background(), reqID, res); err != nil {
			g.log.Error("async result not recorded", "request_id", reqID, "err", err)
		}
	}()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/_aegis/invocations/"+reqID)
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"invocation_id": reqID, "request_id": reqID})
}

// serveInternal answers the gateway's own endpoints under /_aegis/.
func (g *Gateway) serveInternal(w http.ResponseWriter, r *http.Request, reqID string) {
	id, ok := strings.CutPrefix(r.URL.Path, "/_aegis/invocations/")
	if !ok || r.Method != http.MethodGet || g.cfg.Async == nil {
		writeError(w, http.StatusNotFound, "not found", reqID)
		return
	}
	res, err := g.cfg.Async.get(r.Context(), id)
	if err != nil && !errors.Is(err, aegis.ErrNotFound) {
		writeError(w, http.StatusServiceUnavailable, "service unavailable", reqID)
		return
	}
	// A result owned by an API key needs that key; an unknown id and a
	// result owned by someone else look the same (404).
	if res != nil && res.Owner != "" {
		token, ok := auth.ParseBearer(r.Header.Get("Authorization"))
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", reqID)
			return
		}
		ident, verr := g.cfg.Keys.Verify(r.Context(), token)
		if verr != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", reqID)
			return
		}
		if ident.KeyName != res.Owner {
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
