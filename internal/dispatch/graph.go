package dispatch

import (
	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// WithGraph makes d count every invocation a trigger started on its edge
// of the call graph: route, topic, object prefix or schedule → function.
// Call it before the first Invoke.
func (d *Dispatcher) WithGraph(g *callgraph.Recorder) *Dispatcher {
	d.graph = g
	return d
}

// countTrigger counts req on the edge from the trigger that started it
// (Request.Trigger, as the manifest declares it) to fn. A request without
// one (an invoke call, which capability counts as its own edge, or the
// admin API's invoke) is not a trigger edge.
func (d *Dispatcher) countTrigger(fn *registry.Function, req *sandbox.Request) {
	if d.graph == nil || req.Trigger == "" {
		return
	}
	d.graph.Use(fn.App, callgraph.Edge{Kind: callgraph.Kind(req.Kind), From: req.Trigger, To: fn.Spec.Name})
}
