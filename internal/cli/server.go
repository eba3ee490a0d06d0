package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/asynclog"
	"github.com/aegis-platform/aegis/internal/audit"
	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/internal/otlp"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/vault"
	"github.com/aegis-platform/aegis/manifest"
)

const (
	defaultHTTPAddr     = "127.0.0.1:8080"
	defaultAdminAddr    = "127.0.0.1:8081"
	defaultDrainTimeout = 10 * time.Second

	// closeMargin is added to the drain timeout for the context given to
	// Close: the server bounds draining itself, and needs a moment after
	// that to stop NATS and flush storage.
	closeMargin = 5 * time.Second

	upKeyName = "up-demo"
)

// addServerFlags binds the listener and NATS flags shared by `server` and
// `up` to cfg. --data is a persistent flag of the root command.
func addServerFlags(fs *pflag.FlagSet, cfg *server.Config) {
	fs.StringVar(&cfg.HTTPAddr, "http", defaultHTTPAddr, "gateway listen address (host:0 picks a free port)")
	fs.StringVar(&cfg.AdminAddr, "admin", defaultAdminAddr, "admin API listen address (host:0 picks a free port)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS on both listeners with this certificate (PEM, chain after the leaf)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "private key of --tls-cert (PEM)")
	fs.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", false, "serve HTTPS with a self-signed certificate kept in DATA/tls (development)")
	fs.BoolVar(&cfg.NoConsole, "no-console", false, "do not serve the web console at /console/ on the admin listener")
	fs.StringVar(&cfg.NATSListen, "nats-listen", "", "also expose the embedded NATS on this address (default: in-process only)")
	fs.StringVar(&cfg.NATSURL, "nats", "", "use the external NATS at this URL instead of the embedded one")
	fs.StringVar(&cfg.NATSCreds, "nats-creds", "", "credentials file for the external NATS")
	fs.StringVar(&cfg.NATSUser, "nats-user", "", "user name for the external NATS")
	fs.StringVar(&cfg.NATSPassword, "nats-password", "", "password for the external NATS")
	fs.StringVar(&cfg.NATSToken, "nats-token", "", "token for the external NATS")
	fs.StringVar(&cfg.NATSCA, "nats-ca", "", "CA file to verify the external NATS")
	fs.StringVar(&cfg.NATSCert, "nats-cert", "", "client certificate for mutual TLS with the external NATS")
	fs.StringVar(&cfg.NATSKey, "nats-key", "", "client key for mutual TLS with the external NATS")
	fs.StringVar(&cfg.NATSNkey, "nats-nkey", "", "nkey seed file to authenticate to the external NATS with (another server's DATA/keys/nats.nk)")
	fs.StringVar(&cfg.NATSListenCert, "nats-listen-cert", "", "serve TLS on --nats-listen with this certificate (PEM)")
	fs.StringVar(&cfg.NATSListenKey, "nats-listen-key", "", "private key of --nats-listen-cert (PEM)")
	fs.StringVar(&cfg.ClusterJoin, "cluster-join", "", "the cluster's join file (aegis cluster init --out FILE): keys every server of one installation shares")
	fs.StringVar(&cfg.ClusterName, "cluster-name", "", "run the embedded NATS as a member of this NATS cluster (with --cluster-listen, --cluster-peers, --cluster-join)")
	fs.StringVar(&cfg.ClusterListen, "cluster-listen", "", "address the cluster's routes arrive on (host:port)")
	fs.StringSliceVar(&cfg.ClusterPeers, "cluster-peers", nil, "the members' route URLs, nats-route://host:port, comma-separated (this member's own may be listed)")
	fs.StringVar(&cfg.ClusterCert, "cluster-cert", "", "encrypt the cluster's routes with mutual TLS: this member's certificate (PEM), naming the host its peers reach it by")
	fs.StringVar(&cfg.ClusterKey, "cluster-key", "", "the private key of --cluster-cert (PEM)")
	fs.StringVar(&cfg.ClusterCA, "cluster-ca", "", "the CA (PEM) that signed every member's --cluster-cert; a route whose certificate it did not sign is refused")
	fs.StringVar(&cfg.NodeName, "node-name", "", "this member's name in the cluster, unique and stable (default the host name)")
	fs.IntVar(&cfg.Replicas, "replicas", 0, "copies of every stream and bucket in a cluster (default min(3, cluster size))")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", defaultDrainTimeout, "how long shutdown waits for in-flight work")
	fs.StringVar(&cfg.Gate.FailOn, "deploy-fail-on", "critical", "refuse a deploy with a finding of the deploy gate at or above this level that it does not accept: critical, high, medium, low, info or none")
	fs.StringVar(&cfg.Gate.VulnDB, "vulndb", "", "OSV vulnerability database the deploy gate checks modules' dependencies in: a directory or an http(s) URL (default $AEGIS_VULNDB; none: not checked)")
	cfg.StepUp = rbac.StepUpAuto
	fs.Var((*stepUpFlag)(&cfg.StepUp), "step-up",
		"when dangerous admin changes need an authenticator code: auto (once one is enrolled), always, or off")
	fs.StringVar(&cfg.MasterKey.File, "master-key-file", "",
		"the vault's master key (32 bytes, raw or base64, mode 0600); default $AEGIS_MASTER_KEY, else a key file under the user's config directory, created on first start")
	// The Transit flags fill cfg.Transit; runServer drops it when no key
	// was named. The token is never a flag: VAULT_TOKEN.
	cfg.Transit = &vault.TransitConfig{}
	fs.StringVar(&cfg.Transit.Key, "vault-transit-key", "",
		"use this HashiCorp Vault Transit key as the vault's key-encryption key instead of a master key (address and token from VAULT_ADDR and VAULT_TOKEN)")
	fs.StringVar(&cfg.Transit.Mount, "vault-transit-mount", "transit", "the Transit engine's mount path")
	fs.BoolVar(&cfg.Transit.Derived, "vault-transit-derived", false, "the Transit key was created with derived=true")
	fs.StringVar(&cfg.OTLP.Endpoint, "otlp-endpoint", "",
		"export spans to this OTLP/HTTP collector (http://host:4318; /v1/traces is appended); default $OTEL_EXPORTER_OTLP_ENDPOINT, else off")
	fs.Var((*ratioFlag)(&cfg.OTLP.SampleRatio), "otlp-sample-ratio",
		"share of traces exported over OTLP, more than 0 and at most 1 (default 1, or $OTEL_TRACES_SAMPLER_ARG with a traceidratio sampler)")
	fs.StringArrayVar(&cfg.Guard.TrustedProxies, "trusted-proxy", nil,
		"CIDR or address of a proxy whose X-Forwarded-For names the client the guard counts and blocks (repeatable; default: none, the connection's address)")
	addLimitFlags(fs, cfg)
}

// otlpConfig is where spans go: --otlp-endpoint (a base URL, as
// OTEL_EXPORTER_OTLP_ENDPOINT takes) when given, else the OpenTelemetry
// environment; headers and the service name always come from the
// environment.
func otlpConfig(flags otlp.Config, getenv func(string) string) otlp.Config {
	c := otlp.ConfigFromEnv(getenv)
	if flags.Endpoint != "" {
		c.Endpoint = otlp.TracesURL(flags.Endpoint)
	}
	if flags.SampleRatio != 0 {
		c.SampleRatio = flags.SampleRatio
	}
	c.ServiceVersion = buildVersion().Version
	return c
}

// addLimitFlags binds the connection hygiene and backpressure bounds an
// operator tunes (docs/limits.md); the rest keep their defaults.
func addLimitFlags(fs *pflag.FlagSet, cfg *server.Config) {
	c, b := &cfg.Connections, &cfg.Backpressure
	fs.IntVar(&c.PerAddress, "conns-per-address", server.DefaultConnsPerAddress, "connections one client address may hold open at once, per listener")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "time a client has to send a request's headers")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", server.DefaultWriteTimeout, "time to write a response, on top of the function's own timeout")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long a kept-alive connection may wait for its next request")
	fs.IntVar(&b.AsyncPerCaller, "async-per-caller", server.DefaultAsyncPerCaller, "asynchronous invocations one caller may have in flight on this server")
	fs.IntVar(&b.AsyncPerFunction, "async-per-function", server.DefaultAsyncPerFunction, "asynchronous invocations of one function in flight on this server")
	fs.IntVar(&b.AppEventBacklog, "app-event-backlog", server.DefaultAppEventBacklog, "events of one app that may wait for its triggers")
	l := &cfg.FunctionLogs
	l.MaxAge, l.MaxBytes = server.DefaultLogMaxAge, server.DefaultLogMaxBytes
	fs.DurationVar(&l.MaxAge, "log-max-age", server.DefaultLogMaxAge, "how long function logs are kept (oldest dropped first)")
	fs.Var((*byteSizeFlag)(&l.MaxBytes), "log-max-bytes", "how much function logs may take in the stream, e.g. 256MiB (oldest dropped first)")
	cfg.Audit.MaxBytes = audit.DefaultMaxBytes
	fs.Var((*byteSizeFlag)(&cfg.Audit.MaxBytes), "audit-max-bytes", "bound of the audit log stream, e.g. 1GiB: at it admin changes are refused, never old records dropped")
}

