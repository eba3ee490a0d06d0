// Package admin serves the admin REST API (docs/admin-api.md) that the CLI
// uses: deploys, rollbacks, deletes, keys, admin tokens, the authenticator,
// logs, dead letters. Every call but the health check needs an admin token
// (the bootstrap one in DATA/admin.token or a named one with a role), and
// every route declares the permission it needs (access.go): a call beyond
// the token's role or apps is refused, and a dangerous change also needs a
// current TOTP code (step-up). Every change is recorded in the audit log
// before it is made, and refused when it cannot be (audit.go). Every answer
// to an error is the same sanitized JSON shape the gateway uses.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/audit"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/connlimit"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/usage"
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

	// AdminTokens are the named admin tokens with a role; Token above is
	// the bootstrap principal (role admin, every app, named "root").
	AdminTokens *auth.AdminTokens
	// MFA is the authenticator whose codes dangerous changes need.
	MFA *auth.Authenticator
	// StepUp says when they need one ("" is auto).
	StepUp rbac.StepUpMode
	// Metrics, when set, is served at GET /metrics in the Prometheus text
	// format. The series name every app, so only tokens without an app set
	// may read them.
	Metrics http.Handler
	// OnAuthFailure, when set, is told of every 401 (scheme "admin_token"
	// and the fixed reason the security log line names), for the metric.
	OnAuthFailure func(scheme, reason string)
	// Usage answers GET /v1/usage and /v1/usage/budgets; nil answers
	// empty lists.
	Usage *usage.Recorder
	// Graph answers GET /v1/apps/{app}/graph with what was observed; nil
	// answers the declared edges alone.
	Graph *callgraph.Recorder
	// Audit records every change (its intent before it is made, then its
	// outcome) and answers /v1/audit. A change it cannot record is refused
	// with 503. nil records nothing: only for tests of other parts; the
	// server always sets it.
	Audit *audit.Log
	// Secrets is the vault (PUT, POST …/rotate, DELETE, GET
	// /v1/apps/{app}/secrets); nil serves none of those routes.
	Secrets Secrets
	// RotateDataKey answers POST /v1/apps/{app}/data-key/rotate; nil
	// serves none.
	RotateDataKey DataKeyRotator
	// RotateMaster answers POST /v1/vault/rotate-master; nil serves none.
	RotateMaster MasterRotator
	// Backup answers POST /v1/backup (backup.go); nil serves none.
	Backup Backuper
	// Guard answers GET /v1/guard/blocks and DELETE
	// /v1/guard/blocks/{id} (guard.go); nil serves none.
	Guard *guard.Guard
	// GuardRules answers GET and PUT /v1/guard/rules (guardrules.go);
	// nil serves neither.
	GuardRules GuardRules
	// Alerts answers GET /v1/guard/alerts (guardalerts.go); nil serves
	// none.
	Alerts Alerts
	// Cluster answers GET /v1/cluster (cluster.go); nil serves none.
	Cluster Cluster
	// Gate checks every deploy before it is activated (gate.go); nil
	// checks nothing.
	Gate DeployGate
}

// API is the admin http.Handler.
type API struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

const maxJSONBody = 2 << 20

// maxDeployBody admits a manifest and every schema file it may name, each
// at its cap, with room for JSON escaping to double the schema text.
const maxDeployBody = maxJSONBody + 2*manifest.MaxSchemaFiles*manifest.MaxSchemaFileSize

