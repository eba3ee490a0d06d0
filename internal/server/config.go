package server

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Config is everything `aegis server` and `aegis up` can set. The zero value
// of every field is the safe default (see WithDefaults).
type Config struct {
	DataDir   string // default ./.aegis
	HTTPAddr  string // gateway listener, default 127.0.0.1:8080 ("127.0.0.1:0" picks a port)
	AdminAddr string // admin listener, default 127.0.0.1:8081

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
