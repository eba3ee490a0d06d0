// Package registry owns deployed apps: their versions, the modules behind
// them and the one active snapshot the gateway and the event triggers read.
// A deploy is transactional: the new version is parsed, every module is
// compiled and every function instantiated before anything is persisted or
// swapped in, so a failing deploy leaves the active version serving.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/policy"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// StateStore keeps app and version records (a JetStream KV bucket in
// production). Create and Update are the compare-and-swap writes that keep
// two servers deploying one app at once from overwriting each other: they
// fail with aegis.ErrConflict when the key exists, or is no longer at rev.
type StateStore interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Put(ctx context.Context, key string, v []byte) (uint64, error)
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// ErrChangedElsewhere: the app was deployed, rolled back or deleted
// through another server while this change was being made; nothing of
// this change was activated. It wraps aegis.ErrConflict.
var ErrChangedElsewhere = fmt.Errorf("the app changed through another server meanwhile; try again: %w", aegis.ErrConflict)

// ModuleStore keeps wasm modules addressed by their SHA-256 (a JetStream object store).
type ModuleStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Has(ctx context.Context, key string) (bool, error)
	Put(ctx context.Context, key string, data []byte) error
}

// MaxModuleSize caps one uploaded module.
const MaxModuleSize = 64 << 20

// maxHistory bounds how many previous versions an app remembers for rollback.
const maxHistory = 20

// Config wires a Registry.
type Config struct {
	State   StateStore
	Modules ModuleStore
	Engine  *sandbox.Engine
	Logger  *slog.Logger
	// Retire is how long a replaced version keeps its instances for the
	// invocations still running on it before they are closed.
	Retire time.Duration
	// OnChange is called (serially) after every activation with the new snapshot.
	OnChange func(*Snapshot)
	// SecretExists, when set, is asked at deploy whether each secret a
	// function is granted exists in the app's vault: a grant of a secret
	// that does not is refused, naming it, rather than failing at the
	// first read. A restart does not ask (a secret removed since is the
	// function's not-found, not a platform that will not start).
	SecretExists func(ctx context.Context, app, name string) (bool, error)
}

// Registry is the set of deployed apps.
type Registry struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex // serializes deploys and rollbacks
	snap atomic.Pointer[Snapshot]
	// unbuilt are the activations this registry could not build (a
	// restore or a follow that failed), by app, so that a record that
	// does not change is not built again, and its failure logged, at
	// every comparison of Follow. Guarded by mu.
	unbuilt map[string]mark
	// retrying are the activations that could not be built because what
	// they need could not be read (a replica still catching up after a
	// restart, a leader moving): Follow tries them again, with a growing
	// wait, whether or not their record changes. Guarded by mu.
	retrying map[string]*retry
	// retryPending tells Follow's comparison to run while retrying holds
	// anything, even when no record changed.
	retryPending atomic.Bool

	retiring sync.WaitGroup
	closed   chan struct{}
	once     sync.Once
}

// Snapshot is an immutable view of every active app; swapped atomically.
type Snapshot struct {
	Apps map[string]*App
	// Routes is what the gateway serves: every HTTP route of every app
	// except private ones.
	Routes *route.Table
	// appRoutes holds, per app, every HTTP route of that app, private ones
	// included: what the invoke capability matches against. Its route
	// values are the ones in Routes, so whatever travels with a route (the
	// rule, …) applies on both paths.
	appRoutes map[string]*route.Table
	// private holds one route per private method and path shape of all
	// apps, for the gateway to recognize a probe of one (PrivateRoute).
	private *route.Table
}

// AppRoutes returns the route table of an active app, private routes
// included, for function-to-function calls (invoke); nil, which matches
// nothing, when the app is not active. Never serve it to the outside.
func (s *Snapshot) AppRoutes(app string) *route.Table { return s.appRoutes[app] }

// PrivateRoute reports the private route, of any app, that method and path
// would reach if the gateway served private routes; the gateway logs such
// a request as a probe. With several apps sharing the path, one of them.
func (s *Snapshot) PrivateRoute(method, path string) (*route.Route, bool) {
	if s.private == nil {
		return nil, false
	}
	rt, _, err := s.private.Match(method, path)
	return rt, err == nil
}

// App is one active app version.
type App struct {
	Name       string
	Version    int
	Manifest   *manifest.Manifest // with defaults applied
	Functions  map[string]*Function
	DeployedAt time.Time

	// modules are compiled once per distinct module of the version, shared
	// by every function running it, and closed after those functions.
	modules []*sandbox.Module
	// rules are the compiled authorization rules of the version's HTTP
	// triggers, by function and trigger index.
	rules map[ruleKey]*policy.Rule
	// requests are the compiled request checks (content types and
	// schemas) of the version's HTTP triggers, by function and trigger
	// index, like rules.
	requests map[ruleKey]*schema.Request
}