// New builds the API.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StepUp == "" {
		cfg.StepUp = rbac.StepUpAuto
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	// Every route names what it needs (access.go); handle refuses one that
	// does not.
	a.handle("GET /v1/health", public(), func(w http.ResponseWriter, r *http.Request, _ string) error {
		writeJSON(w, http.StatusOK, adminapi.Health{Status: "ok"})
		return nil
	})
	a.handle("GET /v1/ready", public(), a.ready)
	// Modules are content-addressed and hold nothing of an app until a
	// deploy names them, so a deployer limited to some apps may upload any.
	a.handle("HEAD /v1/modules/{sha}", anyApp(rbac.UploadModules), a.hasModule)
	a.handle("PUT /v1/modules/{sha}", anyApp(rbac.UploadModules), a.putModule)
	a.handle("POST /v1/apps/{app}/deploy", onApp(rbac.Deploy), a.deploy)
	a.handle("POST /v1/apps/{app}/rollback", onApp(rbac.Rollback), a.rollback)
	a.handle("GET /v1/apps/{app}/versions", onApp(rbac.Read), a.versions)
	a.handle("GET /v1/apps/{app}/graph", onApp(rbac.Read), a.graph)
	a.handle("GET /v1/apps/{app}/advice", onApp(rbac.Read), a.advice)
	a.handle("DELETE /v1/apps/{app}", onApp(rbac.DeleteApps), a.deleteApp)
	a.handle("GET /v1/apps", listing(rbac.Read), a.apps)
	a.handle("GET /v1/functions", listing(rbac.Read), a.functions)
	a.handle("GET /v1/routes", listing(rbac.Read), a.routes)
	if cfg.Metrics != nil {
		a.handle("GET /metrics", platform(rbac.Read), func(w http.ResponseWriter, r *http.Request, _ string) error {
			cfg.Metrics.ServeHTTP(w, r)
			return nil
		})
	}
	a.handle("POST /v1/keys", platform(rbac.ManageKeys), a.createKey)
	// API keys are the platform's, not an app's (an unscoped key calls
	// every app), so even listing them needs a token without an app set.
	a.handle("GET /v1/keys", platform(rbac.Read), a.listKeys)
	a.handle("DELETE /v1/keys/{name}", platform(rbac.ManageKeys), a.revokeKey)
	a.handle("POST /v1/keys/{name}/rotate", platform(rbac.ManageKeys), a.rotateKey)
	a.handle("POST /v1/apps/{app}/webhook-secrets/{name}", onApp(rbac.CreateWebhookSecrets), a.createWebhookSecret)
	if cfg.Secrets != nil {
		a.handle("PUT /v1/apps/{app}/secrets/{name}", onApp(rbac.ManageSecrets), a.setSecret)
		a.handle("POST /v1/apps/{app}/secrets/{name}/rotate", onApp(rbac.ManageSecrets), a.rotateSecret)
		a.handle("DELETE /v1/apps/{app}/secrets/{name}", onApp(rbac.ManageSecrets), a.removeSecret)
		a.handle("GET /v1/apps/{app}/secrets", onApp(rbac.Read), a.listSecrets)
	}
	if cfg.RotateDataKey != nil {
		a.handle("POST /v1/apps/{app}/data-key/rotate", onApp(rbac.ManageSecrets), a.rotateDataKey)
	}
	if cfg.RotateMaster != nil {
		a.handle("POST /v1/vault/rotate-master", platform(rbac.ManageKeys), a.rotateMaster)
	}
	if cfg.Backup != nil {
		a.handle("POST /v1/backup", platform(rbac.TakeBackups), a.backup)
	}
	if cfg.Guard != nil {
		// Blocks name client addresses of every app: the platform's.
		a.handle("GET /v1/guard/blocks", platform(rbac.Read), a.guardBlocks)
		a.handle("DELETE /v1/guard/blocks/{id}", platform(rbac.LiftGuardBlocks), a.liftGuardBlock)
	}
	if cfg.GuardRules != nil {
		// The rules act on every app's traffic: the platform's.
		a.handle("GET /v1/guard/rules", platform(rbac.Read), a.guardRules)
		a.handle("PUT /v1/guard/rules", platform(rbac.ApplyGuardRules), a.applyGuardRules)
	}
	if cfg.Alerts != nil {
		// Alerts name addresses, keys and functions of every app: the
		// platform's, like the blocks.
		a.handle("GET /v1/guard/alerts", platform(rbac.Read), a.guardAlerts)
	}
	if cfg.Cluster != nil {
		// Servers' addresses and versions are the platform's, not an app's.
		a.handle("GET /v1/cluster", platform(rbac.Read), a.cluster)
	}
	a.handle("POST /v1/apps/{app}/functions/{fn}/invoke", onApp(rbac.Invoke), a.invoke)
	a.handle("GET /v1/logs", listing(rbac.Read), a.logs)
	a.handle("GET /v1/traces/{id}", listing(rbac.Read), a.trace)
	a.handle("GET /v1/dlq", listing(rbac.Read), a.dlq)
	a.handle("GET /v1/usage", listing(rbac.Read), a.usageRows)
	a.handle("GET /v1/usage/budgets", listing(rbac.Read), a.budgets)
	// The dead letter's app is known only once it is read; replay checks it.
	a.handle("POST /v1/dlq/{id}/replay", listing(rbac.ReplayDeadLetters), a.replay)
	a.handle("POST /v1/tokens", platform(rbac.ManageTokens), a.createToken)
	a.handle("GET /v1/tokens", platform(rbac.ManageTokens), a.listTokens)
	a.handle("DELETE /v1/tokens/{name}", platform(rbac.ManageTokens), a.revokeToken)
	// Whether step-up applies is no secret, and every caller may need to
	// know before a dangerous change.
	a.handle("GET /v1/mfa", anyApp(rbac.Read), a.mfaStatus)
	a.handle("POST /v1/mfa/enroll", platform(rbac.ManageMFA), a.mfaEnroll)
	a.handle("POST /v1/mfa/confirm", platform(rbac.ManageMFA), a.mfaConfirm)
	// The audit log names every app, token and address: platform tokens
	// of operator and above only.
	a.handle("GET /v1/audit", platform(rbac.ReadAudit), a.auditList)
	a.handle("GET /v1/audit/verify", platform(rbac.ReadAudit), a.auditVerify)
	a.handle("GET /v1/audit/export", platform(rbac.ReadAudit), a.auditExport)
	return a
}