// byteSizeFlag is a size flag written as manifests write sizes ("256MiB").
type byteSizeFlag int64

func (f *byteSizeFlag) String() string { return manifest.ByteSize(*f).String() }
func (f *byteSizeFlag) Type() string   { return "size" }
func (f *byteSizeFlag) Set(s string) error {
	n, err := manifest.ParseByteSize(s)
	if err != nil || n <= 0 {
		return errors.New("must be a size such as 256MiB or 1GB")
	}
	*f = byteSizeFlag(n)
	return nil
}

// ratioFlag is a share: more than 0 and at most 1.
type ratioFlag float64

func (f *ratioFlag) String() string {
	if *f == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(*f), 'g', -1, 64)
}
func (f *ratioFlag) Type() string { return "ratio" }
func (f *ratioFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0 && v <= 1) {
		return errors.New("must be more than 0 and at most 1, such as 0.1")
	}
	*f = ratioFlag(v)
	return nil
}

// stepUpFlag is --step-up; a wrong value is a flag error (exit 2).
type stepUpFlag rbac.StepUpMode

func (f *stepUpFlag) String() string { return string(*f) }
func (f *stepUpFlag) Type() string   { return "mode" }
func (f *stepUpFlag) Set(s string) error {
	m, err := rbac.ParseStepUpMode(s)
	if err != nil || s == "" {
		return errors.New("must be auto, always or off")
	}
	*f = stepUpFlag(m)
	return nil
}

