// Package admin serves the admin REST API (docs/admin-api.md) that the CLI
// uses: deploys, rollbacks, keys, logs, dead letters. Every call but the
// health check needs the admin token; every answer to an error is the same
// sanitized JSON shape the gateway uses.
package admin

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/gateway"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/manifest"
)

// Config wires the admin API.
type Config struct {
	Token    string
	Registry *registry.Registry
	Keys     *auth.Keys
	// WebhookSecrets sign the requests of routes whose auth lists "hmac".
	WebhookSecrets *auth.WebhookSecrets
	Bus            *bus.Bus
	Logs           *funclog.Log
	Dispatcher     *dispatch.Dispatcher
	Logger         *slog.Logger
}

// API is the admin http.Handler.
type API struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

const maxJSONBody = 2 << 20

// New builds the API.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	a.mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.handle("HEAD /v1/modules/{sha}", a.hasModule)
	a.handle("PUT /v1/modules/{sha}", a.putModule)
	a.handle("POST /v1/apps/{app}/deploy", a.deploy)
	a.handle("POST /v1/apps/{app}/rollback", a.rollback)
	a.handle("GET /v1/apps", a.apps)
	a.handle("GET /v1/functions", a.functions)
	a.handle("GET /v1/routes", a.routes)
	a.handle("POST /v1/keys", a.createKey)
	a.handle("GET /v1/keys", a.listKeys)
	a.handle("DELETE /v1/keys/{name}", a.revokeKey)
	a.handle("POST /v1/keys/{name}/rotate", a.rotateKey)
	a.handle("POST /v1/apps/{app}/webhook-secrets/{name}", a.createWebhookSecret)
	a.handle("POST /v1/apps/{app}/functions/{fn}/invoke", a.invoke)
	a.handle("GET /v1/logs", a.logs)
	a.handle("GET /v1/dlq", a.dlq)
	a.handle("POST /v1/dlq/{id}/replay", a.replay)
	return a
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, reqID string) error

// handle adds the admin token check, the request id and error mapping.
func (a *API) handle(pattern string, h handlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		reqID := telemetry.NewRequestID()
		w.Header().Set("X-Request-Id", reqID)
		token, ok := auth.ParseBearer(r.Header.Get("Authorization"))
		if !ok || !auth.AdminTokenMatches(a.cfg.Token, token) {
			a.log.Warn("admin authentication failed", "security", true, "request_id", reqID,
				"remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="aegis-admin"`)
			gateway.WriteError(w, http.StatusUnauthorized, "unauthorized", reqID)
			return
		}
		if err := h(w, r, reqID); err != nil {
			status, msg := a.classify(err)
			if status >= 500 {
				a.log.Error("admin call failed", "request_id", reqID, "method", r.Method, "path", r.URL.Path, "err", err)
			}
			gateway.WriteError(w, status, msg, reqID)
		}
	})
}

// userError is an error whose message is written for the caller (a bad
// manifest, a compile failure). Anything else gets a generic message.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

func (a *API) classify(err error) (int, string) {
	var ue *userError
	switch {
	case errors.As(err, &ue):
		return ue.status, ue.msg
	case errors.Is(err, aegis.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, aegis.ErrUnavailable):
		return http.StatusServiceUnavailable, "service unavailable"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

func (a *API) hasModule(w http.ResponseWriter, r *http.Request, _ string) error {
	ok, err := a.cfg.Registry.HasModule(r.Context(), r.PathValue("sha"))
	if errors.Is(err, aegis.ErrInvalidArgument) {
		w.WriteHeader(http.StatusBadRequest)
		return nil
	}
	if err != nil {
		return err
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) putModule(w http.ResponseWriter, r *http.Request, _ string) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, registry.MaxModuleSize))
	if err != nil {
		return &userError{http.StatusRequestEntityTooLarge, "module larger than 64 MiB"}
	}
	sum := r.PathValue("sha")
	if err := a.cfg.Registry.PutModule(r.Context(), sum, data); err != nil {
		if errors.Is(err, aegis.ErrInvalidArgument) || errors.Is(err, aegis.ErrLimitExceeded) {
			return &userError{http.StatusBadRequest, err.Error()}
		}
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"sha256": sum})
	return nil
}