// userError is an error whose message is written for the caller (a bad
// manifest, a compile failure). Anything else gets a generic message.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

// classify maps a handler's error to its answer: a userError as written,
// anything else as every edge maps it (httperr).
func (a *API) classify(err error) (int, string) {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.status, ue.msg
	}
	f := httperr.Of(err)
	return f.Status, f.Message
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
	// A module of up to 64 MiB from an authenticated deployer may take
	// longer to arrive than the listener's read timeout allows a request.
	connlimit.ExtendForRun(w, r, compileBudget)
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, registry.MaxModuleSize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &userError{http.StatusRequestEntityTooLarge, "module larger than 64 MiB"}
	case err != nil:
		return &userError{http.StatusBadRequest, "could not read the module"}
	}
	sum := r.PathValue("sha")
	if err := a.cfg.Registry.PutModule(r.Context(), sum, data); err != nil {
		if errors.Is(err, aegis.ErrInvalidArgument) || errors.Is(err, aegis.ErrLimitExceeded) {
			return &userError{http.StatusBadRequest, err.Error()}
		}
		return err
	}
	writeJSON(w, http.StatusCreated, adminapi.StoredModule{SHA256: sum})
	return nil
}

func appInfo(app *registry.App) adminapi.App {
	return adminapi.App{App: app.Name, Version: app.VersionLabel(), Functions: app.Manifest.FunctionNames(), DeployedAt: app.DeployedAt}
}

// compileBudget is how long a deploy or rollback, which compiles every
// module of the version, may take on top of the listener's write timeout:
// the caller is an authenticated deployer, and cutting a deploy off
// half-way would only make them send it again.
const compileBudget = 5 * time.Minute