type ruleKey struct {
	function string
	trigger  int
}

// Function is one function of an active app version.
type Function struct {
	App      string
	Spec     *manifest.Function
	Version  string // "v3"
	SHA256   string
	Instance *sandbox.Function
	// Schemas validate what the function's event and object triggers
	// deliver, by TriggerKey; a trigger without a schema has no entry.
	Schemas map[string]*schema.Schema
	// AppBudget is the app's budget (manifest.Manifest.Budget), nil for
	// none; the function's own is Spec.Budget. Both are checked on every
	// invocation (dispatch, usage).
	AppBudget *manifest.Budget
}

// Function looks up an active function.
func (s *Snapshot) Function(app, fn string) (*Function, bool) {
	a, ok := s.Apps[app]
	if !ok {
		return nil, false
	}
	f, ok := a.Functions[fn]
	return f, ok
}

// AppNames returns the active apps, sorted.
func (s *Snapshot) AppNames() []string {
	names := make([]string, 0, len(s.Apps))
	for n := range s.Apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type appRecord struct {
	App        string    `json:"app"`
	Active     int       `json:"active"`
	Latest     int       `json:"latest"`
	History    []int     `json:"history"` // previous active versions, newest last
	DeployedAt time.Time `json:"deployed_at"`
}

type versionRecord struct {
	App      string             `json:"app"`
	Version  int                `json:"version"`
	File     string             `json:"file"`
	Manifest *manifest.Manifest `json:"manifest"`
	Modules  map[string]string  `json:"modules"`
	// Schemas are the schema files the version's schemas need (file name →
	// contents), kept so a rollback or restart compiles the same schemas.
	Schemas   map[string]string `json:"schemas,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// New returns an empty registry; call Restore to load persisted apps.
func New(cfg Config) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Retire <= 0 {
		cfg.Retire = 10 * time.Second
	}
	r := &Registry{cfg: cfg, log: cfg.Logger, closed: make(chan struct{}), unbuilt: map[string]mark{},
		retrying: map[string]*retry{}}
	empty, _ := route.New(nil)
	r.snap.Store(&Snapshot{Apps: map[string]*App{}, Routes: empty})
	return r
}

// Snapshot returns the current active view. Never nil.
func (r *Registry) Snapshot() *Snapshot { return r.snap.Load() }

var shaPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidSHA256 reports whether s is a lower-case hex SHA-256.
func ValidSHA256(s string) bool { return shaPattern.MatchString(s) }

// PutModule stores a module after checking it hashes to sum.
func (r *Registry) PutModule(ctx context.Context, sum string, data []byte) error {
	if !ValidSHA256(sum) {
		return fmt.Errorf("store module: %w: %q is not a lower-case hex SHA-256", aegis.ErrInvalidArgument, sum)
	}
	if len(data) > MaxModuleSize {
		return fmt.Errorf("store module: %w: module is larger than %d bytes", aegis.ErrLimitExceeded, MaxModuleSize)
	}
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) != sum {
		return fmt.Errorf("store module: %w: content does not hash to %s", aegis.ErrInvalidArgument, sum)
	}
	if err := r.cfg.Modules.Put(ctx, "sha256-"+sum, data); err != nil {
		return fmt.Errorf("store module %s: %w", sum, err)
	}
	return nil
}

// HasModule reports whether a module is stored.
func (r *Registry) HasModule(ctx context.Context, sum string) (bool, error) {
	if !ValidSHA256(sum) {
		return false, fmt.Errorf("look up module: %w: %q is not a lower-case hex SHA-256", aegis.ErrInvalidArgument, sum)
	}
	return r.cfg.Modules.Has(ctx, "sha256-"+sum)
}

// DeployRequest is one deploy: the manifest text and the module of every function.
type DeployRequest struct {
	App      string
	File     string // name used in error messages, e.g. "aegis.yaml"
	Manifest []byte
	Modules  map[string]string // function name → sha256
	// Schemas are the schema files the manifest names (and those they
	// reach by $ref): file name → contents.
	Schemas map[string]string
}

// Deploy validates, compiles and activates a new version of an app. When
// the request is the active version over again (the same manifest, the
// same modules, the same schema files), nothing is recorded or rebuilt:
// Deploy returns the active version and unchanged is true, so a deploy
// run twice does not fill the history with copies.
func (r *Registry) Deploy(ctx context.Context, req DeployRequest) (app *App, unchanged bool, err error) {
	if req.File == "" {
		req.File = "aegis.yaml"
	}
	m, pos, err := manifest.ParseWithPositions(req.File, req.Manifest)
	if err != nil {
		return nil, false, fmt.Errorf("deploy %s: %w: %w", req.App, aegis.ErrInvalidArgument, err)
	}
	if m.App != req.App {
		return nil, false, fmt.Errorf("deploy %s: %w: manifest is for app %q", req.App, aegis.ErrInvalidArgument, m.App)
	}
	m = m.WithDefaults()
	for _, name := range m.FunctionNames() {
		sum, ok := req.Modules[name]
		if !ok {
			return nil, false, fmt.Errorf("deploy %s: %w: no module given for function %q", req.App, aegis.ErrInvalidArgument, name)
		}
		if !ValidSHA256(sum) {
			return nil, false, fmt.Errorf("deploy %s: %w: module of %q is not a SHA-256", req.App, aegis.ErrInvalidArgument, name)
		}
	}
	for name := range req.Modules {
		if _, ok := m.Functions[name]; !ok {
			return nil, false, fmt.Errorf("deploy %s: %w: module given for unknown function %q", req.App, aegis.ErrInvalidArgument, name)
		}
	}
	if err := r.checkSecrets(ctx, req.App, m); err != nil {
		return nil, false, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	rec, rev, err := r.loadAppRecordRev(ctx, req.App)
	if err != nil && !errors.Is(err, aegis.ErrNotFound) {
		return nil, false, fmt.Errorf("deploy %s: %w", req.App, err)
	}
	if rec == nil {
		rec = &appRecord{App: req.App}
	}
	if active, err := r.unchanged(ctx, rec, m, req); err != nil {
		return nil, false, fmt.Errorf("deploy %s: %w", req.App, err)
	} else if active != nil {
		r.log.Info("app unchanged", logkey.App, req.App, logkey.Version, active.versionLabel())
		return active, true, nil
	}
	number, seqRev, err := r.nextVersion(ctx, rec)
	if err != nil {
		return nil, false, fmt.Errorf("deploy %s: %w", req.App, err)
	}
	ver := &versionRecord{App: req.App, Version: number, File: req.File, Manifest: m, Modules: req.Modules, Schemas: req.Schemas, CreatedAt: time.Now().UTC()}
	app, err = r.build(ctx, ver)
	if err != nil {
		// A schema file that is missing or wrong is reported by the field
		// naming it; here, unlike at a restore, the lines are known.
		var merr *manifest.Error
		if errors.As(err, &merr) && merr.Line == 0 && merr.Field != "" {
			merr.Line = pos.Line(merr.Field)
		}
		return nil, false, fmt.Errorf("deploy %s: %w", req.App, err)
	}
	next, err := r.withApp(app)
	if err != nil {
		r.closeApp(app)
		return nil, false, fmt.Errorf("deploy %s: %w", req.App, err)
	}
	if err := r.claimVersion(ctx, req.App, ver.Version, seqRev); err != nil {
		r.closeApp(app)
		return nil, false, fmt.Errorf("deploy %s: %w", req.App, err)
	}
	if err := r.putJSON(ctx, versionKey(req.App, ver.Version), ver); err != nil {
		r.closeApp(app)
		return nil, false, fmt.Errorf("deploy %s: save version: %w", req.App, err)
	}
	if rec.Active > 0 {
		rec.History = append(rec.History, rec.Active)
		if len(rec.History) > maxHistory {
			rec.History = rec.History[len(rec.History)-maxHistory:]
		}
	}
	rec.Active, rec.Latest, rec.DeployedAt = ver.Version, max(rec.Latest, ver.Version), app.DeployedAt
	if err := r.swapAppRecord(ctx, rec, rev); err != nil {
		r.closeApp(app)
		return nil, false, fmt.Errorf("deploy %s: save app: %w", req.App, err)
	}
	r.activate(next, req.App)
	r.log.Info("app deployed", logkey.App, req.App, logkey.Version, app.versionLabel())
	return app, false, nil
}

// unchanged returns the active version of the app when m with req's
// modules and schema files is what it already runs, nil otherwise. An app
// whose active version is not serving (its restore failed) is never
// unchanged: deploying it again is how it comes back.
func (r *Registry) unchanged(ctx context.Context, rec *appRecord, m *manifest.Manifest, req DeployRequest) (*App, error) {
	active, ok := r.snap.Load().Apps[rec.App]
	if rec.Active == 0 || !ok || active.Version != rec.Active {
		return nil, nil
	}
	var cur versionRecord
	if err := r.getJSON(ctx, versionKey(rec.App, rec.Active), &cur); err != nil {
		return nil, fmt.Errorf("read active version v%d: %w", rec.Active, err)
	}
	if !maps.Equal(cur.Modules, req.Modules) {
		return nil, nil
	}
	// A version keeps only the schema files its schemas reach (the CLI
	// may send more). The same manifest with the same contents of those
	// files reaches the same files again, so those are all to compare.
	for name, text := range cur.Schemas {
		if got, ok := req.Schemas[name]; !ok || got != text {
			return nil, nil
		}
	}
	// The stored manifest went through JSON, so compare JSON with JSON;
	// both have had the same defaults applied.
	was, err := json.Marshal(cur.Manifest)
	if err != nil {
		return nil, err
	}
	now, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(was, now) {
		return nil, nil
	}
	return active, nil
}

// ErrNoVersion: the app has no version of the number asked for (it never
// had one, or the app was deleted since). It is also aegis.ErrNotFound.
var ErrNoVersion = errors.New("no such version")

// Rollback makes an earlier version of the app active again: the one that
// was active before the current one when to is 0, version to otherwise
// (any version the app recorded, older or newer than the active one).
// Going to the version already active changes nothing and reports
// unchanged.
//
// The history of active versions follows: going back to a version in it
// drops it and everything after it, as that many single rollbacks would;
// going to one that is not in it (a version rolled back from, say) keeps
// the version left in the history, so a plain rollback returns to it.
func (r *Registry) Rollback(ctx context.Context, appName string, to int) (app *App, unchanged bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, rev, ver, err := r.targetVersion(ctx, appName, to)
	if err != nil {
		return nil, false, err
	}
	target := ver.Version
	if active, ok := r.snap.Load().Apps[appName]; ok && target == rec.Active && active.Version == target {
		return active, true, nil
	}
	app, err = r.build(ctx, ver)
	if err != nil {
		return nil, false, fmt.Errorf("roll back %s to v%d: %w", appName, target, err)
	}
	next, err := r.withApp(app)
	if err != nil {
		r.closeApp(app)
		return nil, false, fmt.Errorf("roll back %s to v%d: %w", appName, target, err)
	}
	if i := lastIndex(rec.History, target); i >= 0 {
		rec.History = rec.History[:i]
	} else if rec.Active != target {
		rec.History = append(rec.History, rec.Active)
		if len(rec.History) > maxHistory {
			rec.History = rec.History[len(rec.History)-maxHistory:]
		}
	}
	rec.Active, rec.DeployedAt = target, app.DeployedAt
	if err := r.swapAppRecord(ctx, rec, rev); err != nil {
		r.closeApp(app)
		return nil, false, fmt.Errorf("roll back %s: save app: %w", appName, err)
	}
	r.activate(next, appName)
	r.log.Info("app rolled back", logkey.App, appName, logkey.Version, app.versionLabel())
	return app, false, nil
}

func lastIndex(s []int, v int) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == v {
			return i
		}
	}
	return -1
}

// RollbackTarget is the manifest Rollback(appName, to) would activate. The
// admin API compares it with the active manifest, since going back can
// open up as much as a deploy can (a route that was public then, a wider
// grant).
func (r *Registry) RollbackTarget(ctx context.Context, appName string, to int) (*manifest.Manifest, error) {
	_, _, ver, err := r.targetVersion(ctx, appName, to)
	if err != nil {
		return nil, err
	}
	return ver.Manifest, nil
}

// targetVersion reads the app's record, its revision and the version a
// rollback goes to: the one before the active one when to is 0, version
// to otherwise.
func (r *Registry) targetVersion(ctx context.Context, appName string, to int) (*appRecord, uint64, *versionRecord, error) {
	rec, rev, err := r.loadAppRecordRev(ctx, appName)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("roll back %s: %w", appName, err)
	}
	if to == 0 {
		if len(rec.History) == 0 {
			return nil, 0, nil, fmt.Errorf("roll back %s: %w: no previous version", appName, aegis.ErrConflict)
		}
		to = rec.History[len(rec.History)-1]
	}
	if to < 1 || to > rec.Latest {
		return nil, 0, nil, fmt.Errorf("roll back %s to v%d: %w: versions are v1 to v%d: %w", appName, to, ErrNoVersion, rec.Latest, aegis.ErrNotFound)
	}
	var ver versionRecord
	if err := r.getJSON(ctx, versionKey(appName, to), &ver); err != nil {
		if errors.Is(err, aegis.ErrNotFound) {
			return nil, 0, nil, fmt.Errorf("roll back %s to v%d: %w: %w", appName, to, ErrNoVersion, aegis.ErrNotFound)
		}
		return nil, 0, nil, fmt.Errorf("roll back %s to v%d: %w", appName, to, err)
	}
	return rec, rev, &ver, nil
}

// Version describes one recorded version of an app.
type Version struct {
	Version   int
	Active    bool
	CreatedAt time.Time
	File      string            // the manifest's file name as deployed
	Modules   map[string]string // function → module SHA-256
}

// Versions lists every recorded version of an app, oldest first; any of
// them is a target for Rollback. An app with no record is
// aegis.ErrNotFound.
func (r *Registry) Versions(ctx context.Context, appName string) ([]Version, error) {
	rec, err := r.loadAppRecord(ctx, appName)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", appName, err)
	}
	keys, err := r.cfg.State.Keys(ctx, "ver."+appName+".")
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", appName, err)
	}
	out := make([]Version, 0, len(keys))
	for _, k := range keys {
		var ver versionRecord
		if err := r.getJSON(ctx, k, &ver); err != nil {
			if errors.Is(err, aegis.ErrNotFound) {
				continue // removed since the listing
			}
			return nil, fmt.Errorf("list versions of %s: %w", appName, err)
		}
		out = append(out, Version{Version: ver.Version, Active: ver.Version == rec.Active, CreatedAt: ver.CreatedAt, File: ver.File, Modules: ver.Modules})
	}
	slices.SortFunc(out, func(a, b Version) int { return a.Version - b.Version })
	return out, nil
}

// Restore loads and activates every persisted app (at server start). An app
// whose active version no longer builds is logged and skipped, so one bad
// record cannot keep the others from serving.
func (r *Registry) Restore(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.cfg.State.Keys(ctx, "app.")
	if err != nil {
		return fmt.Errorf("restore apps: %w", err)
	}
	for _, k := range keys {
		name := strings.TrimPrefix(k, "app.")
		rec, err := r.loadAppRecord(ctx, name)
		if err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
		var ver versionRecord
		if err := r.getJSON(ctx, versionKey(name, rec.Active), &ver); err != nil {
			return fmt.Errorf("restore %s v%d: %w", name, rec.Active, err)
		}
		app, err := r.build(ctx, &ver)
		if err != nil {
			if r.retryLater(name, markOf(rec), err) {
				continue
			}
			r.unbuilt[name] = markOf(rec)
			r.log.Error("restore app failed", logkey.App, name, logkey.Version, "v"+strconv.Itoa(rec.Active), logkey.Error, err)
			continue
		}
		app.DeployedAt = rec.DeployedAt
		next, err := r.withApp(app)
		if err != nil {
			r.closeApp(app)
			r.unbuilt[name] = markOf(rec)
			r.log.Error("restore app failed", logkey.App, name, logkey.Error, err)
			continue
		}
		r.activate(next, name)
	}
	return nil
}

// build compiles every module of a version and instantiates its functions.
func (r *Registry) build(ctx context.Context, ver *versionRecord) (*App, error) {
	app := &App{Name: ver.App, Version: ver.Version, Manifest: ver.Manifest, Functions: map[string]*Function{}}
	label := app.versionLabel()
	// Functions sharing a module share its compiled form: decoding and
	// keeping a module costs megabytes, and apps often run one module as
	// several functions.
	// Rules are compiled first: they are cheap, and a typo in one should
	// not wait for every module to compile.
	rules, err := compileRules(ver)
	if err != nil {
		return nil, err
	}
	app.rules = rules
	// Schemas too: a bad one refuses the deploy before any module compiles.
	schemas, err := compileSchemas(ver)
	if err != nil {
		return nil, err
	}
	app.requests = schemas.requests
	compiled := map[string]*sandbox.Module{}
	for _, name := range ver.Manifest.FunctionNames() {
		spec := ver.Manifest.Functions[name]
		spec.Name = name
		sum := ver.Modules[name]
		mod, err := r.module(ctx, compiled, app, sum)
		if err != nil {
			r.closeApp(app)
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
		inst, err := r.cfg.Engine.NewFunction(ctx, mod, sandbox.FunctionConfig{
			App: ver.App, Function: name, Version: label,
			Grants: spec.Grants, Limits: spec.Limits, Isolation: spec.Isolation,
		})
		if err != nil {
			r.closeApp(app)
			return nil, fmt.Errorf("instantiate %s: %w", name, err)
		}
		app.Functions[name] = &Function{App: ver.App, Spec: spec, Version: label, SHA256: sum, Instance: inst, Schemas: schemas.triggers[name],
			AppBudget: ver.Manifest.Budget}
	}
	// Deployed once ready to run, not when compiling began: what follows
	// a deploy (the guard's learning window of new call paths) starts
	// when its functions can first be called.
	app.DeployedAt = time.Now().UTC()
	return app, nil
}

// compileRules compiles the authorization rule of every HTTP trigger that
// has one. A rule that does not compile is aegis.ErrInvalidArgument, named
// by file and field like a manifest error.
func compileRules(ver *versionRecord) (map[ruleKey]*policy.Rule, error) {
	rules := map[ruleKey]*policy.Rule{}
	for _, name := range ver.Manifest.FunctionNames() {
		for i, t := range ver.Manifest.Functions[name].Triggers {
			if t.HTTP == nil || t.HTTP.Rule == "" {
				continue
			}
			rule, err := policy.Compile(t.HTTP.Rule)
			if err != nil {
				return nil, fmt.Errorf("%s: functions.%s.triggers[%d].http.rule: %w", ver.File, name, i, err)
			}
			rules[ruleKey{name, i}] = rule
		}
	}
	return rules, nil
}

// module returns the compiled module with the given sum, compiling it on
// first use within one build.
func (r *Registry) module(ctx context.Context, compiled map[string]*sandbox.Module, app *App, sum string) (*sandbox.Module, error) {
	if mod, ok := compiled[sum]; ok {
		return mod, nil
	}
	wasm, err := r.cfg.Modules.Get(ctx, "sha256-"+sum)
	if errors.Is(err, aegis.ErrNotFound) {
		// Also what a replica that has not caught up may answer: a
		// restore or follow tries again (readError), a deploy refuses.
		return nil, readError{fmt.Errorf("%w: module %s was never uploaded", aegis.ErrInvalidArgument, sum)}
	}
	if err != nil {
		return nil, readError{fmt.Errorf("load module: %w", err)}
	}
	mod, err := r.cfg.Engine.Compile(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	compiled[sum] = mod
	app.modules = append(app.modules, mod)
	return mod, nil
}

// withApp returns the snapshot that results from replacing app, with the
// gateway's route table rebuilt from every active app (route conflicts
// across apps refuse; private routes left out) and each app's own table,
// private routes included, for invoke.
func (r *Registry) withApp(app *App) (*Snapshot, error) {
	cur := r.snap.Load()
	apps := make(map[string]*App, len(cur.Apps)+1)
	for k, v := range cur.Apps {
		apps[k] = v
	}
	apps[app.Name] = app
	next, err := snapshotOf(apps)
	var ce *route.ConflictError
	if errors.As(err, &ce) {
		return nil, routeConflict(app.Name, ce)
	}
	return next, err
}

// RouteConflictError refuses a version whose route has the method and path
// shape of a route another app already serves. Its message names that app
// once, which is what the author needs to know: the route table's own
// message lists both routes in the order the table met them.
type RouteConflictError struct {
	App, Function, Method, Path string // the refused route
	// Holder is the app (and its function and route) that already serves it.
	Holder, HolderFunction, HolderPath string
}

func (e *RouteConflictError) Error() string {
	if e.Holder == e.App {
		return fmt.Sprintf("route %s %s of function %q has the same method and path shape as %s %s of function %q",
			e.Method, e.Path, e.Function, e.Method, e.HolderPath, e.HolderFunction)
	}
	return fmt.Sprintf("route %s %s of function %q is already served by app %q (function %q, %s %s)",
		e.Method, e.Path, e.Function, e.Holder, e.HolderFunction, e.Method, e.HolderPath)
}

// Is reports the conflict as aegis.ErrConflict.
func (e *RouteConflictError) Is(target error) bool { return target == aegis.ErrConflict }

// routeConflict turns the table's conflict into one told from the side of
// app, the app being activated: the table builds apps in name order, so
// the route it refused may be the other app's.
func routeConflict(app string, ce *route.ConflictError) *RouteConflictError {
	mine, theirs := ce.Route, ce.Existing
	if theirs.App == app && mine.App != app {
		mine, theirs = theirs, mine
	}
	return &RouteConflictError{App: mine.App, Function: mine.Function, Method: mine.Method, Path: mine.Path,
		Holder: theirs.App, HolderFunction: theirs.Function, HolderPath: theirs.Path}
}

// snapshotOf builds the snapshot serving exactly apps: withApp after a
// deploy, Delete after a removal, so both derive routes the same way.
func snapshotOf(apps map[string]*App) (*Snapshot, error) {
	var routes []route.Route
	appRoutes := make(map[string]*route.Table, len(apps))
	for _, name := range sortedKeys(apps) {
		a := apps[name]
		own := len(routes) // where this app's routes start
		for _, fn := range a.Manifest.FunctionNames() {
			for i, t := range a.Manifest.Functions[fn].Triggers {
				if t.HTTP == nil {
					continue
				}
				routes = append(routes, route.Route{Method: t.HTTP.Method, Path: t.HTTP.Path, App: a.Name, Function: fn, Public: t.HTTP.Public, Auth: t.HTTP.Auth,
					JWT: t.HTTP.JWT, HMAC: t.HTTP.HMAC, Rule: a.rules[ruleKey{fn, i}], Private: t.HTTP.Private,
					Schema: a.requests[ruleKey{fn, i}], Rate: t.HTTP.Rate})
			}
		}
		// An app's own table holds its private routes too. They never meet
		// other apps' routes, so a private route cannot conflict with (or
		// be discovered through) another app's public one.
		tbl, err := route.New(routes[own:])
		if err != nil {
			return nil, err
		}
		appRoutes[name] = tbl
	}
	// Private routes stay out of the gateway's table entirely: from outside
	// they are indistinguishable from paths nobody declared, 404 and 405
	// (Allow) alike.
	served := make([]route.Route, 0, len(routes))
	for _, rt := range routes {
		if !rt.Private {
			served = append(served, rt)
		}
	}
	table, err := route.New(served)
	if err != nil {
		return nil, err
	}
	private, err := route.New(privateShapes(routes))
	if err != nil {
		return nil, err
	}
	return &Snapshot{Apps: apps, Routes: table, appRoutes: appRoutes, private: private}, nil
}

// privateShapes is every private route of every app, one per method and
// path shape: apps may share a private path, and the table they build only
// answers whether a request the gateway does not serve would have reached
// one (logPrivateProbe), so the first app's route stands for the others.
func privateShapes(routes []route.Route) []route.Route {
	seen := map[string]bool{}
	var out []route.Route
	for _, rt := range routes {
		if !rt.Private {
			continue
		}
		segs := strings.Split(rt.Path, "/")
		for i, seg := range segs {
			if strings.HasPrefix(seg, "{") {
				segs[i] = "{}"
			}
		}
		key := strings.ToUpper(rt.Method) + " " + strings.Join(segs, "/")
		if !seen[key] {
			seen[key] = true
			out = append(out, rt)
		}
	}
	return out
}

// activate swaps in next and retires the instances of the app version it replaced.
func (r *Registry) activate(next *Snapshot, appName string) {
	prev := r.snap.Swap(next)
	if r.cfg.OnChange != nil {
		r.cfg.OnChange(next)
	}
	old, ok := prev.Apps[appName]
	if !ok || old == next.Apps[appName] {
		return
	}
	r.retiring.Add(1)
	go func() {
		defer r.retiring.Done()
		select {
		case <-time.After(r.cfg.Retire):
		case <-r.closed:
		}
		r.closeApp(old)
	}()
}

func (r *Registry) closeApp(app *App) {
	for _, f := range app.Functions {
		if f.Instance != nil {
			_ = f.Instance.Close(context.Background())
		}
	}
	for _, m := range app.modules {
		_ = m.Close(context.Background())
	}
	app.modules = nil
}

// Close retires every version; in-flight invocations should have drained before.
func (r *Registry) Close(ctx context.Context) error {
	r.once.Do(func() {
		close(r.closed)
		r.retiring.Wait()
		for _, a := range r.snap.Load().Apps {
			r.closeApp(a)
		}
	})
	return nil
}

func (a *App) versionLabel() string { return "v" + strconv.Itoa(a.Version) }

// VersionLabel is the version as shown to users ("v3").
func (a *App) VersionLabel() string { return a.versionLabel() }

func (r *Registry) loadAppRecord(ctx context.Context, app string) (*appRecord, error) {
	rec, _, err := r.loadAppRecordRev(ctx, app)
	return rec, err
}

// loadAppRecordRev is loadAppRecord with the record's revision, the one
// swapAppRecord compares against.
func (r *Registry) loadAppRecordRev(ctx context.Context, app string) (*appRecord, uint64, error) {
	b, rev, err := r.cfg.State.Get(ctx, appKey(app))
	if err != nil {
		return nil, 0, err
	}
	var rec appRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, 0, fmt.Errorf("decode %s: %w", appKey(app), err)
	}
	return &rec, rev, nil
}

// swapAppRecord writes the app's record only if it is still at revision
// rev (0: only if there is none). Between reading the record and writing
// it, a deploy takes seconds to build; a deploy, rollback or delete
// through another server in that time must not be overwritten, or the
// servers would each serve a different version under one number.
func (r *Registry) swapAppRecord(ctx context.Context, rec *appRecord, rev uint64) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = r.cfg.State.Create(ctx, appKey(rec.App), b)
	} else {
		_, err = r.cfg.State.Update(ctx, appKey(rec.App), b, rev)
	}
	if errors.Is(err, aegis.ErrConflict) {
		return ErrChangedElsewhere
	}
	return err
}

// nextVersion is the number the app's next version gets, and the
// revision of the counter it was read from, for claimVersion. The counter
// (seq.APP) starts from the app record's latest version, for apps recorded
// before it existed.
func (r *Registry) nextVersion(ctx context.Context, rec *appRecord) (number int, rev uint64, err error) {
	key := seqKey(rec.App)
	b, rev, err := r.cfg.State.Get(ctx, key)
	switch {
	case errors.Is(err, aegis.ErrNotFound):
		return rec.Latest + 1, 0, nil
	case err != nil:
		return 0, 0, fmt.Errorf("read the version counter: %w", err)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return 0, 0, fmt.Errorf("read the version counter: %s holds %q", key, b)
	}
	return max(rec.Latest, n) + 1, rev, nil
}

// claimVersion makes number the app's, for this deploy alone across every
// server, by advancing the counter with a compare-and-swap from rev: two
// deploys at once never write one version record each. It runs once the
// version has built, so a deploy that fails to build leaves no gap; a
// number claimed by a deploy that fails after is not used again.
func (r *Registry) claimVersion(ctx context.Context, app string, number int, rev uint64) error {
	var err error
	v := []byte(strconv.Itoa(number))
	if rev == 0 {
		_, err = r.cfg.State.Create(ctx, seqKey(app), v)
	} else {
		_, err = r.cfg.State.Update(ctx, seqKey(app), v, rev)
	}
	if errors.Is(err, aegis.ErrConflict) {
		return ErrChangedElsewhere
	}
	if err != nil {
		return fmt.Errorf("claim v%d: %w", number, err)
	}
	return nil
}

func (r *Registry) getJSON(ctx context.Context, key string, v any) error {
	b, _, err := r.cfg.State.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

func (r *Registry) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = r.cfg.State.Put(ctx, key, b)
	return err
}

func appKey(app string) string            { return "app." + app }
func versionKey(app string, v int) string { return "ver." + app + "." + strconv.Itoa(v) }
func seqKey(app string) string            { return "seq." + app }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Delete removes an app. Its routes leave the gateway and its event,
// object and schedule triggers stop with the new snapshot (OnChange runs
// as after a deploy); its instances close after the retire grace period,
// like a replaced version's. Its app record and version records are
// deleted from state, so a restart does not bring it back and a later
// deploy of the same name starts over at v1 with nothing to roll back to.
// What the app stored (tables, objects), its webhook secrets and the
// modules it ran are kept: a redeploy finds them, and erasing data is a
// separate decision. An app with no record is aegis.ErrNotFound.
func (r *Registry) Delete(ctx context.Context, appName string) error {
	// StateStore has no Delete, so that other implementations of it need
	// not grow one for this; the JetStream bucket used in production has it.
	state, ok := r.cfg.State.(interface {
		Delete(ctx context.Context, key string) error
	})
	if !ok {
		return fmt.Errorf("delete %s: the state store cannot delete: %w", appName, aegis.ErrUnavailable)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.loadAppRecord(ctx, appName); err != nil {
		return fmt.Errorf("delete %s: %w", appName, err)
	}
	cur := r.snap.Load()
	apps := make(map[string]*App, len(cur.Apps))
	for name, a := range cur.Apps {
		if name != appName {
			apps[name] = a
		}
	}
	next, err := snapshotOf(apps)
	if err != nil {
		return fmt.Errorf("delete %s: %w", appName, err)
	}
	// The app record goes first: once it is gone a restart no longer
	// restores the app, whatever happens after.
	if err := state.Delete(ctx, appKey(appName)); err != nil {
		return fmt.Errorf("delete %s: remove app record: %w", appName, err)
	}
	r.activate(next, appName)
	// Version records are unreachable without the app record; removing
	// them, and the version counter, is tidiness, so a failure is logged,
	// not returned. An app deployed again under the name starts at v1.
	if err := state.Delete(ctx, seqKey(appName)); err != nil {
		r.log.Warn("app deleted, but its version counter remains", logkey.App, appName, logkey.Error, err)
	}
	keys, err := r.cfg.State.Keys(ctx, "ver."+appName+".")
	if err != nil {
		r.log.Warn("app deleted, but its versions could not be listed", logkey.App, appName, logkey.Error, err)
	}
	for _, k := range keys {
		if err := state.Delete(ctx, k); err != nil {
			r.log.Warn("app deleted, but a version record remains", logkey.App, appName, logkey.Key, k, logkey.Error, err)
		}
	}
	r.log.Info("app deleted", logkey.App, appName)
	return nil
}

// checkSecrets refuses a manifest granting a secret the app's vault does
// not hold, naming the function and the secret.
func (r *Registry) checkSecrets(ctx context.Context, app string, m *manifest.Manifest) error {
	if r.cfg.SecretExists == nil {
		return nil
	}
	for _, fn := range m.FunctionNames() {
		for _, name := range m.Functions[fn].Grants.Secrets {
			ok, err := r.cfg.SecretExists(ctx, app, name)
			if err != nil {
				return fmt.Errorf("deploy %s: check secret %q: %w", app, name, err)
			}
			if !ok {
				return fmt.Errorf("deploy %s: %w: function %q is granted secret %q, which app %q does not have: set it first (aegis secrets set %s %s)",
					app, aegis.ErrInvalidArgument, fn, name, app, app, name)
			}
		}
	}
	return nil
}