func (c *cli) serverCommand() *cobra.Command {
	var (
		cfg             server.Config
		alertSecretFile string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run an Aegis server until interrupted",
		Long: `Run an Aegis server: the gateway, the admin API and, unless --nats names an
external one, an embedded NATS JetStream keeping its state in the data directory.
The admin token is written to DATA/admin.token (mode 0600). SIGINT or SIGTERM
drains in-flight work for up to --drain-timeout, then stops.`,
		Example: `  aegis server
  aegis server --data /var/lib/aegis --http 0.0.0.0:8080
  aegis server --tls-cert /etc/aegis/cert.pem --tls-key /etc/aegis/key.pem
  aegis server --nats nats://nats.internal:4222 --nats-creds aegis.creds --nats-ca ca.pem
  aegis server --alert-webhook https://hooks.example.com/aegis --alert-webhook-secret-file /etc/aegis/alert-secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.DataDir = c.dataDir
			if cfg.Gate.VulnDB == "" {
				cfg.Gate.VulnDB = c.env("AEGIS_VULNDB")
			}
			if err := checkVulnDB(cfg.Gate.VulnDB); err != nil {
				return err
			}
			if len(cfg.AlertWebhooks) > 0 || alertSecretFile != "" {
				secret, err := server.ReadAlertSecret(alertSecretFile, c.env)
				if err != nil {
					return fmt.Errorf("configure server: %w", err)
				}
				cfg.AlertWebhookSecret = secret
			}
			// The platform log never makes a request wait for stderr.
			logs := asynclog.New(slog.NewJSONHandler(c.stderr, nil), 0)
			defer logs.Close()
			cfg.Logger, cfg.PlatformLogDropped = slog.New(logs), logs.Dropped
			return runServer(cmd.Context(), cfg, c.stderr, nil)
		},
	}
	addServerFlags(cmd.Flags(), &cfg)
	cmd.Flags().StringArrayVar(&cfg.AlertWebhooks, "alert-webhook", nil,
		"POST every guard alert, signed, to this URL: https, or http to a loopback address (repeatable; needs a signing secret)")
	cmd.Flags().StringVar(&alertSecretFile, "alert-webhook-secret-file", "",
		"file (mode 0600) holding the alert webhooks' signing secret, at least 32 bytes; default $"+server.AlertSecretEnv)
	return cmd
}

// runServer starts a server, calls ready (when not nil) once it listens,
// and stops it on SIGINT or SIGTERM, or when ready fails.
func runServer(ctx context.Context, cfg server.Config, stderr io.Writer, ready func(context.Context, *server.Server) error) (err error) {
	cfg.OTLP = otlpConfig(cfg.OTLP, os.Getenv)
	if cfg.Transit != nil && cfg.Transit.Key == "" {
		cfg.Transit = nil
	}
	s, err := server.New(cfg)
	if err != nil {
		return err // already "configure server: …"
	}
	drain := cfg.DrainTimeout
	if drain <= 0 {
		drain = defaultDrainTimeout
	}
	defer func() {
		// Close gets its own bound: by now the context may be done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain+closeMargin)
		defer cancel()
		if cerr := s.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop server: %w", cerr))
		}
	}()
	// Start gets the caller's context, not the signal one: parts of the
	// server may live as long as the context they started with, and must
	// keep running while Close drains them. Until Start returns, Ctrl-C
	// keeps its default effect.
	if err := s.Start(ctx); err != nil {
		return err // already "start: …"
	}
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Scripts read the addresses off this line (bench/scn_memory.go): the
	// console's comes last, so the line starts as it always did.
	console := ""
	if !cfg.NoConsole {
		console = ", console on " + s.AdminURL() + "/console/"
	}
	fmt.Fprintf(stderr, "aegis: gateway on %s, admin API on %s (admin token in %s)%s\n",
		s.GatewayURL(), s.AdminURL(), filepath.Join(cfg.DataDir, tokenFile), console)
	if ready != nil {
		if err := ready(sigCtx, s); err != nil {
			return err
		}
	}
	<-sigCtx.Done()
	// Restore the default signal handling so that a second Ctrl-C during a
	// slow drain ends the process at once.
	stop()
	fmt.Fprintf(stderr, "aegis: stopping (draining for up to %s)\n", drain)
	return nil
}

func (c *cli) upCommand() *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "up DIR",
		Short: "Build DIR/aegis.yaml, start a local server, deploy it and print a URL and an API key",
		Long: `The development loop in one command: build the functions of DIR/aegis.yaml,
start an embedded server (data in DIR/.aegis unless --data says otherwise),
give every secret the manifest grants and the app lacks a random value
(saying which; set the real one with aegis secrets set), deploy the app,
create a fresh API key named "` + upKeyName + `" (revoking the previous
one), print the gateway URL, the key and a curl example, then serve until Ctrl-C.`,
		Example: `  aegis up examples/travel-diary
  aegis up . --http 127.0.0.1:0 --admin 127.0.0.1:0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runUp(cmd, &cfg, args[0], false)
		},
	}
	addServerFlags(cmd.Flags(), &cfg)
	return cmd
}