func (a *API) deploy(w http.ResponseWriter, r *http.Request, reqID string) error {
	var req adminapi.DeployRequest
	if err := decodeJSONLimit(w, r, &req, maxDeployBody); err != nil {
		return err
	}
	connlimit.ExtendForRun(w, r, compileBudget)
	noteDeploy(r, &req)
	findings, waived, err := a.gateDeploy(r, &req)
	if err != nil {
		return err
	}
	if err := a.stepUp(r, reqID, append(a.deployDangers(r.PathValue("app"), req.File, req.Manifest), waived...)); err != nil {
		return err
	}
	app, unchanged, err := a.cfg.Registry.Deploy(r.Context(), registry.DeployRequest{
		App: r.PathValue("app"), File: req.File, Manifest: []byte(req.Manifest), Modules: req.Modules, Schemas: req.Schemas,
	})
	if err != nil {
		return deployError(err)
	}
	info := appInfo(app)
	info.Unchanged = unchanged
	info.Findings = findings
	noteAudit(r, "version", info.Version)
	noteAudit(r, "unchanged", strconv.FormatBool(unchanged))
	writeJSON(w, http.StatusOK, info)
	return nil
}

// msgChangedElsewhere answers a deploy or rollback that lost a race with
// a change to the same app through another server of the cluster.
const msgChangedElsewhere = "the app was deployed, rolled back or deleted through another server while this change ran; nothing was activated: try again"

// deployError maps a refused deploy to a status with a message that helps
// the author fix it: manifest problems (400), modules that do not compile or
// import unknown host functions (422), route conflicts (409).
func deployError(err error) error {
	var merrs manifest.Errors
	var merr *manifest.Error
	var conflict *registry.RouteConflictError
	switch {
	// The manifest's own errors already name file, line and field; the
	// chain around them ("deploy app: invalid argument: …") is ours and
	// tells the author nothing more.
	case errors.As(err, &merrs):
		return &userError{http.StatusBadRequest, merrs.Error()}
	case errors.As(err, &merr):
		return &userError{http.StatusBadRequest, merr.Error()}
	// Likewise a route conflict: the client already says which app it
	// deployed, and the conflict names the app holding the route.
	case errors.As(err, &conflict):
		return &userError{http.StatusConflict, conflict.Error()}
	case errors.Is(err, sandbox.ErrUnknownImport), errors.Is(err, sandbox.ErrInvalidModule):
		return &userError{http.StatusUnprocessableEntity, err.Error()}
	case errors.Is(err, registry.ErrChangedElsewhere):
		return &userError{http.StatusConflict, msgChangedElsewhere}
	case errors.Is(err, aegis.ErrConflict):
		return &userError{http.StatusConflict, err.Error()}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusBadRequest, err.Error()}
	}
	return err
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request, reqID string) error {
	connlimit.ExtendForRun(w, r, compileBudget)
	name := r.PathValue("app")
	var req adminapi.RollbackRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	if req.To < 0 {
		return &userError{http.StatusBadRequest, "to must be a version number such as 3 (for v3), or left out for the previous version"}
	}
	if req.To > 0 {
		noteAudit(r, "to", "v"+strconv.Itoa(req.To))
	}
	// Going back can open up what a deploy can: the same step-up applies,
	// comparing the active manifest with the one rolled back to, whichever
	// version that is. As with a deploy, a rollback racing this one at
	// worst compares against a version one step off, never skips the check.
	var dangers []string
	target, err := a.cfg.Registry.RollbackTarget(r.Context(), name, req.To)
	if err == nil {
		if cur, ok := a.cfg.Registry.Snapshot().Apps[name]; ok {
			dangers = rbac.DangerousChanges(cur.Manifest, target)
		}
	}
	if err := a.stepUp(r, reqID, dangers); err != nil {
		return err
	}
	app, unchanged, err := a.cfg.Registry.Rollback(r.Context(), name, req.To)
	if err != nil {
		switch {
		case errors.As(err, new(*registry.RouteConflictError)), errors.Is(err, registry.ErrChangedElsewhere):
			return deployError(err)
		case errors.Is(err, registry.ErrNoVersion) && req.To > 0:
			return &userError{http.StatusNotFound, fmt.Sprintf("app %q has no version v%d", name, req.To)}
		case errors.Is(err, aegis.ErrConflict) && req.To == 0:
			return &userError{http.StatusConflict, "no previous version to roll back to"}
		case errors.Is(err, aegis.ErrNotFound):
			return &userError{http.StatusNotFound, "app not found"}
		}
		return deployError(err)
	}
	info := appInfo(app)
	info.Unchanged = unchanged
	noteAudit(r, "version", info.Version)
	writeJSON(w, http.StatusOK, info)
	return nil
}

