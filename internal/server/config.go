package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/vault"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/capability"
	"github.com/aegis-platform/aegis/internal/connlimit"
	"github.com/aegis-platform/aegis/internal/otlp"
	"github.com/aegis-platform/aegis/internal/rbac"
)

// Config is everything `aegis server` and `aegis up` can set. The zero value
// of every field is the safe default (see WithDefaults).
type Config struct {
	DataDir string // default ./.aegis
	// CacheDir keeps compiled modules across restarts, keyed by the
	// module's hash and the runtime's version, so servers may share one;
	// default DataDir/cache.
	CacheDir  string
	HTTPAddr  string // gateway listener, default 127.0.0.1:8080 ("127.0.0.1:0" picks a port)
	AdminAddr string // admin listener, default 127.0.0.1:8081

	// TLSCert and TLSKey are PEM files (the certificate file may hold the
	// chain after the leaf); with them both listeners serve HTTPS only.
	TLSCert, TLSKey string
	// TLSSelfSigned serves HTTPS with a certificate the server makes for
	// itself and keeps in DataDir/tls (cert.pem, key.pem), for development:
	// clients trust it by naming cert.pem as their CA.
	TLSSelfSigned bool

	// NoConsole leaves the web console (docs/console.md) off the admin
	// listener: /console/ then answers 404 like any path the API lacks.
	NoConsole bool

	NATSListen   string // embedded NATS listens here too when set; otherwise in-process only
	NATSURL      string // use an external NATS instead of the embedded one
	NATSCreds    string // credentials file for the external NATS
	NATSUser     string
	NATSPassword string
	NATSToken    string
	NATSCA       string // CA file to verify the external NATS
	NATSCert     string // client certificate for mutual TLS
	NATSKey      string
	// NATSNkey is --nats-nkey: the nkey seed file to authenticate to an
	// external NATS with, such as a first server's DATA/keys/nats.nk.
	NATSNkey string
	// NATSListenCert and NATSListenKey make --nats-listen serve TLS.
	NATSListenCert, NATSListenKey string

	// ClusterJoin is --cluster-join: the join file `aegis cluster init`
	// wrote, the secret material every server of one installation shares
	// (cluster.go, docs/cluster.md).
	ClusterJoin string
	// ClusterName, ClusterListen and ClusterPeers make the embedded NATS
	// a member of a NATS cluster with JetStream clustering; NodeName names
	// this member (default the host name) and Replicas is how many copies
	// of every stream and bucket are kept (default min(3, cluster size)).
	ClusterName   string
	ClusterListen string
	ClusterPeers  []string
	NodeName      string
	Replicas      int
	// ClusterCert, ClusterKey and ClusterCA encrypt the routes between
	// members with mutual TLS: this member's certificate (naming the host
	// its peers' route URLs use), its key, and the CA that signed every
	// member's. All three or none.
	ClusterCert, ClusterKey, ClusterCA string

	DrainTimeout time.Duration // bound on draining in-flight work at shutdown, default 10s

	// StepUp says when dangerous admin changes (deleting an app, making a
	// route public, granting a wildcard, raising a limit, rotating an API
	// key) need a current code of the enrolled authenticator: auto (the
	// default) once one is enrolled, always, or off.
	StepUp rbac.StepUpMode

	// Gate is the deploy gate: the level at which findings refuse a
	// deploy, and the vulnerability database (docs/scan.md).
	Gate Gate

	// RetryBase and RetryMax shape event retries (defaults 1s and 1m).
	RetryBase, RetryMax time.Duration

	// Secrets is what the secret host call reads: the server's own vault
	// when nil (tests may put another reader here).
	Secrets capability.Secrets

	// MasterKey says where the vault's master key is: --master-key-file,
	// else AEGIS_MASTER_KEY, else the default file under the user's config
	// directory (ConfigDir replaces it), created on first start. Never in
	// the data directory.
	MasterKey vault.MasterKeyOptions
	// Transit, when set, makes HashiCorp Vault's Transit engine the vault's
	// key-encryption key instead of a master key here (docs/vault.md);
	// MasterKey is then not read.
	Transit *vault.TransitConfig

	// EgressDial and EgressResolver replace the network for fetch; tests
	// inject ones that fail instead of sending anything off the machine.
	EgressDial     func(ctx context.Context, network, addr string) (net.Conn, error)
	EgressResolver interface {
		LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	}
	// EgressRootCAs, when set, replaces the system's roots for fetch over
	// TLS: for tests, whose stand-in receivers have their own CA.
	EgressRootCAs *x509.CertPool
	Logger        *slog.Logger // default: JSON to stderr
	// PlatformLogDropped, when set, is how many records Logger dropped
	// (an asynclog queue in front of it), for the metric.
	PlatformLogDropped func() int64
	// FunctionLogs bounds the function log stream (zero fields: 7 days,
	// 256 MiB) and, for tests, replaces where its records go.
	FunctionLogs funclog.Options

	// Connections holds the listeners' connection hygiene (both
	// listeners); Backpressure the bounds on queued work. Zero fields take
	// the defaults docs/limits.md lists.
	Connections  Connections
	Backpressure Backpressure

	// OTLP says where finished spans are exported (docs/otel.md): the
	// gateway's requests, invocations, host calls and event deliveries.
	// An empty Endpoint, the default, exports nothing. The CLI fills it
	// from --otlp-endpoint or the OTEL_EXPORTER_OTLP_* environment.
	OTLP otlp.Config

	// Audit bounds the audit log and says when it writes checkpoints and
	// security records (audit.go).
	Audit Audit

	// Guard tunes the guard's rules (guard.go); the zero value runs the
	// defaults.
	Guard Guard

	// AlertWebhooks receive every guard alert, POSTed as JSON and signed
	// with AlertWebhookSecret (at least 32 bytes, required with any
	// webhook), once across the servers sharing the NATS (alerts.go,
	// --alert-webhook). AlertClient replaces the client that sends them:
	// tests give one that dials loopback only.
	AlertWebhooks      []string
	AlertWebhookSecret []byte
	AlertClient        *http.Client
}

