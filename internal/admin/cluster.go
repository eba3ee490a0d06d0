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