// versions lists every recorded version of an app, each a rollback target.
func (a *API) versions(w http.ResponseWriter, r *http.Request, _ string) error {
	vers, err := a.cfg.Registry.Versions(r.Context(), r.PathValue("app"))
	if errors.Is(err, aegis.ErrNotFound) {
		return &userError{http.StatusNotFound, "app not found"}
	}
	if err != nil {
		return err
	}
	out := make([]adminapi.Version, 0, len(vers))
	for _, v := range vers {
		out = append(out, adminapi.Version{Version: "v" + strconv.Itoa(v.Version), Number: v.Version, Active: v.Active,
			CreatedAt: v.CreatedAt, File: v.File, Modules: v.Modules})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) apps(w http.ResponseWriter, r *http.Request, _ string) error {
	snap := a.cfg.Registry.Snapshot()
	out := []adminapi.App{}
	for _, name := range snap.AppNames() {
		if !canSee(r, name) {
			continue
		}
		out = append(out, appInfo(snap.Apps[name]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) functions(w http.ResponseWriter, r *http.Request, _ string) error {
	only, err := a.listedApp(r, r.URL.Query().Get("app"))
	if err != nil {
		return err
	}
	snap := a.cfg.Registry.Snapshot()
	out := []adminapi.Function{}
	for _, name := range snap.AppNames() {
		if !canSee(r, name) || (only != "" && name != only) {
			continue
		}
		app := snap.Apps[name]
		for _, fn := range app.Manifest.FunctionNames() {
			f := app.Functions[fn]
			out = append(out, adminapi.Function{App: name, Function: fn, Version: f.Version, SHA256: f.SHA256,
				Triggers: f.Spec.Triggers, Isolation: string(f.Spec.Isolation), Grants: f.Spec.Grants, Limits: f.Spec.Limits, Budget: f.Spec.Budget})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) routes(w http.ResponseWriter, r *http.Request, _ string) error {
	only, err := a.listedApp(r, r.URL.Query().Get("app"))
	if err != nil {
		return err
	}
	snap := a.cfg.Registry.Snapshot()
	out := []adminapi.Route{}
	for _, name := range snap.AppNames() {
		if !canSee(r, name) || (only != "" && name != only) {
			continue
		}
		app := snap.Apps[name]
		for _, fn := range app.Manifest.FunctionNames() {
			for _, t := range app.Manifest.Functions[fn].Triggers {
				if t.HTTP != nil {
					out = append(out, adminapi.Route{Method: t.HTTP.Method, Path: t.HTTP.Path, App: name, Function: fn, Public: t.HTTP.Public, Private: t.HTTP.Private, Auth: t.HTTP.Auth})
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
	var req adminapi.CreateKeyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	noteTarget(r, req.Name)
	noteAudit(r, "scopes", strings.Join(req.Scopes, ","))
	noteAudit(r, "expires_in", req.ExpiresIn)
	opts := auth.KeyOptions{Scopes: req.Scopes, Labels: req.Labels}
	if err := keyLimits(&req, &opts); err != nil {
		return err
	}
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
	a.log.Info("api key created", logkey.KeyName, req.Name, logkey.Scopes, req.Scopes, logkey.ExpiresIn, req.ExpiresIn,
		logkey.KeyRate, req.Rate, logkey.KeyBurst, req.Burst, logkey.KeyBudget, req.Budget)
	writeJSON(w, http.StatusCreated, adminapi.NewKey{Name: req.Name, Key: key})
	return nil
}

// rotateKey gives a key a new secret; the old one keeps working for the
// overlap (default none), so callers can switch without a gap.
func (a *API) rotateKey(w http.ResponseWriter, r *http.Request, reqID string) error {
	name := r.PathValue("name")
	var req adminapi.RotateKeyRequest
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
		noteAudit(r, "overlap", overlap.String())
	}
	// Rotating hands out a new secret for a key that may be in wide use:
	// a dangerous change.
	if err := a.stepUp(r, reqID, []string{"rotate api key " + strconv.Quote(name)}); err != nil {
		return err
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
	a.log.Info("api key rotated", logkey.KeyName, name, logkey.Overlap, overlap.String())
	writeJSON(w, http.StatusCreated, adminapi.NewKey{Name: name, Key: key})
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
	a.log.Info("webhook secret created", logkey.App, app, logkey.SecretName, name)
	writeJSON(w, http.StatusCreated, adminapi.WebhookSecret{App: app, Name: name, Secret: secret})
	return nil
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, _ string) error {
	keys, err := a.cfg.Keys.List(r.Context())
	if err != nil {
		return err
	}
	now := time.Now()
	out := make([]adminapi.Key, 0, len(keys))
	for _, k := range keys {
		ki := adminapi.Key{
			Name: k.Name, ID: k.ID, CreatedAt: k.CreatedAt, Revoked: k.Revoked, RevokedAt: k.RevokedAt,
			Scopes: k.Scopes, ExpiresAt: k.ExpiresAt, Labels: k.Labels, LastUsedAt: k.LastUsedAt,
			Expired: k.ExpiresAt != nil && !now.Before(*k.ExpiresAt),
		}
		if p := k.Previous; p != nil {
			ki.Previous = &adminapi.KeyGeneration{CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, LastUsedAt: p.LastUsedAt}
		}
		keyLimitsOut(&k, &ki)
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
	a.log.Info("api key revoked", logkey.KeyName, name)
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
		Headers: map[string][]string{"Content-Type": {r.Header.Get("Content-Type")}}, Origin: sandbox.OriginAdmin,
		Trace: telemetry.TraceOf(r.Header.Get("Traceparent"), reqID)}
	w.Header().Set(telemetry.HeaderTraceID, req.Trace.TraceID)
	connlimit.ExtendForRun(w, r, fn.Spec.Limits.Timeout.Std())
	resp, err := a.cfg.Dispatcher.Invoke(r.Context(), fn, req)
	if err != nil {
		// The same answer the gateway gives for the same failure; the
		// function's own message beside it, for the developer who called
		// it here and never for the gateway's clients.
		if msg := sandbox.FunctionMessage(err); msg != "" {
			w.Header().Set(adminapi.HeaderFunctionError, msg)
		}
		var spent httperr.BudgetError
		if errors.As(err, &spent) {
			httperr.WriteErr(w, err, reqID) // names the budget, with Retry-After
			return nil
		}
		f := httperr.Of(err)
		return &userError{f.Status, f.Message}
	}
	for k, v := range resp.Headers {
		if k != "" && k != "Content-Length" && k != "X-Request-Id" {
			w.Header()[http.CanonicalHeaderKey(k)] = sandbox.FieldLines(v)
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

func (a *API) logs(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	app, err := a.listedApp(r, q.Get("app"))
	if err != nil {
		return err
	}
	fq := funclog.Query{App: app, Function: q.Get("function"), Trace: q.Get("trace"), Limit: limit, Follow: follow}
	if fq.Trace != "" && !telemetry.IsID(fq.Trace) {
		return &userError{http.StatusBadRequest, "trace: a trace id is 32 lower-case hex characters"}
	}
	if v := q.Get("since"); v != "" {
		if fq.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return &userError{http.StatusBadRequest, "since: not an RFC 3339 time"}
		}
	}
	if follow {
		connlimit.Unbounded(w) // a follower stays until it goes away
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	err = a.cfg.Logs.Read(r.Context(), fq,
		func(rec *funclog.Record) error {
			if !canSee(r, rec.App) {
				return nil
			}
			if err := enc.Encode(rec); err != nil {
				return err
			}
			if flusher != nil {
				flusher.Flush()
			}
			return nil
		})
	if err != nil && r.Context().Err() == nil {
		a.log.Warn("log stream ended", logkey.Error, err)
	}
	return nil // headers are sent; an error can no longer change the status
}

// trace answers one trace's causal tree, of the apps the token may see.
func (a *API) trace(w http.ResponseWriter, r *http.Request, _ string) error {
	id := r.PathValue("id")
	if !telemetry.IsID(id) {
		return &userError{http.StatusBadRequest, "a trace id is 32 lower-case hex characters"}
	}
	t, err := a.cfg.Logs.Trace(r.Context(), id, func(rec *funclog.Record) bool { return canSee(r, rec.App) })
	if errors.Is(err, aegis.ErrNotFound) {
		return &userError{http.StatusNotFound, "no trace " + id + " in the log (it keeps records for its retention period)"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *API) dlq(w http.ResponseWriter, r *http.Request, _ string) error {
	app, err := a.listedApp(r, r.URL.Query().Get("app"))
	if err != nil {
		return err
	}
	all, err := a.cfg.Bus.DeadLetters(r.Context(), app)
	if err != nil {
		return err
	}
	out := all[:0]
	for _, dl := range all {
		if canSee(r, dl.App) {
			out = append(out, dl)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listedApp is the app a listing asks for: refused when the caller may not
// see it, and, for a token limited to one app that names none, that app
// (so limits such as ?limit= count its records only). Listings still
// filter what they return by the caller's apps.
func (a *API) listedApp(r *http.Request, app string) (string, error) {
	who := principal(r)
	switch {
	case app != "" && !who.CanSee(app):
		return "", &rbac.Denied{Msg: fmt.Sprintf("forbidden: token %s may not act on app %q", who.Name, app), Reason: rbac.ReasonAppSet}
	case app == "" && len(who.Apps) == 1:
		return who.Apps[0], nil
	}
	return app, nil
}

func (a *API) replay(w http.ResponseWriter, r *http.Request, _ string) error {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return &userError{http.StatusBadRequest, "dead letter id must be a positive number"}
	}
	notFound := &userError{http.StatusNotFound, "no dead letter with id " + strconv.FormatUint(id, 10)}
	if who := principal(r); who.Restricted() {
		// The id alone does not say whose dead letter it is: look for it
		// among the caller's apps' only, and answer as for an unknown id
		// otherwise, so others' dead letters are not even confirmed.
		mine, err := a.ownDeadLetter(r.Context(), who, id)
		if err != nil {
			return err
		}
		if !mine {
			return notFound
		}
	}
	if _, err := a.cfg.Bus.Replay(r.Context(), id, principal(r).Name); err != nil {
		if errors.Is(err, aegis.ErrNotFound) {
			return notFound
		}
		if errors.Is(err, bus.ErrForgedDeadLetter) {
			return &userError{http.StatusConflict, "dead letter " + strconv.FormatUint(id, 10) + ": " + bus.ErrForgedDeadLetter.Error()}
		}
		return err
	}
	writeJSON(w, http.StatusAccepted, adminapi.ReplayedDeadLetter{ID: id})
	return nil
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSONLimit(w, r, v, maxJSONBody)
}

func decodeJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return &userError{http.StatusRequestEntityTooLarge, "request body larger than " + strconv.FormatInt(limit>>20, 10) + " MiB"}
		}
		return &userError{http.StatusBadRequest, "request body is not valid JSON for this call"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
