package jetstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
)

// Cluster makes the embedded server a member of a NATS cluster with
// JetStream clustering (RAFT): streams, buckets and object stores
// replicated on Replicas members, surviving the loss of a minority.
type Cluster struct {
	// Name is the cluster's name, the same on every member.
	Name string
	// NodeName names this member, unique in the cluster and stable across
	// its restarts (JetStream keeps its state under it).
	NodeName string
	// Listen is the host:port routes from the other members arrive on.
	Listen string
	// Peers are the members' route URLs (nats-route://host:port); this
	// member's own may be among them.
	Peers []string
	// RouteUser and RoutePassword authenticate every route, both ways.
	RouteUser, RoutePassword string
	// CertFile and KeyFile (PEM), with CAFile, encrypt every route with
	// mutual TLS: each member presents its certificate and accepts a
	// peer's only when CAFile's authorities signed it for the host its
	// route URL names. Empty: routes are plain TCP, for a network the
	// members alone share (docs/cluster.md).
	CertFile, KeyFile, CAFile string
}

// MaxPeers bounds --cluster-peers.
const MaxPeers = 32

func (c *Cluster) validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, " \t\n.*>") || len(c.Name) > 64 {
		return fmt.Errorf("cluster name %q: 1 to 64 characters, no spaces, dots or wildcards: %w", c.Name, aegis.ErrInvalidArgument)
	}
	if c.NodeName == "" || strings.ContainsAny(c.NodeName, " \t\n.*>") || len(c.NodeName) > 64 {
		return fmt.Errorf("node name %q: 1 to 64 characters, no spaces, dots or wildcards: %w", c.NodeName, aegis.ErrInvalidArgument)
	}
	if _, _, err := hostPort(c.Listen); err != nil {
		return fmt.Errorf("cluster listen: %w", err)
	}
	if len(c.Peers) == 0 || len(c.Peers) > MaxPeers {
		return fmt.Errorf("cluster peers: 1 to %d route URLs: %w", MaxPeers, aegis.ErrInvalidArgument)
	}
	for _, p := range c.Peers {
		u, err := url.Parse(p)
		if err != nil || u.Scheme != "nats-route" || u.Host == "" || u.User != nil || u.Path != "" {
			return fmt.Errorf("cluster peer %q: want nats-route://host:port, without credentials (they come from the join file): %w", p, aegis.ErrInvalidArgument)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") || (c.CertFile == "") != (c.CAFile == "") {
		return fmt.Errorf("cluster route TLS needs a certificate, its key and the CA that signs every member's certificate, all three: %w", aegis.ErrInvalidArgument)
	}
	if c.RouteUser == "" || len(c.RoutePassword) < 32 {
		return fmt.Errorf("cluster routes need their credentials (a user and a password of at least 32 characters, from the join file): %w", aegis.ErrInvalidArgument)
	}
	return nil
}

// hostPort splits a listen address; port 0 means any free port.
func hostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w: %w", addr, aegis.ErrInvalidArgument, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: %w", portStr, aegis.ErrInvalidArgument)
	}
	if port == 0 {
		// nats-server reads 0 as its default port; -1 is "any free port".
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// clusterOptions sets opts up as a member of c.
func clusterOptions(opts *server.Options, c *Cluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	host, port, err := hostPort(c.Listen)
	if err != nil {
		return err
	}
	opts.ServerName = c.NodeName
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port,
		Username: c.RouteUser, Password: c.RoutePassword, ConnectRetries: -1}
	if c.CertFile != "" {
		tc, err := routeTLS(c.CertFile, c.KeyFile, c.CAFile)
		if err != nil {
			return err
		}
		opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tc, routeTLSTimeout.Seconds()
	}
	routes := make([]*url.URL, 0, len(c.Peers))
	for _, p := range c.Peers {
		u, _ := url.Parse(p) // validated
		u.User = url.UserPassword(c.RouteUser, c.RoutePassword)
		routes = append(routes, u)
	}
	opts.Routes = routes
	return nil
}

// ServerName is the embedded server's name ("aegis" when it is not a
// cluster member), or "" with an external NATS.
func (n *Node) ServerName() string {
	if n.srv == nil {
		return ""
	}
	return n.srv.Name()
}

// Replicas is how many copies of each stream, bucket and object store
// this node creates.
func (n *Node) Replicas() int { return n.replicas }

// MetaLeader is the name of the JetStream meta leader of the embedded
// server's cluster, "" when it is not clustered, has none yet, or the
// NATS is external.
func (n *Node) MetaLeader() string {
	if n.srv == nil {
		return ""
	}
	jsz, err := n.srv.Jsz(&server.JSzOptions{})
	if err != nil || jsz == nil || jsz.Meta == nil {
		return ""
	}
	return jsz.Meta.Leader
}

// RouteURL is where the embedded server accepts routes
// (nats-route://host:port), "" when it is not a cluster member.
func (n *Node) RouteURL() string {
	if n.srv == nil {
		return ""
	}
	addr := n.srv.ClusterAddr()
	if addr == nil {
		return ""
	}
	host := addr.IP
	if host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
	}
	return "nats-route://" + net.JoinHostPort(host.String(), strconv.Itoa(addr.Port))
}

// clusterReady bounds how long Open waits for a cluster's JetStream to
// elect its meta leader: the other members may still be starting.
const clusterReady = 60 * time.Second

// leaderReads makes a replicated object store's stream answer reads from
// its leader only (a bucket's stream is created that way, kvStreamConfig).
// With direct gets (the default) any replica
// answers, and one that has not applied a write yet answers as if it had
// not happened: a module uploaded and then deployed through the same
// server was "never uploaded", a key just created was unknown. The
// platform reads what it has just written, so it reads from the leader,
// which has every acknowledged write; a replicated read costs a hop to it.
func (n *Node) leaderReads(ctx context.Context, stream string) error {
	s, err := n.js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowDirect && !cfg.MirrorDirect {
		return nil
	}
	cfg.AllowDirect, cfg.MirrorDirect = false, false
	if s, err = n.js.UpdateStream(ctx, cfg); err != nil {
		return err
	}
	// Reads now need the leader: wait (within ctx) until the stream has
	// one again, so the first read is not answered "no responders".
	return waitLeader(ctx, s)
}

// waitLeader waits (within ctx) until a replicated stream has a leader.
func waitLeader(ctx context.Context, s jetstream.Stream) error {
	for {
		info, err := s.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// routeTLSTimeout bounds a route's TLS handshake.
const routeTLSTimeout = 5 * time.Second

// routeTLS is the mutual TLS of the cluster's routes: this member's
// certificate, and caFile's authorities both to verify the members that
// connect (client certificates required) and the members this one
// connects to (their certificate must name the host of the route URL).
func routeTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster route certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster route CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster route CA %s: no PEM certificate in it: %w", caFile, aegis.ErrInvalidArgument)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
	}, nil
}
