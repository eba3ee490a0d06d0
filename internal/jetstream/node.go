// Package jetstream owns every use of NATS in Aegis: it runs the embedded
// nats-server (or connects to an external NATS), and offers key-value
// buckets, object stores, streams and durable consumers in the platform's
// own terms, with NATS errors mapped to the sentinels in package aegis.
//
// It is the only package that imports nats-server or nats.go, so a NATS
// upgrade or a second backend touches this package alone. It never logs
// message payloads or stored values: they may hold user data or secrets.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// serverName is fixed because JetStream ties its stored state to the server
// identity: a restart with another name would not find its streams again.
const serverName = "aegis"

const (
	// readyTimeout bounds how long Open waits for the embedded server,
	// which includes recovering streams from disk.
	readyTimeout = 30 * time.Second
	// drainTimeout bounds Close when no context deadline is given, so a
	// stuck subscriber cannot keep the process from exiting.
	drainTimeout = 10 * time.Second
	// apiTimeout applies to JetStream API calls whose context has no deadline.
	apiTimeout = 10 * time.Second
)

// Config says where JetStream runs. With URL empty an embedded server is
// started; otherwise the node connects to the external NATS at URL.
type Config struct {
	// DataDir is the platform data directory; embedded JetStream keeps its
	// files in DataDir/nats. Required for the embedded server.
	DataDir string
	// Listen is the host:port the embedded server accepts clients on. Empty
	// means it opens no TCP port at all and the node connects in-process,
	// which is the safe default: nothing outside the process can reach the
	// state. Port 0 picks a free port.
	Listen string
	// URL selects an external NATS (comma-separated URLs for a cluster).
	URL string

	// ClientSeed is the nkey seed (auth.go) of the one client an embedded
	// server reachable from outside (Listen or Cluster set) accepts; the
	// node itself connects with it too. Toward an external NATS it is the
	// nkey to authenticate with. Required when the embedded server opens
	// a port: no NATS port is ever open to anyone.
	ClientSeed []byte
	// ListenCert and ListenKey make the client port (Listen) serve TLS.
	ListenCert, ListenKey string
	// Cluster, when set, makes the embedded server a member of a NATS
	// cluster with JetStream clustering (cluster.go).
	Cluster *Cluster

	// Credentials toward an external NATS; at most one kind is used.
	CredsFile, User, Password, Token string
	// TLS toward an external NATS: CA bundle and optional client certificate.
	CAFile, CertFile, KeyFile string

	// Replicas for buckets, object stores and streams this node creates.
	// Zero means 1; an external cluster may ask for 3.
	Replicas int

	Logger *slog.Logger
}

func (c Config) validate() error {
	if c.URL == "" && c.DataDir == "" {
		return fmt.Errorf("open jetstream: embedded server needs a data directory: %w", aegis.ErrInvalidArgument)
	}
	if c.URL != "" && c.Listen != "" {
		return fmt.Errorf("open jetstream: listen address is for the embedded server, not with an external URL: %w", aegis.ErrInvalidArgument)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("open jetstream: client certificate and key go together: %w", aegis.ErrInvalidArgument)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("open jetstream: replicas %d: 1 to 5: %w", c.Replicas, aegis.ErrInvalidArgument)
	}
	if c.URL != "" && c.Cluster != nil {
		return fmt.Errorf("open jetstream: a cluster is for the embedded server, not with an external URL: %w", aegis.ErrInvalidArgument)
	}
	if c.URL == "" && (c.Listen != "" || c.Cluster != nil) && len(c.ClientSeed) == 0 {
		return fmt.Errorf("open jetstream: an embedded server reachable from outside needs its client key: %w", aegis.ErrInvalidArgument)
	}
	if (c.ListenCert == "") != (c.ListenKey == "") {
		return fmt.Errorf("open jetstream: listener certificate and key go together: %w", aegis.ErrInvalidArgument)
	}
	if c.ListenCert != "" && c.Listen == "" {
		return fmt.Errorf("open jetstream: a listener certificate needs a listen address: %w", aegis.ErrInvalidArgument)
	}
	return nil
}

