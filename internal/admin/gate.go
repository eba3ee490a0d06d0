package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/scan"
)

// DeployGate is the server's half of the deploy gate (docs/scan.md): the
// checks that need no sources, run over what a deploy carries before it
// is activated, whatever the client checked.
type DeployGate interface {
	// Check returns the findings of the deploy of app, modules named by
	// their SHA-256 as the request names them.
	Check(ctx context.Context, app string, req *adminapi.DeployRequest) ([]scan.Finding, error)
	// Level is the severity at or above which a finding not accepted
	// refuses the deploy (scan.SeverityNone: none does).
	Level() scan.Severity
}

// maxWaivers bounds the findings one deploy may accept.
const maxWaivers = 100

// gateDeploy runs the gate over a deploy: findings are returned for the
// answer; findings at or above the gate's level that the request did not
// accept refuse it (422, each named); accepting one at or above that level
// is a dangerous change, returned among dangers for the deploy's one
// step-up. Every waiver is recorded in the audit record with its reason.
func (a *API) gateDeploy(r *http.Request, req *adminapi.DeployRequest) (_ []adminapi.Finding, dangers []string, _ error) {
	if len(req.Accept) > maxWaivers {
		return nil, nil, &userError{http.StatusBadRequest, fmt.Sprintf("a deploy accepts at most %d findings", maxWaivers)}
	}
	ws := make([]scan.Waiver, len(req.Accept))
	for i, w := range req.Accept {
		ws[i] = scan.Waiver{ID: w.ID, Reason: w.Reason}
		if err := ws[i].Validate(); err != nil {
			return nil, nil, &userError{http.StatusBadRequest, err.Error()}
		}
	}
	if a.cfg.Gate == nil {
		return nil, nil, nil
	}
	findings, err := a.cfg.Gate.Check(r.Context(), r.PathValue("app"), req)
	if err != nil {
		return nil, nil, fmt.Errorf("deploy gate: %w", err)
	}
	scan.Accept(findings, ws)
	level := a.cfg.Gate.Level()
	var accepted []string
	for _, f := range findings {
		if f.Accepted == nil {
			continue
		}
		accepted = append(accepted, f.ID+" ("+f.Accepted.Reason+")")
		if level != scan.SeverityNone && f.Severity >= level {
			dangers = append(dangers, "accepting the "+f.Severity.String()+" finding "+f.ID)
		}
	}
	noteAudit(r, "gate_findings", fmt.Sprint(len(findings)))
	noteAudit(r, "gate_accepted", strings.Join(accepted, "; "))
	if blocking := scan.Blocking(findings, level); len(blocking) > 0 {
		lines := make([]string, len(blocking))
		for i, f := range blocking {
			where := f.File
			if f.Line > 0 {
				where = fmt.Sprintf("%s:%d", f.File, f.Line)
			}
			lines[i] = fmt.Sprintf("%s %s (%s): %s", f.Severity, f.ID, where, f.Message)
		}
		return nil, nil, &userError{http.StatusUnprocessableEntity, fmt.Sprintf(
			"deploy refused by the gate: %d findings at or above %s: %s; fix them, or accept one with --accept ID --reason TEXT",
			len(blocking), level, strings.Join(lines, "; "))}
	}
	out := make([]adminapi.Finding, len(findings))
	for i, f := range findings {
		out[i] = adminapi.Finding{ID: f.ID, Rule: f.Rule, Severity: f.Severity.String(), Function: f.Function,
			File: f.File, Line: f.Line, Message: f.Message, Fix: f.Fix}
		if f.Accepted != nil {
			out[i].Accepted = &adminapi.Waiver{ID: f.Accepted.ID, Reason: f.Accepted.Reason}
		}
	}
	return out, dangers, nil
}