// Connections bounds what one client can hold of a listener (the gateway
// and the admin API alike). Every bound is per server.
type Connections struct {
	// ReadHeaderTimeout is how long a client has to send a request's
	// headers (default 10s): a client that never finishes them
	// (slowloris) is cut off then.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included
	// (default 1m).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (default 1m). A response
	// that waits for a function gets the function's timeout on top
	// (connlimit.ExtendForRun), so a slow function is never cut off.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request
	// (default 2m).
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's headers (default 64KiB; over it,
	// 431).
	MaxHeaderBytes int
	// PerAddress caps the connections one client address holds open at
	// once (default connlimit.DefaultPerAddress); more are closed at
	// accept, counted and logged.
	PerAddress int
}

// Backpressure bounds queued work so that a flood is refused, never
// buffered in memory.
type Backpressure struct {
	// Async bounds asynchronous invocations in flight on this server in
	// all (default 256), per caller (default 32) and per function
	// (default 64); a full bound answers 503 with Retry-After.
	Async, AsyncPerCaller, AsyncPerFunction int
	// EventStreamBytes and EventStreamAge bound the event stream shared by
	// every app and server (defaults 1GiB and 7 days); a full stream
	// refuses new events rather than dropping old ones.
	EventStreamBytes int64
	EventStreamAge   time.Duration
	// AppEventBacklog caps an app's events waiting for its triggers
	// (default 10000); AppEventAge is how long the stream keeps an app's
	// event (default 24h). See bus.Backlog.
	AppEventBacklog int
	AppEventAge     time.Duration
}

// TLS reports whether the listeners serve HTTPS.
func (c Config) TLS() bool { return c.TLSSelfSigned || c.TLSCert != "" }

