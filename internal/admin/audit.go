package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/audit"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// auditedActions names the audit action of every route that changes
// something, keyed by its pattern as handle registers it. handle refuses
// to register a route other than GET or HEAD without one, so a new
// state-changing route cannot go unrecorded.
var auditedActions = map[string]string{
	"PUT /v1/modules/{sha}":                      "module.upload",
	"POST /v1/apps/{app}/deploy":                 "deploy",
	"POST /v1/apps/{app}/rollback":               "rollback",
	"DELETE /v1/apps/{app}":                      "app.delete",
	"POST /v1/keys":                              "key.create",
	"DELETE /v1/keys/{name}":                     "key.revoke",
	"POST /v1/keys/{name}/rotate":                "key.rotate",
	"POST /v1/apps/{app}/webhook-secrets/{name}": "webhook_secret.create",
	"PUT /v1/apps/{app}/secrets/{name}":          "secret.set",
	"POST /v1/apps/{app}/secrets/{name}/rotate":  "secret.rotate",
	"DELETE /v1/apps/{app}/secrets/{name}":       "secret.remove",
	"POST /v1/vault/rotate-master":               "vault.rotate_master",
	"POST /v1/apps/{app}/data-key/rotate":        "vault.rotate_data_key",
	"POST /v1/backup":                            "backup",
	"POST /v1/apps/{app}/functions/{fn}/invoke":  "invoke",
	"POST /v1/dlq/{id}/replay":                   "dlq.replay",
	"POST /v1/tokens":                            "token.create",
	"DELETE /v1/tokens/{name}":                   "token.revoke",
	"POST /v1/mfa/enroll":                        "mfa.enroll",
	"POST /v1/mfa/confirm":                       "mfa.confirm",
	"DELETE /v1/guard/blocks/{id}":               "guard.lift",
	"PUT /v1/guard/rules":                        "guard.apply",
}

// auditAction is the action of a route, and whether it is audited. A
// route that changes state without one is a programming error.
func auditAction(pattern string) (string, bool) {
	if action, ok := auditedActions[pattern]; ok {
		return action, true
	}
	if m, _, _ := strings.Cut(pattern, " "); m != http.MethodGet && m != http.MethodHead {
		panic("admin: route " + pattern + " changes state but names no audit action (audit.go)")
	}
	return "", false
}

// auditEntry is what the records of one admin call say; the handler adds
// the target and detail it learns from the body (noteAudit), never a
// secret.
type auditEntry struct {
	rec audit.Record
	// failed marks a call that failed after its answer's status was
	// written (a streamed body cut short): its outcome is failed whatever
	// the status said.
	failed bool
}

type auditKey struct{}

// noteAudit adds a detail to the call's audit records (none when the
// route is not audited).
func noteAudit(r *http.Request, key, value string) {
	if e, ok := r.Context().Value(auditKey{}).(*auditEntry); ok && value != "" {
		e.rec.Detail[key] = value
	}
}

// noteFailed records the call as failed although its status said
// otherwise: the answer was under way when it failed.
func noteFailed(r *http.Request) {
	if e, ok := r.Context().Value(auditKey{}).(*auditEntry); ok {
		e.failed = true
	}
}

// noteTarget names what the call changes when the path does not.
func noteTarget(r *http.Request, target string) {
	if e, ok := r.Context().Value(auditKey{}).(*auditEntry); ok {
		e.rec.Target = target
	}
}

// auditTarget is what a path names: its app, function, key or token name,
// dead letter id or module hash, joined by "/".
func auditTarget(r *http.Request) string {
	var parts []string
	for _, k := range []string{"app", "fn", "name", "id", "sha"} {
		if v := r.PathValue(k); v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, "/")
}

// errAuditUnavailable is the answer to a change the audit log could not
// record: it was not made.
const errAuditUnavailable = "audit log unavailable: the change was not made (changes are refused while they cannot be recorded)"

// auditIntent writes the call's intent record before the handler runs
// and returns the request carrying its entry and a writer that remembers
// the status; false when the record could not be written, after
// answering 503: the change must not happen.
func (a *API) auditIntent(w http.ResponseWriter, r *http.Request, reqID, action string) (statusWriter, *http.Request, bool) {
	who := principal(r)
	e := &auditEntry{rec: audit.Record{Kind: audit.KindAdmin, Actor: who.Name, Address: audit.HostOf(r.RemoteAddr),
		Action: action, Target: auditTarget(r), Detail: map[string]string{}, RequestID: reqID}}
	intent := e.rec
	intent.Outcome = audit.OutcomeIntent
	intent.Detail = nil
	if _, err := a.cfg.Audit.Append(r.Context(), intent); err != nil {
		a.log.Error("admin change refused: audit record not written", logkey.Security, true, logkey.RequestID, reqID,
			logkey.Action, action, logkey.TokenName, who.Name, logkey.Error, err)
		httperr.Write(w, http.StatusServiceUnavailable, errAuditUnavailable, reqID)
		return statusWriter{}, r, false
	}
	sw := statusWriter{telemetry.NewStatusWriter(w)}
	return sw, r.WithContext(context.WithValue(r.Context(), auditKey{}, e)), true
}

