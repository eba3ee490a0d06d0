package jetstream

// Connected reports whether the node's connection to NATS is up: false
// while an external NATS is unreachable and the client retries, and once
// the node is closing.
func (n *Node) Connected() bool {
	return n.nc != nil && n.nc.IsConnected() && !n.isClosing()
}