// Node is an open connection to JetStream, with the embedded server when
// there is one. It is safe for concurrent use.
type Node struct {
	log      *slog.Logger
	srv      *server.Server // nil with an external NATS
	nc       *nats.Conn
	js       jetstream.JetStream
	replicas int
	closedCh chan struct{} // closed by the connection's ClosedHandler

	mu      sync.Mutex
	closing bool
	buckets map[string]*Bucket
	objects map[string]*ObjectStore
	streams map[string]jetstream.Stream
	subs    map[*Subscription]struct{}
	// short holds the streams created with fewer replicas than the node's
	// while cluster members were down, raised by raising (replicas.go).
	short   map[string]bool
	raising *periodic.Loop

	closeOnce sync.Once
	closeErr  error
}

// Open starts the embedded server (or dials the external one) and connects.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		log:      log,
		replicas: max(cfg.Replicas, 1),
		closedCh: make(chan struct{}),
		buckets:  map[string]*Bucket{},
		objects:  map[string]*ObjectStore{},
		streams:  map[string]jetstream.Stream{},
		subs:     map[*Subscription]struct{}{},
	}

	opts := []nats.Option{
		nats.Name("aegis"),
		nats.ClosedHandler(func(*nats.Conn) { close(n.closedCh) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", logkey.Error, err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", logkey.URL, c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", logkey.Subject, subj, logkey.Error, err)
		}),
	}
	url := cfg.URL
	if url == "" {
		srv, err := startServer(cfg, log)
		if err != nil {
			return nil, err
		}
		n.srv = srv
		// The node itself always connects in-process, even when the server
		// also listens for others: no socket, no network hop, no port that
		// could be taken over between start and connect.
		// That connection cannot drop and come back, so never reconnect.
		opts = append(opts, nats.InProcessServer(srv), nats.MaxReconnects(0))
		if len(cfg.ClientSeed) > 0 {
			o, err := nkeyOption(cfg.ClientSeed)
			if err != nil {
				n.shutdownServer()
				return nil, fmt.Errorf("open jetstream: %w", err)
			}
			opts = append(opts, o)
		}
	} else {
		// An external cluster restarts nodes and fails over; keep trying
		// forever and let operations report ErrUnavailable meanwhile.
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
		auth, err := externalAuth(cfg)
		if err != nil {
			return nil, fmt.Errorf("open jetstream: %w", err)
		}
		opts = append(opts, auth...)
	}

	nc, err := nats.Connect(url, opts...)
	if err != nil {
		n.shutdownServer()
		return nil, wrap("connect to nats", err)
	}
	n.nc = nc
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(apiTimeout))
	if err != nil {
		nc.Close()
		n.shutdownServer()
		return nil, wrap("open jetstream", err)
	}
	n.js = js
	// Fail at Open rather than at the first write if JetStream is off
	// (an external server without it, or an account without access). A
	// cluster member waits for its cluster to elect a meta leader: the
	// other members may still be starting.
	if err := n.waitJetStream(ctx, cfg.Cluster != nil); err != nil {
		nc.Close()
		n.shutdownServer()
		return nil, err
	}
	return n, nil
}

