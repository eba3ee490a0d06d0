package adminapi

import "time"

// Health values of a ClusterServer.
const (
	// ServerOK: the server's NATS connection is up and its last heartbeat
	// was written.
	ServerOK = "ok"
	// ServerDegraded: its NATS connection is down, or its last heartbeat
	// could not be written (JetStream without quorum, say). It may still
	// answer what needs no shared state.
	ServerDegraded = "degraded"
	// ServerUnknown: its record could not be read (written by another
	// version, or damaged); only its name is known.
	ServerUnknown = "unknown"
)

// ClusterStatus is the answer of GET /v1/cluster: the servers sharing the
// NATS that wrote a heartbeat within the last 15 seconds, by name, and the
// JetStream meta leader as the answering server sees it ("" when NATS is
// not clustered, has no leader right now, or is external).
//
// Incomplete is true when the answering server could not read the other
// servers' records (JetStream without quorum, say): Servers then holds
// itself alone.
type ClusterStatus struct {
	Servers    []ClusterServer `json:"servers"`
	MetaLeader string          `json:"meta_leader"`
	Incomplete bool            `json:"incomplete,omitempty"`
}

// ClusterServer is one Aegis server of a cluster, from its last heartbeat:
// its node name, the base URLs of its gateway (Address) and admin API
// (Admin), the version of its binary, its health (ServerOK,
// ServerDegraded or ServerUnknown), when it started and when it last
// wrote its heartbeat (every 5 seconds).
type ClusterServer struct {
	Name      string     `json:"name"`
	Address   string     `json:"address"`
	Admin     string     `json:"admin"`
	Version   string     `json:"version"`
	Health    string     `json:"health"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
}