// runUp is `aegis up DIR` and, with watch, `aegis dev DIR`: build, start a
// local server, deploy, print how to call it, and serve until interrupted
// (rebuilding and redeploying on every save when watching).
func (c *cli) runUp(cmd *cobra.Command, cfg *server.Config, dir string, watch bool) error {
	manifestPath := filepath.Join(dir, defaultManifest)
	cfg.DataDir = c.dataDir
	if !cmd.Flags().Changed("data") {
		cfg.DataDir = filepath.Join(dir, defaultDataDir)
	}
	progress := newProgress(c.stderr)
	defer progress.Close()
	arts, err := build.Build(cmd.Context(), manifestPath, progress)
	if err != nil {
		return err
	}
	// The server's own lines go to a file, warnings and errors to
	// the terminal as well: the summary up prints stays readable,
	// and a failing function still shows where the developer is.
	logFile, err := openServerLog(cfg.DataDir)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logs := asynclog.New(slog.NewMultiHandler(
		slog.NewTextHandler(logFile, nil),
		slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), 0)
	defer logs.Close() // before logFile.Close: it writes what is queued
	cfg.Logger, cfg.PlatformLogDropped = slog.New(logs), logs.Dropped
	return runServer(cmd.Context(), *cfg, c.stderr, func(ctx context.Context, s *server.Server) error {
		if err := c.upReady(ctx, s, *cfg, manifestPath, arts, progress, logFile.Name()); err != nil {
			return err
		}
		if watch {
			c.redeployOnSave(ctx, s, dir, manifestPath, cfg.DataDir) // until interrupted
		}
		return nil
	})
}