// waitJetStream checks that JetStream answers, retrying for a cluster
// member until its cluster has a meta leader.
func (n *Node) waitJetStream(ctx context.Context, clustered bool) error {
	deadline := time.Now().Add(clusterReady)
	for {
		// Each attempt on its own short clock: a request sent before the
		// cluster has a meta leader may never be answered.
		actx, cancel := ctx, context.CancelFunc(func() {})
		if clustered {
			actx, cancel = context.WithTimeout(ctx, 2*time.Second)
		}
		_, err := n.js.AccountInfo(actx)
		cancel()
		if err == nil || !clustered || time.Now().After(deadline) {
			if err != nil {
				return wrap("open jetstream: account info", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return wrap("open jetstream: waiting for the cluster", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// MaxPayload is the embedded server's cap on one message: NATS's default
// of 1 MiB plus room for what the platform adds to a value a function may
// make 1 MiB long (an event's envelope headers, a table value's
// encryption). An external NATS needs max_payload at least this large for
// values near 1 MiB (docs/vault.md).
const MaxPayload = 1<<20 + 64<<10

func startServer(cfg Config, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName:             serverName,
		JetStream:              true,
		StoreDir:               filepath.Join(cfg.DataDir, "nats"),
		DontListen:             cfg.Listen == "",
		NoSigs:                 true, // the platform owns signal handling
		DisableJetStreamBanner: true,
		MaxPayload:             MaxPayload,
	}
	if cfg.Listen != "" {
		host, port, err := hostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("start nats: listen: %w", err)
		}
		opts.Host, opts.Port = host, port
		if cfg.ListenCert != "" {
			if opts.TLSConfig, err = listenerTLS(cfg.ListenCert, cfg.ListenKey); err != nil {
				return nil, fmt.Errorf("start nats: %w", err)
			}
			opts.TLS = true
		}
	}
	if len(cfg.ClientSeed) > 0 {
		if err := serverAuth(opts, cfg.ClientSeed); err != nil {
			return nil, fmt.Errorf("start nats: %w", err)
		}
	}
	if cfg.Cluster != nil {
		if err := clusterOptions(opts, cfg.Cluster); err != nil {
			return nil, fmt.Errorf("start nats: %w", err)
		}
		if opts.DontListen {
			// DontListen would close the route port too; the client port
			// it needs open then is on loopback, any free port, and lets
			// no one in without the client key like every port.
			opts.DontListen = false
			opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	srv.SetLoggerV2(serverLog{log.With(logkey.Component, "nats-server")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start nats: not ready after %s: %w", readyTimeout, aegis.ErrUnavailable)
	}
	return srv, nil
}

func externalAuth(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case len(cfg.ClientSeed) > 0:
		o, err := nkeyOption(cfg.ClientSeed)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	return opts, nil
}

// ClientURL is the URL other processes can use to reach the embedded server,
// or the external URL in use. It is "" when the embedded server listens on
// no port, which is the point of that mode.
func (n *Node) ClientURL() string {
	if n.srv == nil {
		if n.nc == nil {
			return ""
		}
		return n.nc.ConnectedUrlRedacted()
	}
	addr, ok := n.srv.Addr().(*net.TCPAddr)
	if !ok || addr == nil {
		return ""
	}
	host := addr.IP
	if host.IsUnspecified() {
		// Listening on all interfaces; loopback is the address that works
		// from this machine.
		host = net.IPv4(127, 0, 0, 1)
	}
	return "nats://" + net.JoinHostPort(host.String(), strconv.Itoa(addr.Port))
}

// Close stops consumers (waiting for their handlers), drains the connection
// so acknowledgements and publishes in flight are delivered, and shuts the
// embedded server down. The context bounds the wait; Close is safe to call
// more than once and later calls return the first result.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, drainTimeout)
		defer cancel()
	}
	n.mu.Lock()
	n.closing = true
	subs := make([]*Subscription, 0, len(n.subs))
	for s := range n.subs {
		subs = append(subs, s)
	}
	n.mu.Unlock()
	n.stopRaising()

	var errs []error
	for _, s := range subs {
		s.halt()
	}
	for _, s := range subs {
		if err := s.wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close jetstream: wait for handlers: %w", err))
			break
		}
	}

	if err := n.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("close jetstream: drain: %w", err))
	}
	select {
	case <-n.closedCh:
	case <-ctx.Done():
		n.nc.Close()
		errs = append(errs, fmt.Errorf("close jetstream: drain: %w", ctx.Err()))
	}
	n.shutdownServer()
	return errors.Join(errs...)
}

// Kill drops the node at once, as a killed process would: the embedded
// server shut down without draining the connection, so nothing in flight
// is acknowledged. Close afterwards only releases what is left.
func (n *Node) Kill() {
	n.shutdownServer()
	n.nc.Close()
}

func (n *Node) shutdownServer() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// storage is where this node keeps what it creates: always on disk, since
// everything the platform puts in JetStream must survive a restart.
const storage = jetstream.FileStorage

// withTimeout gives ctx a deadline when it has none. The JetStream API
// calls have their own default, but watchers used for listing do not.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, apiTimeout)
}

// checkOpen refuses new work once Close has begun, so callers see
// ErrUnavailable rather than a half-closed connection's error.
func (n *Node) checkOpen(op string) error {
	if n.isClosing() {
		return fmt.Errorf("%s: node closed: %w", op, aegis.ErrUnavailable)
	}
	return nil
}

func (n *Node) isClosing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closing
}
