package admin

import (
	"net/http"

	"github.com/aegis-platform/aegis/internal/advise"
	"github.com/aegis-platform/aegis/internal/callgraph"
)

// advice answers GET /v1/apps/{app}/advice: least-privilege advice for
// the app's active version (docs/advise.md), from what the call graph
// observed and, for functions never seen running, the host imports of
// their deployed modules; 404 for an app that is not active.
func (a *API) advice(w http.ResponseWriter, r *http.Request, _ string) error {
	app := r.PathValue("app")
	active, ok := a.cfg.Registry.Snapshot().Apps[app]
	if !ok {
		return &userError{http.StatusNotFound, "app " + app + " not found: nothing to advise on"}
	}
	in := advise.Input{App: app, Version: active.Version, Manifest: active.Manifest, Imports: map[string][]string{}}
	for name, fn := range active.Functions {
		if fn != nil && fn.Instance != nil {
			in.Imports[name] = fn.Instance.HostImports()
		}
	}
	if a.cfg.Graph != nil {
		edges, names, err := a.cfg.Graph.Observations(r.Context(), app)
		if err != nil {
			return err
		}
		in.Edges, in.Names = uses(edges), uses(names)
	}
	writeJSON(w, http.StatusOK, advise.Advise(in))
	return nil
}

func uses(recs []callgraph.Record) []advise.Use {
	out := make([]advise.Use, 0, len(recs))
	for _, rec := range recs {
		out = append(out, advise.Use{Kind: string(rec.Kind), From: rec.From, To: rec.To, Count: rec.Count, Refused: rec.Refused})
	}
	return out
}