// auditOutcome writes the call's outcome record after the handler. The
// change is made by then: a failure to write it is logged, loudly.
func (a *API) auditOutcome(r *http.Request, sw statusWriter) {
	e, ok := r.Context().Value(auditKey{}).(*auditEntry)
	if !ok {
		return
	}
	status := sw.code()
	rec := e.rec
	switch {
	case status < 400:
		rec.Outcome = audit.OutcomeOK
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		rec.Outcome = audit.OutcomeDenied
	default:
		rec.Outcome = audit.OutcomeFailed
	}
	if e.failed {
		rec.Outcome = audit.OutcomeFailed
	}
	rec.Detail["status"] = strconv.Itoa(status)
	// The client may be gone; the record is still owed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if _, err := a.cfg.Audit.Append(ctx, rec); err != nil {
		a.log.Error("audit outcome record not written", logkey.Security, true, logkey.RequestID, rec.RequestID,
			logkey.Action, rec.Action, logkey.Error, err)
	}
}

// statusWriter is the writer an audited change answers through: its
// status goes into the outcome record.
type statusWriter struct{ *telemetry.StatusWriter }

func (s statusWriter) code() int {
	if st := s.Status(); st != 0 {
		return st
	}
	return http.StatusOK
}

// auditList answers the newest records (GET /v1/audit?since=1h&limit=100).
func (a *API) auditList(w http.ResponseWriter, r *http.Request, _ string) error {
	if a.cfg.Audit == nil {
		return &userError{http.StatusServiceUnavailable, "the audit log is not enabled on this server"}
	}
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return &userError{http.StatusBadRequest, "since must be a positive duration such as \"1h\""}
		}
		since = time.Now().Add(-d)
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 10000 {
			return &userError{http.StatusBadRequest, "limit must be a number from 1 to 10000"}
		}
		limit = n
	}
	recs, err := a.cfg.Audit.List(r.Context(), since, limit)
	if err != nil {
		return err
	}
	out := make([]adminapi.AuditRecord, 0, len(recs))
	for _, rec := range recs {
		out = append(out, adminapi.AuditRecord{Seq: rec.Seq, Time: rec.Time, Kind: rec.Kind, Actor: rec.Actor, Address: rec.Address,
			Action: rec.Action, Target: rec.Target, Detail: rec.Detail, Outcome: rec.Outcome, RequestID: rec.RequestID,
			PublicKey: rec.PublicKey, Seal: rec.Seal, Prev: rec.Prev, Hash: rec.Hash, Signature: rec.Signature})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// auditVerify walks the whole chain (GET /v1/audit/verify). A chain that
// does not verify is still a 200: the answer is the verification.
func (a *API) auditVerify(w http.ResponseWriter, r *http.Request, _ string) error {
	if a.cfg.Audit == nil {
		return &userError{http.StatusServiceUnavailable, "the audit log is not enabled on this server"}
	}
	rep, err := a.cfg.Audit.Verify(r.Context())
	out := adminapi.AuditVerification{OK: err == nil, PublicKey: audit.EncodePublicKey(a.cfg.Audit.PublicKey()),
		Records: rep.Records, Checkpoints: rep.Checkpoints, LastSeq: rep.LastSeq, LastHash: rep.LastHash, LastCheckpoint: rep.LastCheckpoint}
	var p *audit.Problem
	switch {
	case errors.As(err, &p):
		out.Problem = &adminapi.AuditProblem{Position: p.Position, Seq: p.Seq, What: p.What, Detail: p.Detail}
		a.log.Warn("audit log does not verify", logkey.Security, true, logkey.AuditSeq, p.Seq, logkey.Reason, p.What)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// auditExport streams the whole chain as NDJSON, the public key first
// (GET /v1/audit/export; audit.WriteExport's format).
func (a *API) auditExport(w http.ResponseWriter, r *http.Request, _ string) error {
	if a.cfg.Audit == nil {
		return &userError{http.StatusServiceUnavailable, "the audit log is not enabled on this server"}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	err := audit.WriteExport(w, a.cfg.Audit.PublicKey(), func(yield func(audit.Record) error) error {
		return a.cfg.Audit.Each(r.Context(), 1, yield)
	})
	if err != nil && r.Context().Err() == nil {
		// Headers are sent: the file ends early, and its verification
		// will say where.
		a.log.Warn("audit export ended early", logkey.Error, err)
	}
	return nil
}

// noteDeploy records what a deploy asks for: the manifest's SHA-256 and
// each function's module hash, never the manifest text.
func noteDeploy(r *http.Request, req *adminapi.DeployRequest) {
	sum := sha256.Sum256([]byte(req.Manifest))
	noteAudit(r, "manifest_sha256", hex.EncodeToString(sum[:]))
	fns := make([]string, 0, len(req.Modules))
	for fn := range req.Modules {
		fns = append(fns, fn)
	}
	slices.Sort(fns)
	for _, fn := range fns {
		noteAudit(r, "module."+fn, req.Modules[fn])
	}
}
