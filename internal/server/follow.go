package server

import "github.com/aegis-platform/aegis/internal/registry"

// followApps has this server serve the deploys, rollbacks and deletes
// made through any server sharing its NATS, within about
// registry.FollowInterval (docs/cluster.md, "Work shared across
// servers"). It starts after Restore, whose work the first comparison
// finds done.
func (s *Server) followApps() {
	s.follower = s.registry.Follow(registry.FollowInterval)
}

// stopFollowing ends following before the triggers close, so no
// activation syncs a trigger that has stopped.
func (s *Server) stopFollowing() {
	if s.follower != nil {
		s.follower.Stop()
	}
}