// validate checks the combinations of fields that exclude or need each
// other. Whether files exist and hold what they should is checked by Start.
func (c Config) validate() error {
	if c.NATSURL != "" && c.NATSListen != "" {
		return errors.New("configure server: --nats and --nats-listen exclude each other")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("configure server: --tls-cert and --tls-key go together")
	}
	if _, err := rbac.ParseStepUpMode(string(c.StepUp)); err != nil {
		return fmt.Errorf("configure server: --step-up: %w", err)
	}
	if _, err := c.Gate.level(); err != nil {
		return fmt.Errorf("configure server: --deploy-fail-on: %w", err)
	}
	if err := c.Connections.validate(); err != nil {
		return err
	}
	if err := c.Backpressure.validate(); err != nil {
		return err
	}
	if err := c.Guard.validate(); err != nil {
		return err
	}
	if err := c.validateAlerts(); err != nil {
		return err
	}
	if c.FunctionLogs.MaxAge < 0 || c.FunctionLogs.MaxBytes < 0 {
		return errors.New("configure server: --log-max-age and --log-max-bytes must not be negative")
	}
	if c.TLSSelfSigned && c.TLSCert != "" {
		return errors.New("configure server: --tls-self-signed and --tls-cert exclude each other")
	}
	if (c.NATSCert == "") != (c.NATSKey == "") {
		return errors.New("configure server: --nats-cert and --nats-key go together")
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if c.NATSURL == "" && c.NATSCreds+c.NATSUser+c.NATSPassword+c.NATSToken+c.NATSCA+c.NATSCert+c.NATSNkey != "" {
		// The embedded server is reached in-process; silently ignoring
		// credentials meant for an external one would hide a typo'd --nats.
		return errors.New("configure server: NATS credentials and TLS files apply to an external NATS only: set --nats too")
	}
	return nil
}

// Retention defaults of the function log stream (docs/metrics.md).
const (
	DefaultLogMaxAge   = funclog.DefaultMaxAge
	DefaultLogMaxBytes = funclog.DefaultMaxBytes
)

// Defaults of Connections and Backpressure (docs/limits.md).
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultAsync             = 256
	DefaultAsyncPerCaller    = 32
	DefaultAsyncPerFunction  = 64
	DefaultConnsPerAddress   = connlimit.DefaultPerAddress
	DefaultAppEventBacklog   = bus.DefaultAppBacklog
)

func (c Connections) withDefaults() Connections {
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = min(DefaultReadHeaderTimeout, c.ReadTimeout)
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.PerAddress <= 0 {
		c.PerAddress = DefaultConnsPerAddress
	}
	return c
}

// validate refuses a read-header timeout longer than the read timeout it
// is part of: the longer one would never apply.
func (c Connections) validate() error {
	if c.ReadHeaderTimeout > 0 && c.ReadTimeout > 0 && c.ReadHeaderTimeout > c.ReadTimeout {
		return errors.New("configure server: --read-header-timeout longer than --read-timeout")
	}
	return nil
}

func (b Backpressure) withDefaults() Backpressure {
	if b.Async <= 0 {
		b.Async = DefaultAsync
	}
	if b.AsyncPerCaller <= 0 {
		b.AsyncPerCaller = DefaultAsyncPerCaller
	}
	if b.AsyncPerFunction <= 0 {
		b.AsyncPerFunction = DefaultAsyncPerFunction
	}
	// The event bounds' defaults are the bus's (bus.Limits).
	return b
}

// validate refuses per-caller and per-function bounds above the global
// one they live in, which would read as a promise the server cannot keep.
func (b Backpressure) validate() error {
	b = b.withDefaults()
	if b.AsyncPerCaller > b.Async || b.AsyncPerFunction > b.Async {
		return fmt.Errorf("configure server: async bounds per caller (%d) and per function (%d) cannot exceed the global one (%d)",
			b.AsyncPerCaller, b.AsyncPerFunction, b.Async)
	}
	return nil
}
