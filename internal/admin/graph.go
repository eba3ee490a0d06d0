package admin

import (
	"net/http"

	"github.com/aegis-platform/aegis/internal/callgraph"
)

// graph answers GET /v1/apps/{app}/graph: the app's active manifest's
// edges beside those observed at run time (docs/callgraph.md); 404 for an
// app that is not active.
func (a *API) graph(w http.ResponseWriter, r *http.Request, _ string) error {
	app := r.PathValue("app")
	active, ok := a.cfg.Registry.Snapshot().Apps[app]
	if !ok {
		return &userError{http.StatusNotFound, "app not found"}
	}
	if a.cfg.Graph == nil {
		writeJSON(w, http.StatusOK, callgraph.Compare(app, active.Manifest, nil, 0))
		return nil
	}
	g, err := a.cfg.Graph.Report(r.Context(), app, active.Manifest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}