type deployRequest struct {
	Manifest string            `json:"manifest"`
	File     string            `json:"file"`
	Modules  map[string]string `json:"modules"`
}

// AppInfo describes one active app.
type AppInfo struct {
	App        string    `json:"app"`
	Version    string    `json:"version"`
	Functions  []string  `json:"functions"`
	DeployedAt time.Time `json:"deployed_at"`
}

func appInfo(app *registry.App) AppInfo {
	return AppInfo{App: app.Name, Version: app.VersionLabel(), Functions: app.Manifest.FunctionNames(), DeployedAt: app.DeployedAt}
}

func (a *API) deploy(w http.ResponseWriter, r *http.Request, _ string) error {
	var req deployRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	app, err := a.cfg.Registry.Deploy(r.Context(), registry.DeployRequest{
		App: r.PathValue("app"), File: req.File, Manifest: []byte(req.Manifest), Modules: req.Modules,
	})
	if err != nil {
		return deployError(err)
	}
	writeJSON(w, http.StatusOK, appInfo(app))
	return nil
}

// deployError maps a refused deploy to a status with a message that helps
// the author fix it: manifest problems (400), modules that do not compile or
// import unknown host functions (422), route conflicts (409).
func deployError(err error) error {
	var merrs manifest.Errors
	var merr *manifest.Error
	switch {
	case errors.As(err, &merrs), errors.As(err, &merr):
		return &userError{http.StatusBadRequest, err.Error()}
	case errors.Is(err, sandbox.ErrUnknownImport), errors.Is(err, sandbox.ErrInvalidModule):
		return &userError{http.StatusUnprocessableEntity, err.Error()}
	case errors.Is(err, aegis.ErrConflict):
		return &userError{http.StatusConflict, err.Error()}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusBadRequest, err.Error()}
	}
	return err
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request, _ string) error {
	app, err := a.cfg.Registry.Rollback(r.Context(), r.PathValue("app"))
	if err != nil {
		if errors.Is(err, aegis.ErrConflict) {
			return &userError{http.StatusConflict, "no previous version to roll back to"}
		}
		if errors.Is(err, aegis.ErrNotFound) {
			return &userError{http.StatusNotFound, "app not found"}
		}
		return deployError(err)
	}
	writeJSON(w, http.StatusOK, appInfo(app))
	return nil
}