// upReady deploys to the freshly started server and prints how to call it.
func (c *cli) upReady(ctx context.Context, s *server.Server, cfg server.Config, manifestPath string, arts []build.Artifact, progress *progressWriter, logPath string) error {
	dataDir := cfg.DataDir
	ac := localClient(s, c.otpOptions()...)
	if err := upSecrets(ctx, ac, manifestPath, dataDir, progress); err != nil {
		return err
	}
	res, err := deploy(ctx, ac, manifestPath, arts, nil, progress)
	progress.Close()
	if err != nil {
		return err
	}
	key, err := freshKey(ctx, ac, upKeyName)
	if err != nil {
		return err
	}
	routes, err := ac.Routes(ctx)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	caFile := ""
	if cfg.TLSSelfSigned {
		caFile = server.SelfSignedCertFile(dataDir)
	}
	try := curlCommand(s.GatewayURL(), caFile, key.Key, res.App, routes, routeExamples(manifestPath))
	if try == "" && len(res.Functions) > 0 {
		try = fmt.Sprintf("AEGIS_URL=%s aegis --data %s invoke %s %s -d '{}'",
			s.AdminURL(), shellQuote(dataDir), res.App, res.Functions[0])
	}
	fmt.Fprintf(c.stdout, "\n%s %s is up.\n\n", res.App, res.Version)
	fmt.Fprintf(c.stdout, "  gateway  %s\n", s.GatewayURL())
	if caFile != "" {
		fmt.Fprintf(c.stdout, "  CA cert  %s  (self-signed; curl --cacert, or AEGIS_CA_CERT for the CLI)\n", caFile)
	}
	fmt.Fprintf(c.stdout, "  API key  %s  (name %q)\n", key.Key, key.Name)
	if !cfg.NoConsole {
		fmt.Fprintf(c.stdout, "  console  %s/console/  (sign in with the admin token in %s)\n", s.AdminURL(), shellQuote(filepath.Join(dataDir, tokenFile)))
	}
	fmt.Fprintln(c.stdout)
	if try != "" {
		fmt.Fprintf(c.stdout, "Try:\n  %s\n\n", try)
	}
	fmt.Fprintf(c.stdout, "Other commands reach this server with --data %s, for example:\n  aegis --data %s logs --app %s\n\n",
		shellQuote(dataDir), shellQuote(dataDir), res.App)
	fmt.Fprintf(c.stdout, "Server log: %s (warnings and errors also here)\n", logPath)
	fmt.Fprintln(c.stdout, "Press Ctrl-C to stop.")
	return nil
}

// openServerLog opens DATA/server.log for appending, making the data
// directory as the server would.
func openServerLog(dataDir string) (*os.File, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	return f, nil
}

