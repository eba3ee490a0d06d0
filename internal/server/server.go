// Package server is the composition root: it builds every part of Aegis from
// a Config, wires them together and owns their lifecycle (Start, Close).
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/admin"
	"github.com/aegis-platform/aegis/internal/admission"
	"github.com/aegis-platform/aegis/internal/alert"
	"github.com/aegis-platform/aegis/internal/audit"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/capability"
	"github.com/aegis-platform/aegis/internal/clusterjoin"
	"github.com/aegis-platform/aegis/internal/connlimit"
	"github.com/aegis-platform/aegis/internal/console"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/gateway"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/otlp"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/schedule"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/usage"
	"github.com/aegis-platform/aegis/internal/vault"
	"github.com/aegis-platform/aegis/manifest"
)

// Server is one running Aegis: embedded (or external) NATS, sandbox,
// gateway and admin API.
type Server struct {
	cfg Config
	log *slog.Logger

	vault      *vault.Vault
	masterKey  vault.MasterKeyInfo
	kek        vault.KMS // the key-encryption key the vault opened with (backup.go)
	vaultSweep *periodic.Loop

	token      string
	console    *console.Console // the web console on the admin listener
	node       *jetstream.Node
	logs       *funclog.Log
	dispatcher *dispatch.Dispatcher
	bus        *bus.Bus
	engine     *sandbox.Engine
	registry   *registry.Registry
	follower   *registry.Follower
	triggers   []trigger // the bus and the scheduler, in start order
	gateway    *gateway.Gateway
	keys       *auth.Keys
	metrics    *metrics.Metrics
	usage      *usage.Recorder
	graph      *callgraph.Recorder
	spans      *otlp.Exporter // nil: spans are not exported
	audit      *audit.Log
	security   *audit.Security       // counts security log lines into audit records
	guard      *guard.Guard          // blocks addresses (guard.go)
	join       *clusterjoin.Material // the cluster's shared material, with --cluster-join (cluster.go)
	guardRules *guardRules           // the rule file every server applies (guardrules.go)
	proxies    guard.Proxies         // whose X-Forwarded-For the guard believes
	alerts     *alert.Log            // the guard's alerts, shared (alerts.go)
	alertHooks *alert.Webhooks       // their delivery; nil without webhooks
	heartbeat  *heartbeat            // this server's record among the cluster's (heartbeat.go)
	gate       *deployGate           // checks every deploy before it is activated (gate.go)

	tls                *tls.Config // nil: plain HTTP
	gatewayLn, adminLn net.Listener
	gatewaySrv         *http.Server
	adminSrv           *http.Server
	serveErr           chan error

	closeOnce sync.Once
	closeErr  error
}

// WithDefaults fills every unset field with its safe default.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = ".aegis"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:8081"
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if c.StepUp == "" {
		c.StepUp = rbac.StepUpAuto
	}
	c.Connections = c.Connections.withDefaults()
	c.Backpressure = c.Backpressure.withDefaults()
	return c
}

// New validates cfg and returns a server that has not started yet.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := metrics.New()
	m.ReadLogDrops(metrics.LogPlatform, cfg.PlatformLogDropped)
	sec := audit.NewSecurity(cfg.Audit.SecurityWindow)
	return &Server{cfg: cfg, log: slog.New(sec.Handler(cfg.Logger.Handler())), security: sec,
		serveErr: make(chan error, 2), metrics: m}, nil
}

