package admin

import (
	"context"
	"net/http"

	"github.com/aegis-platform/aegis/adminapi"
)

// Cluster is what GET /v1/cluster reads: the heartbeats of the servers
// sharing the NATS and the JetStream meta leader (the server's
// heartbeat.go).
type Cluster interface {
	Status(ctx context.Context) (adminapi.ClusterStatus, error)
	// Health is this server's health now: adminapi.ServerOK, or
	// adminapi.ServerDegraded while its NATS connection is down or its
	// last heartbeat could not be written (no JetStream quorum).
	Health() string
}

// cluster lists the servers of the cluster (GET /v1/cluster).
func (a *API) cluster(w http.ResponseWriter, r *http.Request, _ string) error {
	st, err := a.cfg.Cluster.Status(r.Context())
	if err != nil {
		return err
	}
	if st.Servers == nil {
		st.Servers = []adminapi.ClusterServer{} // an empty list, never null
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// ready answers a readiness probe (GET /v1/ready): 200 while this server
// can serve what needs the shared state, 503 while it is degraded, so a
// load balancer stops sending it requests it could only answer 503. It is
// not /v1/health, which answers 200 as long as the process serves: a
// liveness probe restarting a server that waits for its peers' quorum
// would only delay the cluster's return.
func (a *API) ready(w http.ResponseWriter, _ *http.Request, _ string) error {
	health := adminapi.ServerOK
	if a.cfg.Cluster != nil {
		health = a.cfg.Cluster.Health()
	}
	status := http.StatusOK
	if health != adminapi.ServerOK {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, adminapi.Health{Status: health})
	return nil
}
