package client

import (
	"context"
	"net/http"

	"github.com/aegis-platform/aegis/adminapi"
)

type (
	// ClusterStatus lists the servers sharing the NATS and the JetStream
	// meta leader (GET /v1/cluster).
	ClusterStatus = adminapi.ClusterStatus
	// ClusterServer is one server of the cluster, from its heartbeat.
	ClusterServer = adminapi.ClusterServer
)

// ClusterStatus lists the servers that wrote a heartbeat within the last
// 15 seconds, by name, and the JetStream meta leader (GET /v1/cluster);
// any role, token without an app set.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var out ClusterStatus
	if err := c.call(ctx, http.MethodGet, "/v1/cluster", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
