package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/strictjson"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

const (
	// clusterBucket holds one heartbeat record per live server, under
	// its node name. The bucket's TTL is the heartbeat's: a record is
	// gone heartbeatTTL after its server last wrote it, so a server that
	// died (SIGKILL, a lost machine) leaves `aegis cluster status` within
	// that time, and one that stops cleanly removes its record at once.
	clusterBucket = "aegis_cluster"
	// heartbeatInterval is how often a server writes its record; three
	// missed writes in a row and the record expires.
	heartbeatInterval = 5 * time.Second
	heartbeatTTL      = 3 * heartbeatInterval
	// maxHeartbeatBytes caps one record (the bucket refuses more): a
	// name, two URLs, a version and two times fit many times over.
	maxHeartbeatBytes = 4 << 10
	// maxClusterServers bounds how many records GET /v1/cluster reads:
	// far more servers than one JetStream cluster has.
	maxClusterServers = 256
)

// heartbeatRecord is what a server writes every heartbeatInterval: who it
// is, where it answers, what it runs, and how it is.
type heartbeatRecord struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"` // the gateway's base URL
	Admin     string    `json:"admin"`   // the admin API's base URL
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	Health    string    `json:"health"`
	LastSeen  time.Time `json:"last_seen"`
}

func (r heartbeatRecord) server() adminapi.ClusterServer {
	started, seen := r.StartedAt, r.LastSeen
	return adminapi.ClusterServer{Name: r.Name, Address: r.Address, Admin: r.Admin, Version: r.Version,
		Health: r.Health, StartedAt: &started, LastSeen: &seen}
}

// heartbeat keeps this server's record in clusterBucket and reads every
// server's back for GET /v1/cluster.
type heartbeat struct {
	bucket   *jetstream.Bucket
	node     *jetstream.Node
	log      *slog.Logger
	key      string // the record's key: the node name, made a valid key
	interval time.Duration
	now      func() time.Time
	loop     *periodic.Loop // nil until start

	mu     sync.Mutex
	rec    heartbeatRecord // what the next write says, but for Health and LastSeen
	failed bool            // the last write failed
}

// openHeartbeat opens the bucket of the servers' records; the server
// joins it once it listens (startHeartbeat), when it knows its addresses.
func (s *Server) openHeartbeat(ctx context.Context) (err error) {
	s.heartbeat, err = openHeartbeat(ctx, s.node, s.log, heartbeatTTL,
		heartbeatRecord{Name: nodeName(s.cfg), Version: serverVersion(s.cfg), StartedAt: time.Now().UTC()})
	return err
}

// openHeartbeat opens clusterBucket, its records expiring ttl after they
// are written, for the server rec describes.
func openHeartbeat(ctx context.Context, node *jetstream.Node, log *slog.Logger, ttl time.Duration, rec heartbeatRecord) (*heartbeat, error) {
	bucket, err := node.Bucket(ctx, clusterBucket, jetstream.BucketOptions{History: 1, TTL: ttl,
		MaxValueSize: maxHeartbeatBytes, Description: "one heartbeat per live server (aegis cluster status)"})
	if err != nil {
		return nil, err
	}
	return &heartbeat{bucket: bucket, node: node, log: log, key: heartbeatKey(rec.Name),
		interval: heartbeatInterval, now: time.Now, rec: rec}, nil
}

// startHeartbeat writes this server's first record, so it is listed as
// soon as Start returns, and then one every heartbeatInterval. A write
// that fails does not stop the server: it is logged, the record says
// "degraded" once a write succeeds again, and until then the record
// expires as a dead server's would.
func (s *Server) startHeartbeat(ctx context.Context) {
	h := s.heartbeat
	if h == nil {
		return
	}
	h.mu.Lock()
	h.rec.Address, h.rec.Admin = reachableURL(s.GatewayURL()), reachableURL(s.AdminURL())
	h.mu.Unlock()
	h.start(ctx)
}

// start writes the first record and starts writing one every interval.
func (h *heartbeat) start(ctx context.Context) {
	h.beat(ctx)
	h.loop = periodic.Start(h.interval, h.interval, h.beat)
}

// closeHeartbeat stops the heartbeat and removes this server's record, so
// a server that stops cleanly leaves the list at once rather than when
// its record expires.
func (s *Server) closeHeartbeat(ctx context.Context) {
	h := s.heartbeat
	if h == nil {
		return
	}
	h.stop(ctx)
}

