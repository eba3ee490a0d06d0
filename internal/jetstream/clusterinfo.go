package jetstream

import (
	"context"
	"slices"
)

// Connected reports whether the node's connection to NATS is up: false
// while an external NATS is unreachable and the client retries, and once
// the node is closing.
func (n *Node) Connected() bool {
	return n.nc != nil && n.nc.IsConnected() && !n.isClosing()
}

// Lagging lists, sorted, the streams whose copy on the named cluster
// member is not current: the member neither leads the stream nor holds a
// replica that has caught up with its leader. A member back from a crash
// has caught up when the list is empty. Streams without replicas, and
// streams the member holds no copy of, are not listed.
func (n *Node) Lagging(ctx context.Context, member string) ([]string, error) {
	const op = "list lagging streams"
	if err := n.checkOpen(op); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	l := n.js.ListStreams(ctx)
	var lagging []string
	for info := range l.Info() {
		c := info.Cluster
		if c == nil || c.Leader == member {
			continue
		}
		for _, r := range c.Replicas {
			if r.Name == member && (!r.Current || r.Offline || r.Lag > 0) {
				lagging = append(lagging, info.Config.Name)
			}
		}
	}
	if err := l.Err(); err != nil {
		return nil, wrap(op, err)
	}
	slices.Sort(lagging)
	return lagging, nil
}