// Start opens storage, restores deployed apps and starts both listeners. It
// returns once they accept connections. On error everything opened so far
// is closed again.
func (s *Server) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = s.Close(context.Background())
		}
	}()
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("start: create data dir: %w", err)
	}
	// Certificates before anything slow: a wrong path should not wait for
	// JetStream to recover its streams.
	if s.tls, err = serverTLS(s.cfg, time.Now()); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := s.readJoin(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if s.join != nil {
		// One root token for the whole cluster: any server takes it.
		s.token = s.join.AdminToken
	} else {
		token, created, err := auth.LoadOrCreateAdminToken(filepath.Join(s.cfg.DataDir, "admin.token"))
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		s.token = token
		if created {
			s.log.Info("admin token created", logkey.File, filepath.Join(s.cfg.DataDir, "admin.token"))
		}
	}
	if err := s.startSpans(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	natsCfg, err := s.natsConfig()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	s.node, err = jetstream.Open(ctx, natsCfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := s.wire(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := s.listen(); err != nil {
		return err
	}
	s.startHeartbeat(ctx)
	return nil
}

// wire builds the platform on an open NATS node.
func (s *Server) wire(ctx context.Context) error {
	state, err := s.node.Bucket(ctx, "aegis_state", jetstream.BucketOptions{History: 1, Description: "deployed apps and versions"})
	if err != nil {
		return err
	}
	keyBucket, err := s.node.Bucket(ctx, "aegis_keys", jetstream.BucketOptions{History: 1, Description: "API key hashes"})
	if err != nil {
		return err
	}
	webhookBucket, err := s.node.Bucket(ctx, "aegis_webhook_secrets", jetstream.BucketOptions{History: 1, Description: "webhook signing secrets"})
	if err != nil {
		return err
	}
	// Accepted webhook signatures, shared by every server on this NATS so
	// a captured request cannot be replayed to another one.
	seenBucket, err := s.node.Bucket(ctx, "aegis_webhook_seen", jetstream.BucketOptions{History: 1, TTL: auth.SeenTTL,
		Description: "accepted webhook signatures, kept for the replay window"})
	if err != nil {
		return err
	}
	// Admin tokens (hashes) and the step-up authenticator share a bucket:
	// both say who may change the platform.
	adminBucket, err := s.node.Bucket(ctx, "aegis_admin_tokens", jetstream.BucketOptions{History: 1, Description: "admin token hashes and the step-up authenticator"})
	if err != nil {
		return err
	}
	invocations, err := s.node.Bucket(ctx, "aegis_invocations", jetstream.BucketOptions{History: 1, TTL: time.Hour, Description: "async invocation results"})
	if err != nil {
		return err
	}
	modules, err := s.node.ObjectStore(ctx, "aegis_modules")
	if err != nil {
		return err
	}
	level, err := s.cfg.Gate.level()
	if err != nil {
		return err
	}
	s.gate = &deployGate{modules: modules, level: level, vulndb: s.cfg.Gate.VulnDB}
	if s.logs, err = funclog.Open(ctx, s.node, s.log, s.cfg.FunctionLogs); err != nil {
		return err
	}
	if err := s.openAudit(ctx); err != nil {
		return err
	}
	if err := s.openVault(ctx); err != nil {
		return err
	}
	if s.cfg.Secrets == nil {
		s.cfg.Secrets = s.vault
	}
	// Usage and budgets, shared by every server on this NATS: rows and
	// budget counters in one bucket, kept for usage.Retention.
	usageBucket, err := s.node.Bucket(ctx, usage.Bucket, jetstream.BucketOptions{History: 1, TTL: usage.Retention,
		Description: "usage by app, function and caller per hour; budget counters and alerts per window"})
	if err != nil {
		return err
	}
	// An API key's budget is in its record (aegis keys create --budget);
	// the keys are opened below, before anything is invoked.
	keyBudget := func(ctx context.Context, name string) (manifest.Quota, error) {
		if s.keys == nil {
			return manifest.Quota{}, fmt.Errorf("key budget of %s: %w: keys not open", name, aegis.ErrUnavailable)
		}
		info, err := s.keys.Info(ctx, name)
		if err != nil {
			return manifest.Quota{}, err
		}
		return info.Budget, nil
	}
	s.usage = usage.New(usage.Config{Store: usageBucket, Logger: s.log, Metrics: s.metrics, KeyBudget: keyBudget})
	// The guard comes before everything that tells it of a signal or asks
	// it about a block: the call graph, dispatch, the bus, host calls and
	// the gateway; the alert stream before the guard, which raises alerts.
	if err := s.openAlerts(ctx); err != nil {
		return err
	}
	if err := s.openGuard(ctx); err != nil {
		return err
	}
	if err := s.openGuardRules(ctx); err != nil {
		return err
	}
	if err := s.openGraph(ctx); err != nil {
		return err
	}
	s.dispatcher = dispatch.New(s.logs, s.log).WithUsage(s.usage).WithMetrics(s.metrics).WithSpans(s.Spans()).WithGuard(s.guard)
	s.dispatcher.WithGraph(s.graph)
	s.metrics.ReadLogDrops(metrics.LogFunction, s.logs.Dropped)
	snapshot := func() *registry.Snapshot { return s.registry.Snapshot() }
	eventKey, err := s.eventKey()
	if err != nil {
		return err
	}
	if err := s.checkEventKey(ctx, eventKey); err != nil {
		return err
	}
	if s.bus, err = bus.Open(ctx, bus.Config{Node: s.node, Dispatcher: s.dispatcher, Logger: s.log,
		RetryBase: s.cfg.RetryBase, RetryMax: s.cfg.RetryMax, SigningKey: eventKey, Metrics: s.metrics,
		Limits: s.eventLimits(), Spans: s.Spans(), Data: eventSealer{s.vault}, Guard: s.guard}, snapshot); err != nil {
		return err
	}
	s.metrics.ReadPendingEvents(s.bus)
	// Each kind of trigger but HTTP follows the active apps (the gateway
	// reads routes from the snapshot itself): events and objects through
	// the bus, then schedules. Registered as each starts, so a start that
	// fails half-way still closes what it opened.
	s.triggers = append(s.triggers, s.bus)
	// One admission for the gateway and for calls between functions: a
	// route admits a request the same way whoever sends it.
	admit := admission.New(s.log, s.metrics)
	host, err := capability.New(capability.Config{
		Tables:   &tables{node: s.node, data: s.vault},
		Objects:  &objects{node: s.node, bus: s.bus, data: s.vault},
		Events:   s.bus,
		Logs:     s.logs,
		Logger:   s.log,
		Secrets:  s.cfg.Secrets,
		Dial:     s.cfg.EgressDial,
		Resolver: s.cfg.EgressResolver,
		RootCAs:  s.cfg.EgressRootCAs,
		// Calls between functions share the bus's hop limit, so a chain
		// mixing events and calls ends at the same depth.
		Functions: &functions{snapshot: snapshot, dispatcher: s.dispatcher},
		HopLimit:  bus.DefaultHopLimit,
		Admission: admit,
		Metrics:   s.metrics,
		Graph:     s.graph,
		Spans:     s.Spans(),
		Guard:     s.guard,
	})
	if err != nil {
		return err
	}
	if s.engine, err = sandbox.New(ctx, sandbox.Config{CacheDir: s.cacheDir(), Host: host.Traced(), Logger: s.log}); err != nil {
		return err
	}
	s.metrics.ReadPools(s.engine)
	s.triggers = append(s.triggers, schedule.New(s.dispatcher, snapshot, s.log, scheduleTicks{s.node}))
	s.registry = registry.New(registry.Config{
		State: state, Modules: modules, Engine: s.engine, Logger: s.log, SecretExists: s.secretExists,
		OnChange: func(snap *registry.Snapshot) {
			for _, t := range s.triggers {
				if err := t.Sync(context.Background(), snap); err != nil {
					s.log.Error("trigger sync failed", logkey.Error, err)
				}
			}
		},
	})
	if err := s.registry.Restore(ctx); err != nil {
		return err
	}
	s.followApps()
	if err := s.openHeartbeat(ctx); err != nil {
		return err
	}
	keys := auth.NewKeys(keyBucket)
	s.keys = keys
	webhookSecrets := auth.NewWebhookSecrets(webhookBucket)
	asyncQueue, err := openAsyncQueue(ctx, s.node)
	if err != nil {
		return err
	}
	s.gateway = gateway.New(gateway.Config{
		Rejected: s.usage.Reject,
		Snapshot: s.registry.Snapshot, Keys: keys, Dispatcher: s.dispatcher,
		JWT: auth.NewJWTVerifier(auth.NewJWKS(nil)), Webhooks: auth.NewWebhooks(webhookSecrets, seenBucket),
		Async: gateway.NewAsyncStore(invocations), Queue: asyncQueue, Data: s.vault, SigningKey: eventKey,
		Logger: s.log, Admission: admit,
		MaxAsync: s.cfg.Backpressure.Async, MaxAsyncPerCaller: s.cfg.Backpressure.AsyncPerCaller,
		MaxAsyncPerFunction: s.cfg.Backpressure.AsyncPerFunction, Metrics: s.metrics, Spans: s.Spans(),
		Guard: s.guard, Proxies: s.proxies,
	})
	if err := s.gateway.Open(ctx); err != nil {
		return err
	}
	adminTokens := auth.NewAdminTokens(adminBucket)
	api := admin.New(admin.Config{Token: s.token, Registry: s.registry, Keys: keys, WebhookSecrets: webhookSecrets, Secrets: adminSecrets{s.vault}, RotateMaster: s.rotateMaster, RotateDataKey: s.rotateDataKey, Backup: backuper{s}, Bus: s.bus, Logs: s.logs, Dispatcher: s.dispatcher, Logger: s.log,
		AdminTokens: adminTokens, MFA: auth.NewAuthenticator(adminBucket), StepUp: s.cfg.StepUp,
		Metrics: s.metrics.Handler(), Usage: s.usage, OnAuthFailure: s.metrics.AuthFailure,
		Graph: s.graph, Audit: s.audit, Guard: s.guard, GuardRules: s.adminGuardRules(), Alerts: s.alerts,
		Cluster: s.heartbeat, Gate: s.gate})
	s.gatewaySrv = newHTTPServer(s.gateway, s.cfg.Connections, s.log)
	if !s.cfg.NoConsole {
		if err := s.openConsole(ctx, api, adminTokens); err != nil {
			return err
		}
	}
	s.adminSrv = newHTTPServer(api, s.cfg.Connections, s.log)
	return nil
}

// newHTTPServer applies the connection hygiene of c to a listener's
// server. The fixed read and write timeouts suit every request but those
// that run a function; the gateway and the admin API's invoke extend
// those per request (connlimit.ExtendForRun).
func newHTTPServer(h http.Handler, c Connections, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// listenCapped listens on addr with the per-address connection cap on the
// raw TCP listener: TLS (ServeTLS) wraps it, so a refused connection
// never costs a handshake.
func (s *Server) listenCapped(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return connlimit.New(ln, connlimit.Config{
		PerAddress: s.cfg.Connections.PerAddress, Name: name, Logger: s.log,
		OnRefuse: s.metrics.ConnectionRefused,
	}), nil
}

func (s *Server) listen() error {
	var err error
	if s.gatewayLn, err = s.listenCapped("gateway", s.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	if s.adminLn, err = s.listenCapped("admin", s.cfg.AdminAddr); err != nil {
		return fmt.Errorf("start admin API: %w", err)
	}
	s.gatewaySrv.Handler = withHeaders(s.gatewaySrv.Handler, gatewayHeaders(s.tls != nil))
	s.adminSrv.Handler = adminListener(s.adminSrv.Handler, s.console, s.tls != nil)
	if s.tls != nil {
		// Serve with ServeTLS below, which also offers HTTP/2 through ALPN.
		s.gatewaySrv.TLSConfig = s.tls.Clone()
		s.adminSrv.TLSConfig = s.tls.Clone()
	}
	go func() { s.serveErr <- serve(s.gatewaySrv, s.gatewayLn) }()
	go func() { s.serveErr <- serve(s.adminSrv, s.adminLn) }()
	s.log.Info("aegis started", logkey.Gateway, s.GatewayURL(), logkey.Admin, s.AdminURL(), logkey.Data, s.cfg.DataDir)
	return nil
}

func serve(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// GatewayURL is the base URL of the gateway listener, e.g.
// http://127.0.0.1:8080, or https://… when the server serves TLS.
func (s *Server) GatewayURL() string { return s.baseURL(s.gatewayLn) }

// AdminURL is the base URL of the admin listener.
func (s *Server) AdminURL() string { return s.baseURL(s.adminLn) }

func (s *Server) baseURL(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	if s.tls != nil {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// Certificate is the certificate both listeners present, or nil when the
// server serves plain HTTP. A client in the same process (aegis up) trusts
// exactly this certificate.
func (s *Server) Certificate() *x509.Certificate {
	if s.tls == nil {
		return nil
	}
	return s.tls.Certificates[0].Leaf
}

// Metrics is the server's Prometheus registry and the metrics on it; its
// Handler serves them in the exposition format, which the admin listener
// mounts at GET /metrics (any role may read it, docs/metrics.md).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// AdminToken is the admin bearer token (also in DataDir/admin.token).
func (s *Server) AdminToken() string { return s.token }

// NATSURL is the URL other processes can reach this server's NATS at: the
// embedded server's listener when NATSListen is set, the external URL in
// use, or "" when the embedded server has no port (the default).
func (s *Server) NATSURL() string {
	if s.node == nil {
		return ""
	}
	return s.node.ClientURL()
}

// Close drains in-flight work (bounded by DrainTimeout) and stops everything.
// It is safe to call twice.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

// Kill stops the server at once, as SIGKILL would stop its process: its
// NATS connection (and embedded NATS server) gone without draining, so
// nothing in flight is acknowledged, flushed or handed back, and its
// listeners closed without waiting. What follows only releases the
// process's resources: every write it tries fails. For the tests of a
// cluster losing a member.
func (s *Server) Kill() {
	for _, srv := range []*http.Server{s.gatewaySrv, s.adminSrv} {
		if srv != nil {
			_ = srv.Close()
		}
	}
	if s.node != nil {
		s.node.Kill()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// RouteURL is where this server's embedded NATS accepts cluster routes
// (nats-route://host:port), "" when it is not a cluster member.
func (s *Server) RouteURL() string {
	if s.node == nil {
		return ""
	}
	return s.node.RouteURL()
}

func (s *Server) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	var errs []error
	s.closeHeartbeat(ctx) // first: a server on its way out is no longer listed
	// Stop taking requests, let those in flight finish, then stop triggers.
	for _, srv := range []*http.Server{s.gatewaySrv, s.adminSrv} {
		if srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.stopFollowing() // before the triggers its activations sync
	// Schedules stop first, then the bus, the reverse of how they start.
	for i := len(s.triggers) - 1; i >= 0; i-- {
		s.triggers[i].Close()
	}
	if s.dispatcher != nil {
		if err := s.dispatcher.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.usage != nil {
		// After the drain: the last invocations' usage is flushed and this
		// server's unused leases go back to the shared budgets.
		if err := s.usage.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.graph.Close(ctx); err != nil {
		errs = append(errs, err) // after the drain: the last edges are flushed
	}
	if s.gateway != nil {
		s.gateway.Close()
	}
	s.closeGuardRules()
	s.closeGuard()
	s.closeAlerts() // after the guard, which raises alerts
	if s.keys != nil {
		s.keys.Close() // last-used writes, before the store goes
	}
	if s.registry != nil {
		_ = s.registry.Close(ctx)
	}
	if s.engine != nil {
		_ = s.engine.Close(ctx)
	}
	if s.logs != nil {
		s.logs.Close()
	}
	s.closeAudit(ctx)
	s.closeVault()
	// The last spans, those of the drained invocations, go out before the
	// exporter stops.
	s.closeSpans()
	if s.node != nil {
		if err := s.node.Close(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.log.Warn("shutdown was not clean", logkey.Error, errors.Join(errs...))
	} else {
		s.log.Info("aegis stopped")
	}
	return errors.Join(errs...)
}

// eventLimits are the bus's bounds from the server's configuration; zero
// fields take the bus's defaults.
func (s *Server) eventLimits() bus.Limits {
	b := s.cfg.Backpressure
	return bus.Limits{StreamBytes: b.EventStreamBytes, StreamAge: b.EventStreamAge,
		AppBacklog: b.AppEventBacklog, AppAge: b.AppEventAge}
}

// cacheDir is where compiled modules are kept.
func (s *Server) cacheDir() string {
	if s.cfg.CacheDir != "" {
		return s.cfg.CacheDir
	}
	return filepath.Join(s.cfg.DataDir, "cache")
}

// trigger is a kind of trigger that follows the active apps: on every
// change of the registry's snapshot it starts what the new snapshot
// declares and stops what it no longer does, and Close stops it at
// shutdown. HTTP triggers are not one: the gateway reads its routes from
// the snapshot on every request. A new kind of trigger implements this
// and is appended to Server.triggers where it starts (ARCHITECTURE.md,
// "Adding a trigger").
type trigger interface {
	Sync(ctx context.Context, snap *registry.Snapshot) error
	Close()
}