// stop ends the heartbeat and removes the record.
func (h *heartbeat) stop(ctx context.Context) {
	if h.loop != nil {
		h.loop.Stop()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := h.bucket.Delete(ctx, h.key); err != nil {
		h.log.Warn("heartbeat not removed; it expires on its own", logkey.Key, h.key, logkey.Error, err)
	}
}

// Health is this server's health now: degraded while its NATS connection
// is down or after a heartbeat it could not write (GET /v1/ready).
func (h *heartbeat) Health() string {
	h.mu.Lock()
	failed := h.failed
	h.mu.Unlock()
	if failed || !h.node.Connected() {
		return adminapi.ServerDegraded
	}
	return adminapi.ServerOK
}

// record is this server's record as of now.
func (h *heartbeat) record() heartbeatRecord {
	health := h.Health()
	h.mu.Lock()
	defer h.mu.Unlock()
	rec := h.rec
	rec.Health, rec.LastSeen = health, h.now().UTC()
	return rec
}

// beat writes this server's record. A change between written and not
// written is logged once, not every interval.
func (h *heartbeat) beat(ctx context.Context) {
	b, err := json.Marshal(h.record())
	if err == nil {
		_, err = h.bucket.Put(ctx, h.key, b)
	}
	h.mu.Lock()
	was := h.failed
	h.failed = err != nil
	h.mu.Unlock()
	switch {
	case err != nil && !was:
		h.log.Warn("heartbeat not written: this server is listed as degraded, and leaves the cluster's list if this lasts",
			logkey.Key, h.key, logkey.Error, err)
	case err == nil && was:
		h.log.Info("heartbeat written again", logkey.Key, h.key)
	}
}

// Status is GET /v1/cluster: every live server's record by name, this
// server's own as of now, and the JetStream meta leader. When the others'
// records cannot be read it answers with this server alone, marked
// Incomplete, rather than fail: that is when an operator most needs it.
func (h *heartbeat) Status(ctx context.Context) (adminapi.ClusterStatus, error) {
	self := h.record()
	st := adminapi.ClusterStatus{MetaLeader: h.node.MetaLeader()}
	others, err := h.read(ctx)
	if err != nil {
		h.log.Warn("cluster status incomplete: the servers' heartbeats cannot be read", logkey.Error, err)
		self.Health = adminapi.ServerDegraded
		st.Servers, st.Incomplete = []adminapi.ClusterServer{self.server()}, true
		return st, nil
	}
	st.Servers = append(st.Servers, self.server())
	for _, srv := range others {
		if srv.Name != self.Name {
			st.Servers = append(st.Servers, srv)
		}
	}
	slices.SortFunc(st.Servers, func(a, b adminapi.ClusterServer) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// read returns the records in the bucket. One that cannot be decoded
// (written by another version of Aegis, or by hand) is listed by its key
// with health "unknown" rather than hidden.
func (h *heartbeat) read(ctx context.Context) ([]adminapi.ClusterServer, error) {
	keys, err := h.bucket.Keys(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	if len(keys) > maxClusterServers {
		keys = keys[:maxClusterServers]
	}
	out := make([]adminapi.ClusterServer, 0, len(keys))
	for _, k := range keys {
		if k == h.key {
			continue // this server's own, which Status takes as of now
		}
		b, _, err := h.bucket.Get(ctx, k)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // expired or removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("read server %s: %w", k, err)
		}
		var rec heartbeatRecord
		if err := strictjson.Unmarshal(b, &rec); err != nil || rec.Name == "" {
			out = append(out, adminapi.ClusterServer{Name: k, Health: adminapi.ServerUnknown})
			continue
		}
		out = append(out, rec.server())
	}
	return out, nil
}

// nodeName is the name this server goes by among the servers sharing the
// NATS: --node-name, which is also its NATS server name in a cluster (the
// name the meta leader is given by), else the host name, as the cluster's
// own default (cluster.go).
func nodeName(cfg Config) string {
	if cfg.NodeName != "" {
		return cfg.NodeName
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "aegis"
}

// heartbeatKey is name as a bucket key: a host name is one already; in
// any other, what a key cannot hold becomes '_' (the record keeps the
// name as it is).
func heartbeatKey(name string) string {
	if jetstream.ValidKey(name) {
		return name
	}
	k := []byte(name)
	for i, c := range k {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			k[i] = '_'
		}
	}
	if len(k) == 0 {
		return "_"
	}
	return string(k)
}

// serverVersion is the version of the binary, as `aegis version` prints
// it: the CLI gives it to the server (Config.OTLP.ServiceVersion), and a
// server started from Go code falls back on the build information.
func serverVersion(cfg Config) string {
	if cfg.OTLP.ServiceVersion != "" {
		return cfg.OTLP.ServiceVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// reachableURL is a listener's base URL as other machines can use it: a
// listener on every interface (0.0.0.0, [::]) is named by this machine's
// first non-loopback address, or its host name when it has none.
func reachableURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return base
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return base
	}
	u.Host = net.JoinHostPort(machineAddress(), port)
	return u.String()
}

// machineAddress is this machine's first non-loopback unicast address,
// IPv4 first, else its host name.
func machineAddress() string {
	addrs, _ := net.InterfaceAddrs()
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP.String()
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	if v6 != "" {
		return v6
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
