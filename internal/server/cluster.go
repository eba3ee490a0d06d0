package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/aegis-platform/aegis/internal/clusterjoin"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// natsKeyFile is where a server whose embedded NATS opens --nats-listen
// without a cluster join file keeps the one client key that port accepts:
// a second server sharing this NATS connects with --nats-nkey naming it.
var natsKeyFile = filepath.Join("keys", "nats.nk")

func (c Config) clustered() bool {
	return c.ClusterName != "" || c.ClusterListen != "" || len(c.ClusterPeers) > 0
}

func (c Config) validateCluster() error {
	if c.clustered() {
		if c.ClusterName == "" || c.ClusterListen == "" || len(c.ClusterPeers) == 0 {
			return errors.New("configure server: a cluster needs --cluster-name, --cluster-listen and --cluster-peers together")
		}
		if c.ClusterJoin == "" {
			return errors.New("configure server: a cluster needs --cluster-join FILE, the shared material `aegis cluster init --out FILE` writes")
		}
		if c.NATSURL != "" {
			return errors.New("configure server: --cluster-* run the embedded NATS as a cluster member; --nats uses an external one instead")
		}
	}
	if tls := c.ClusterCert != "" || c.ClusterKey != "" || c.ClusterCA != ""; tls && !c.clustered() {
		return errors.New("configure server: --cluster-cert, --cluster-key and --cluster-ca encrypt a cluster's routes: set --cluster-name, --cluster-listen and --cluster-peers too")
	} else if tls && (c.ClusterCert == "" || c.ClusterKey == "" || c.ClusterCA == "") {
		return errors.New("configure server: --cluster-cert, --cluster-key and --cluster-ca go together")
	}
	if c.NATSNkey != "" && c.NATSURL == "" {
		return errors.New("configure server: --nats-nkey authenticates to an external NATS: set --nats too")
	}
	if (c.NATSListenCert == "") != (c.NATSListenKey == "") {
		return errors.New("configure server: --nats-listen-cert and --nats-listen-key go together")
	}
	if c.NATSListenCert != "" && c.NATSListen == "" {
		return errors.New("configure server: --nats-listen-cert needs --nats-listen")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return errors.New("configure server: --replicas must be 1 to 5")
	}
	if c.ClusterJoin != "" && c.MasterKey.File != "" {
		return errors.New("configure server: the cluster join file holds the master key; --master-key-file would be a second one")
	}
	return nil
}

// readJoin reads the cluster join file, when one is set.
func (s *Server) readJoin() error {
	if s.cfg.ClusterJoin == "" {
		return nil
	}
	m, err := clusterjoin.Read(s.cfg.ClusterJoin)
	if err != nil {
		return err
	}
	s.join = m
	if s.cfg.Transit == nil {
		s.cfg.MasterKey.Key = m.MasterKey
	}
	return nil
}

// natsConfig is what the node needs: where NATS is, and the client key
// its ports accept or it authenticates with.
func (s *Server) natsConfig() (jetstream.Config, error) {
	c := s.cfg
	cfg := jetstream.Config{
		DataDir: c.DataDir, Listen: c.NATSListen, URL: c.NATSURL,
		CredsFile: c.NATSCreds, User: c.NATSUser, Password: c.NATSPassword, Token: c.NATSToken,
		CAFile: c.NATSCA, CertFile: c.NATSCert, KeyFile: c.NATSKey,
		ListenCert: c.NATSListenCert, ListenKey: c.NATSListenKey, Replicas: c.Replicas, Logger: s.log,
	}
	switch {
	case c.NATSURL != "" && c.NATSNkey != "":
		seed, err := jetstream.ReadSeedFile(c.NATSNkey)
		if err != nil {
			return cfg, err
		}
		cfg.ClientSeed = seed
	case c.NATSURL != "" && s.join != nil && c.NATSCreds+c.NATSUser+c.NATSToken == "":
		cfg.ClientSeed = s.join.NATSSeed
	case c.NATSURL == "" && s.join != nil:
		cfg.ClientSeed = s.join.NATSSeed
	case c.NATSURL == "" && c.NATSListen != "":
		seed, err := s.loadNATSKey()
		if err != nil {
			return cfg, err
		}
		cfg.ClientSeed = seed
	}
	if c.clustered() {
		name := c.NodeName
		if name == "" {
			h, err := os.Hostname()
			if err != nil {
				return cfg, fmt.Errorf("node name: none given (--node-name) and no host name: %w", err)
			}
			name = h
		}
		cfg.Cluster = &jetstream.Cluster{Name: c.ClusterName, NodeName: name, Listen: c.ClusterListen,
			Peers: c.ClusterPeers, RouteUser: clusterjoin.RouteUser, RoutePassword: s.join.RoutePassword,
			CertFile: c.ClusterCert, KeyFile: c.ClusterKey, CAFile: c.ClusterCA}
		if cfg.Replicas == 0 {
			cfg.Replicas = min(3, clusterSize(c.ClusterListen, c.ClusterPeers))
		}
	}
	return cfg, nil
}

// clusterSize counts the members --cluster-peers names, this one once:
// the peers, plus this member unless its own listen address is among them
// as written.
func clusterSize(listen string, peers []string) int {
	n := len(peers)
	for _, p := range peers {
		if u, err := url.Parse(p); err == nil && sameAddr(u.Host, listen) {
			return n
		}
	}
	return n + 1
}

func sameAddr(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && ap == bp && ah == bh
}

// loadNATSKey returns the client key of --nats-listen without a join file:
// DATA/keys/nats.nk, created (0600) on first use.
func (s *Server) loadNATSKey() ([]byte, error) {
	path := filepath.Join(s.cfg.DataDir, natsKeyFile)
	seed, created, err := jetstream.LoadOrCreateSeedFile(path)
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("nats client key created: a server sharing this NATS connects with --nats-nkey naming this file", logkey.File, path)
	}
	return seed, nil
}
