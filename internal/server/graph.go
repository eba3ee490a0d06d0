package server

import (
	"context"

	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
)

// openGraph opens the call graph's bucket, shared by every server on this
// NATS (each edge kept callgraph.Retention after it was last seen), and
// starts this server's recorder.
func (s *Server) openGraph(ctx context.Context) error {
	bucket, err := s.node.Bucket(ctx, callgraph.Bucket, jetstream.BucketOptions{History: 1, TTL: callgraph.Retention,
		Description: "call graph: observed edges per app (uses, refusals, last seen)"})
	if err != nil {
		return err
	}
	s.graph = callgraph.New(callgraph.Config{Store: bucket, Logger: s.log, OnNewEdge: s.newEdge})
	return nil
}

// newEdge tells the guard of an edge no server had seen: the new-call-path
// rule's signal.
func (s *Server) newEdge(app string, e callgraph.Edge) {
	s.guard.Observe(guard.Event{Signal: guard.NewEdge, App: app, Function: e.Function(), Edge: e.String()})
}
