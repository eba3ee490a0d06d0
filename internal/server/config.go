package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

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

	NATSListen   string // embedded NATS listens here too when set; otherwise in-process only
	NATSURL      string // use an external NATS instead of the embedded one
	NATSCreds    string // credentials file for the external NATS
	NATSUser     string
	NATSPassword string
	NATSToken    string
	NATSCA       string // CA file to verify the external NATS
	NATSCert     string // client certificate for mutual TLS
	NATSKey      string

	DrainTimeout time.Duration // bound on draining in-flight work at shutdown, default 10s

	// StepUp says when dangerous admin changes (deleting an app, making a
	// route public, granting a wildcard, raising a limit, rotating an API
	// key) need a current code of the enrolled authenticator: auto (the
	// default) once one is enrolled, always, or off.
	StepUp rbac.StepUpMode

	// RetryBase and RetryMax shape event retries (defaults 1s and 1m).
	RetryBase, RetryMax time.Duration

	// EgressDial and EgressResolver replace the network for fetch; tests
	// inject ones that fail instead of sending anything off the machine.
	EgressDial     func(ctx context.Context, network, addr string) (net.Conn, error)
	EgressResolver interface {
		LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	}
	Logger *slog.Logger // default: JSON to stderr
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
	if c.TLSSelfSigned && c.TLSCert != "" {
		return errors.New("configure server: --tls-self-signed and --tls-cert exclude each other")
	}
	if (c.NATSCert == "") != (c.NATSKey == "") {
		return errors.New("configure server: --nats-cert and --nats-key go together")
	}
	if c.NATSURL == "" && c.NATSCreds+c.NATSUser+c.NATSPassword+c.NATSToken+c.NATSCA+c.NATSCert != "" {
		// The embedded server is reached in-process; silently ignoring
		// credentials meant for an external one would hide a typo'd --nats.
		return errors.New("configure server: NATS credentials and TLS files apply to an external NATS only: set --nats too")
	}
	return nil
}