// routeExamples reads the first of the "examples" of each HTTP trigger's
// body schema, by "METHOD PATH": the body of the first request up prints,
// so that it works (a schema-checked route refuses "{}"). Unreadable files
// are skipped; the deploy has already read them.
func routeExamples(manifestPath string) map[string]string {
	m, err := manifest.Load(manifestPath)
	if err != nil {
		return nil
	}
	root, err := os.OpenRoot(filepath.Dir(manifestPath))
	if err != nil {
		return nil
	}
	defer root.Close()
	out := map[string]string{}
	for _, fn := range m.Functions {
		for _, t := range fn.Triggers {
			if t.HTTP == nil || t.HTTP.Schema == nil || t.HTTP.Schema.Body == "" {
				continue
			}
			data, err := readSchemaFile(root, t.HTTP.Schema.Body)
			if err != nil {
				continue
			}
			var schema struct {
				Examples []json.RawMessage `json:"examples"`
			}
			var compact bytes.Buffer
			if json.Unmarshal(data, &schema) != nil || len(schema.Examples) == 0 || json.Compact(&compact, schema.Examples[0]) != nil {
				continue
			}
			out[t.HTTP.Method+" "+t.HTTP.Path] = compact.String()
		}
	}
	return out
}

// freshKey revokes every active key that an earlier `aegis up` created
// (name, or name-TIMESTAMP), so that keys printed before stop working, and
// creates a new one. Revoked names stay taken on the server, hence the
// timestamped name when name itself was used before.
func freshKey(ctx context.Context, ac *client.Client, name string) (*client.NewKey, error) {
	keys, err := ac.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	taken := false
	for _, k := range keys {
		if k.Name != name && !strings.HasPrefix(k.Name, name+"-") {
			continue
		}
		taken = taken || k.Name == name
		if k.Revoked {
			continue
		}
		if err := ac.RevokeKey(ctx, k.Name); err != nil && !errors.Is(err, client.ErrNotFound) {
			return nil, fmt.Errorf("revoke key %s: %w", k.Name, err)
		}
	}
	if taken {
		name += "-" + time.Now().UTC().Format("20060102-150405")
	}
	k, err := ac.CreateKey(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", name, err)
	}
	return k, nil
}

// curlCommand is a curl of one of the app's routes, or "" when the app has
// no HTTP route. It picks one that works as printed: a POST (or PUT or
// PATCH) whose body schema has an example, sending that example; else a GET
// without path parameters; else any route, a GET first. examples come from
// routeExamples. caFile, when set, is the certificate curl must trust.
func curlCommand(gatewayURL, caFile, key, app string, routes []client.Route, examples map[string]string) string {
	rank := func(r *client.Route) int {
		_, hasExample := examples[r.Method+" "+r.Path]
		switch {
		case hasExample && r.Method == "POST":
			return 0
		case hasExample:
			return 1
		case r.Method == "GET" && !strings.Contains(r.Path, "{"):
			return 2
		case r.Method == "GET":
			return 3
		default:
			return 4
		}
	}
	var pick *client.Route
	for i := range routes {
		r := &routes[i]
		if r.App != app || r.Private {
			continue // a private route answers 404 from outside
		}
		if pick == nil || rank(r) < rank(pick) {
			pick = r
		}
	}
	if pick == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("curl")
	if caFile != "" {
		b.WriteString(" --cacert " + shellQuote(caFile))
	}
	if pick.Method != "GET" {
		b.WriteString(" -X " + pick.Method)
	}
	if !pick.Public {
		b.WriteString(" -H 'Authorization: Bearer " + key + "'")
	}
	if pick.Method == "POST" || pick.Method == "PUT" || pick.Method == "PATCH" {
		body, ok := examples[pick.Method+" "+pick.Path]
		if !ok {
			body = "{}"
		}
		b.WriteString(" -H 'Content-Type: application/json' -d " + shellQuote(body))
	}
	b.WriteString(" " + shellQuote(strings.TrimRight(gatewayURL, "/")+pick.Path))
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters of plain paths and URLs.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
