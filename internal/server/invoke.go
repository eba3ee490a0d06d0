package server

import (
	"context"
	"fmt"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/capability"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// functions adapts the registry and the dispatcher to capability.Functions:
// the route of a function-to-function call is matched in its app's own
// table (private routes included, other apps never), and the call runs
// through dispatch like every invocation. The snapshot is read per call, so
// a function always calls the active version of its peers.
type functions struct {
	snapshot   func() *registry.Snapshot
	dispatcher *dispatch.Dispatcher
}

var _ capability.Functions = (*functions)(nil)

func (f *functions) Resolve(app, method, path string) (*capability.Target, error) {
	snap := f.snapshot()
	rt, params, err := snap.AppRoutes(app).Match(method, path)
	if err != nil {
		return nil, err
	}
	fn, ok := snap.Function(rt.App, rt.Function)
	if !ok {
		return nil, fmt.Errorf("function %s of app %s: %w", rt.Function, rt.App, aegis.ErrNotFound)
	}
	d := f.dispatcher
	return &capability.Target{
		Route: rt, Params: params, Limits: fn.Spec.Limits,
		Invoke: func(ctx context.Context, req *sandbox.Request) (*sandbox.Response, error) {
			return d.Invoke(ctx, fn, req)
		},
	}, nil
}
