package admin

import (
	"net/http"
	"strconv"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/guard"
)

// guardBlocks lists the guard's blocks in force (GET /v1/guard/blocks).
func (a *API) guardBlocks(w http.ResponseWriter, r *http.Request, _ string) error {
	blocks, err := a.cfg.Guard.Blocks(r.Context())
	if err != nil {
		return err
	}
	out := make([]adminapi.GuardBlock, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, guardBlock(b))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// liftGuardBlock lifts one block on every server (DELETE
// /v1/guard/blocks/{id}); the audit record names its rule and target.
func (a *API) liftGuardBlock(w http.ResponseWriter, r *http.Request, reqID string) error {
	// Lifting takes a countermeasure off a client the guard judged
	// hostile, which a stolen operator token would want first: a step-up.
	if err := a.stepUp(r, reqID, []string{"lift guard block " + r.PathValue("id")}); err != nil {
		return err
	}
	b, err := a.cfg.Guard.Lift(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	noteAudit(r, "rule", b.Rule)
	noteAudit(r, "kind", b.Kind)
	noteAudit(r, "target", b.Target)
	noteAudit(r, "expires", b.Expires.Format("2006-01-02T15:04:05Z07:00"))
	noteAudit(r, "count", strconv.Itoa(b.Count))
	writeJSON(w, http.StatusOK, guardBlock(b))
	return nil
}

func guardBlock(b guard.Block) adminapi.GuardBlock {
	return adminapi.GuardBlock{ID: b.ID, Kind: b.Kind, Target: b.Target, Rule: b.Rule, Count: b.Count,
		Window: b.Window.String(), Created: b.Created, Expires: b.Expires}
}
