package jetstream

import "github.com/nats-io/nats-server/v2/server"

// MetaLeader is the server name of the JetStream meta leader, the member
// of the cluster that places streams and consumers on servers, as the
// embedded server sees it. It is "" when the embedded server runs alone
// (there is no meta group), when the group has no leader right now (no
// quorum), and with an external NATS, whose meta group only its system
// account can ask about.
func (n *Node) MetaLeader() string {
	if n.srv == nil {
		return ""
	}
	info, err := n.srv.Jsz(&server.JSzOptions{})
	if err != nil || info == nil || info.Meta == nil {
		return ""
	}
	return info.Meta.Leader
}

// Connected reports whether the node's connection to NATS is up: false
// while an external NATS is unreachable and the client retries, and once
// the node is closing.
func (n *Node) Connected() bool {
	return n.nc != nil && n.nc.IsConnected() && !n.isClosing()
}