func (a *API) apps(w http.ResponseWriter, r *http.Request, _ string) error {
	snap := a.cfg.Registry.Snapshot()
	out := []AppInfo{}
	for _, name := range snap.AppNames() {
		out = append(out, appInfo(snap.Apps[name]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// FunctionInfo describes one active function.
type FunctionInfo struct {
	App       string             `json:"app"`
	Function  string             `json:"function"`
	Version   string             `json:"version"`
	SHA256    string             `json:"sha256"`
	Triggers  []manifest.Trigger `json:"triggers"`
	Isolation string             `json:"isolation"`
}

func (a *API) functions(w http.ResponseWriter, r *http.Request, _ string) error {
	snap := a.cfg.Registry.Snapshot()
	out := []FunctionInfo{}
	for _, name := range snap.AppNames() {
		app := snap.Apps[name]
		for _, fn := range app.Manifest.FunctionNames() {
			f := app.Functions[fn]
			out = append(out, FunctionInfo{App: name, Function: fn, Version: f.Version, SHA256: f.SHA256,
				Triggers: f.Spec.Triggers, Isolation: string(f.Spec.Isolation)})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// RouteInfo describes one gateway route.
type RouteInfo struct {
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	App      string   `json:"app"`
	Function string   `json:"function"`
	Public   bool     `json:"public"`
	Auth     []string `json:"auth"`
}

func (a *API) routes(w http.ResponseWriter, r *http.Request, _ string) error {
	snap := a.cfg.Registry.Snapshot()
	out := []RouteInfo{}
	for _, name := range snap.AppNames() {
		app := snap.Apps[name]
		for _, fn := range app.Manifest.FunctionNames() {
			for _, t := range app.Manifest.Functions[fn].Triggers {
				if t.HTTP != nil {
					out = append(out, RouteInfo{Method: t.HTTP.Method, Path: t.HTTP.Path, App: name, Function: fn, Public: t.HTTP.Public, Auth: t.HTTP.Auth})
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request, _ string) error {
	var req struct {
		Name      string            `json:"name"`
		Scopes    []string          `json:"scopes"`
		ExpiresIn string            `json:"expires_in"`
		Labels    map[string]string `json:"labels"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	opts := auth.KeyOptions{Scopes: req.Scopes, Labels: req.Labels}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return &userError{http.StatusBadRequest, "expires_in must be a positive duration such as \"720h\""}
		}
		opts.ExpiresIn = d
	}
	key, err := a.cfg.Keys.CreateWithOptions(r.Context(), req.Name, opts)
	switch {
	case errors.Is(err, aegis.ErrConflict):
		return &userError{http.StatusConflict, "a key named " + strconv.Quote(req.Name) + " already exists"}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusBadRequest, "key name must be 1-64 characters of A-Z a-z 0-9 _ . -; scopes \"app\" or \"app/function\"; at most 32 labels, keys 1-63 of A-Z a-z 0-9 _ . -, values up to 256 bytes"}
	case err != nil:
		return err
	}
	a.log.Info("api key created", "key_name", req.Name, "scopes", req.Scopes, "expires_in", req.ExpiresIn)
	writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "key": key})
	return nil
}

// rotateKey gives a key a new secret; the old one keeps working for the
// overlap (default none), so callers can switch without a gap.
func (a *API) rotateKey(w http.ResponseWriter, r *http.Request, _ string) error {
	name := r.PathValue("name")
	var req struct {
		Overlap string `json:"overlap"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	var overlap time.Duration
	if req.Overlap != "" {
		d, err := time.ParseDuration(req.Overlap)
		if err != nil || d < 0 {
			return &userError{http.StatusBadRequest, "overlap must be a duration such as \"24h\""}
		}
		overlap = d
	}
	key, err := a.cfg.Keys.Rotate(r.Context(), name, overlap)
	switch {
	case errors.Is(err, aegis.ErrNotFound), errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusNotFound, "no key named " + strconv.Quote(name)}
	case errors.Is(err, aegis.ErrConflict):
		return &userError{http.StatusConflict, "key " + strconv.Quote(name) + " is revoked"}
	case err != nil:
		return err
	}
	a.log.Info("api key rotated", "key_name", name, "overlap", overlap.String())
	writeJSON(w, http.StatusCreated, map[string]string{"name": name, "key": key})
	return nil
}

// createWebhookSecret makes a signing secret for an app's hmac routes and
// answers it once. The app need not be deployed yet, so a secret can exist
// before the manifest that names it.
func (a *API) createWebhookSecret(w http.ResponseWriter, r *http.Request, _ string) error {
	app, name := r.PathValue("app"), r.PathValue("name")
	secret, err := a.cfg.WebhookSecrets.Create(r.Context(), app, name)
	switch {
	case errors.Is(err, aegis.ErrConflict):
		return &userError{http.StatusConflict, "app " + strconv.Quote(app) + " already has a webhook secret named " + strconv.Quote(name)}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusBadRequest, "app must be a valid app name and the secret name 1-64 characters of A-Z a-z 0-9 _ -"}
	case err != nil:
		return err
	}
	a.log.Info("webhook secret created", "app", app, "secret_name", name)
	writeJSON(w, http.StatusCreated, map[string]string{"app": app, "name": name, "secret": secret})
	return nil
}

// keyGeneration is a rotated key's previous secret, shown while it still
// verifies.
type keyGeneration struct {
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, _ string) error {
	keys, err := a.cfg.Keys.List(r.Context())
	if err != nil {
		return err
	}
	type keyInfo struct {
		Name       string            `json:"name"`
		CreatedAt  time.Time         `json:"created_at"`
		Revoked    bool              `json:"revoked"`
		RevokedAt  *time.Time        `json:"revoked_at,omitempty"`
		Scopes     []string          `json:"scopes,omitempty"`
		ExpiresAt  *time.Time        `json:"expires_at,omitempty"`
		Expired    bool              `json:"expired,omitempty"`
		Labels     map[string]string `json:"labels,omitempty"`
		LastUsedAt *time.Time        `json:"last_used_at,omitempty"`
		Previous   *keyGeneration    `json:"previous,omitempty"`
	}
	now := time.Now()
	out := make([]keyInfo, 0, len(keys))
	for _, k := range keys {
		ki := keyInfo{
			Name: k.Name, CreatedAt: k.CreatedAt, Revoked: k.Revoked, RevokedAt: k.RevokedAt,
			Scopes: k.Scopes, ExpiresAt: k.ExpiresAt, Labels: k.Labels, LastUsedAt: k.LastUsedAt,
			Expired: k.ExpiresAt != nil && !now.Before(*k.ExpiresAt),
		}
		if p := k.Previous; p != nil {
			ki.Previous = &keyGeneration{CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, LastUsedAt: p.LastUsedAt}
		}
		out = append(out, ki)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, _ string) error {
	name := r.PathValue("name")
	if err := a.cfg.Keys.Revoke(r.Context(), name); err != nil {
		if errors.Is(err, aegis.ErrNotFound) {
			return &userError{http.StatusNotFound, "no key named " + strconv.Quote(name)}
		}
		return err
	}
	a.log.Info("api key revoked", "key_name", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) invoke(w http.ResponseWriter, r *http.Request, reqID string) error {
	fn, ok := a.cfg.Registry.Snapshot().Function(r.PathValue("app"), r.PathValue("fn"))
	if !ok {
		return &userError{http.StatusNotFound, "function not found"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(fn.Spec.Limits.MaxBody)))
	if err != nil {
		return &userError{http.StatusRequestEntityTooLarge, "request body too large"}
	}
	req := &sandbox.Request{Kind: sandbox.KindHTTP, RequestID: reqID, Method: http.MethodPost, Path: "/", Body: body,
		Headers: map[string][]string{"Content-Type": {r.Header.Get("Content-Type")}}}
	resp, err := a.cfg.Dispatcher.Invoke(r.Context(), fn, req)
	if err != nil {
		status, msg := invokeStatus(err)
		return &userError{status, msg}
	}
	for k, v := range resp.Headers {
		if k != "" && k != "Content-Length" && k != "X-Request-Id" {
			w.Header().Set(k, v)
		}
	}
	st := resp.Status
	if st == 0 {
		st = http.StatusOK
	}
	w.WriteHeader(st)
	_, _ = w.Write(resp.Body)
	return nil
}

func invokeStatus(err error) (int, string) {
	switch {
	case errors.Is(err, sandbox.ErrTimeout):
		return http.StatusGatewayTimeout, "function timed out"
	case errors.Is(err, sandbox.ErrResponseTooLarge):
		return http.StatusBadGateway, "function response too large"
	case errors.Is(err, aegis.ErrLimitExceeded):
		return http.StatusTooManyRequests, "function is at its concurrency limit"
	default:
		return http.StatusInternalServerError, "function failed"
	}
}

func (a *API) logs(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	err := a.cfg.Logs.Read(r.Context(), funclog.Query{App: q.Get("app"), Function: q.Get("function"), Limit: limit, Follow: follow},
		func(rec *funclog.Record) error {
			if err := enc.Encode(rec); err != nil {
				return err
			}
			if flusher != nil {
				flusher.Flush()
			}
			return nil
		})
	if err != nil && r.Context().Err() == nil {
		a.log.Warn("log stream ended", "err", err)
	}
	return nil // headers are sent; an error can no longer change the status
}

func (a *API) dlq(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.cfg.Bus.DeadLetters(r.Context(), r.URL.Query().Get("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) replay(w http.ResponseWriter, r *http.Request, _ string) error {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return &userError{http.StatusBadRequest, "dead letter id must be a positive number"}
	}
	if _, err := a.cfg.Bus.Replay(r.Context(), id); err != nil {
		if errors.Is(err, aegis.ErrNotFound) {
			return &userError{http.StatusNotFound, "no dead letter with id " + strconv.FormatUint(id, 10)}
		}
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]uint64{"id": id})
	return nil
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &userError{http.StatusBadRequest, "request body is not valid JSON for this call"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
