package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// deployDangers is what a deploy of text to app would open up compared
// with the app's active version (rbac.DangerousChanges). A manifest that
// does not parse, or names another app, has none: Registry.Deploy refuses
// it with the precise error a moment later.
//
// The active version is read here and again by the deploy, without a lock
// between: a deploy racing this one could change it in the meantime. That
// one passed its own check, so the worst case is comparing against a
// version one step older, never skipping the check.
func (a *API) deployDangers(app, file, text string) []string {
	if file == "" {
		file = "aegis.yaml"
	}
	next, err := manifest.Parse(file, []byte(text))
	if err != nil || next.App != app {
		return nil
	}
	var old *manifest.Manifest
	if cur, ok := a.cfg.Registry.Snapshot().Apps[app]; ok {
		old = cur.Manifest
	}
	return rbac.DangerousChanges(old, next)
}

// ownDeadLetter reports whether dead letter id belongs to one of who's apps.
func (a *API) ownDeadLetter(ctx context.Context, who *rbac.Principal, id uint64) (bool, error) {
	for _, app := range who.Apps {
		dls, err := a.cfg.Bus.DeadLetters(ctx, app)
		if err != nil {
			return false, err
		}
		for _, dl := range dls {
			if dl.ID == id {
				return true, nil
			}
		}
	}
	return false, nil
}

// deleteApp removes an app (Registry.Delete says what goes and what stays).
// Deleting is a dangerous change.
func (a *API) deleteApp(w http.ResponseWriter, r *http.Request, reqID string) error {
	app := r.PathValue("app")
	if manifest.CheckAppName(app) != nil {
		return &userError{http.StatusNotFound, "app not found"}
	}
	if err := a.stepUp(r, reqID, []string{"delete app " + app}); err != nil {
		return err
	}
	if err := a.cfg.Registry.Delete(r.Context(), app); err != nil {
		if errors.Is(err, aegis.ErrNotFound) {
			return &userError{http.StatusNotFound, "app not found"}
		}
		return err
	}
	a.log.Info("app deleted through the admin API", logkey.RequestID, reqID, logkey.App, app, logkey.TokenName, principal(r).Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, reqID string) error {
	var req adminapi.CreateAdminTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	noteTarget(r, req.Name)
	noteAudit(r, "role", req.Role)
	noteAudit(r, "apps", strings.Join(req.Apps, ","))
	role, err := rbac.ParseRole(req.Role)
	if err != nil {
		return &userError{http.StatusBadRequest, "role must be one of viewer, operator, deployer, admin"}
	}
	token, err := a.cfg.AdminTokens.Create(r.Context(), req.Name, role, req.Apps)
	switch {
	case errors.Is(err, aegis.ErrConflict):
		return &userError{http.StatusConflict, "an admin token named " + strconv.Quote(req.Name) + " already exists"}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusBadRequest, "token name must be 1-64 characters of A-Z a-z 0-9 _ . - and not \"root\"; " +
			"apps must be app names, at most " + strconv.Itoa(rbac.MaxApps)}
	case err != nil:
		return err
	}
	a.log.Info("admin token created", logkey.RequestID, reqID, logkey.TokenName, req.Name, logkey.Role, string(role),
		logkey.Apps, req.Apps, logkey.By, principal(r).Name)
	out := adminapi.NewAdminToken{Name: req.Name, Role: string(role), Apps: req.Apps, Token: token}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, _ string) error {
	list, err := a.cfg.AdminTokens.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]adminapi.AdminToken, 0, len(list))
	for _, t := range list {
		out = append(out, adminapi.AdminToken{Name: t.Name, Role: string(t.Role), Apps: t.Apps, CreatedAt: t.CreatedAt,
			Revoked: t.Revoked, RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, reqID string) error {
	name := r.PathValue("name")
	if err := a.cfg.AdminTokens.Revoke(r.Context(), name); err != nil {
		if errors.Is(err, aegis.ErrNotFound) || errors.Is(err, aegis.ErrInvalidArgument) {
			return &userError{http.StatusNotFound, "no admin token named " + strconv.Quote(name)}
		}
		return err
	}
	a.log.Info("admin token revoked", logkey.RequestID, reqID, logkey.TokenName, name, logkey.By, principal(r).Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) mfaStatus(w http.ResponseWriter, r *http.Request, _ string) error {
	out := adminapi.MFAStatus{StepUp: string(a.cfg.StepUp)}
	if a.cfg.MFA != nil {
		st, err := a.cfg.MFA.Status(r.Context())
		if err != nil {
			return err
		}
		out.Enrolled, out.Pending = st.Enrolled, st.Pending
		if st.Enrolled && !st.EnrolledAt.IsZero() {
			at := st.EnrolledAt
			out.EnrolledAt = &at
		}
	}
	out.Required = a.cfg.StepUp == rbac.StepUpAlways || a.cfg.StepUp == rbac.StepUpAuto && out.Enrolled
	writeJSON(w, http.StatusOK, out)
	return nil
}

// mfaEnroll starts enrolling the platform's authenticator and answers the
// otpauth URI, the one time its secret leaves the server. Replacing an
// enrolled authenticator is itself a dangerous change: otherwise whoever
// holds an admin token could swap in their own and step-up would stop
// meaning anything.
func (a *API) mfaEnroll(w http.ResponseWriter, r *http.Request, reqID string) error {
	if a.cfg.MFA == nil {
		return &userError{http.StatusServiceUnavailable, "service unavailable"}
	}
	enrolled, err := a.enrolled(r.Context())
	if err != nil {
		return err
	}
	if enrolled {
		if err := a.stepUp(r, reqID, []string{"replace the enrolled authenticator"}); err != nil {
			return err
		}
	}
	noteAudit(r, "replacing", strconv.FormatBool(enrolled))
	uri, err := a.cfg.MFA.Begin(r.Context(), otpAccount(r.Host))
	if err != nil {
		return err
	}
	a.log.Info("authenticator enrollment started", logkey.RequestID, reqID, logkey.By, principal(r).Name, logkey.Replacing, enrolled)
	writeJSON(w, http.StatusCreated, adminapi.MFAEnrollment{URI: uri})
	return nil
}

func (a *API) mfaConfirm(w http.ResponseWriter, r *http.Request, reqID string) error {
	if a.cfg.MFA == nil {
		return &userError{http.StatusServiceUnavailable, "service unavailable"}
	}
	var req adminapi.MFAConfirmRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	err := a.cfg.MFA.Confirm(r.Context(), req.Code)
	switch {
	case errors.Is(err, aegis.ErrNotFound):
		return &userError{http.StatusNotFound, "no enrollment is pending (they expire after 10 minutes): start one with `aegis mfa enroll`"}
	case errors.Is(err, auth.ErrUnauthenticated):
		return &rbac.Denied{Reason: "enrollment " + auth.Reason(err),
			Msg: "forbidden: the code does not match the new authenticator; check the device's clock and try the current code"}
	case err != nil:
		return err
	}
	a.log.Info("authenticator enrolled", logkey.Security, true, logkey.RequestID, reqID, logkey.By, principal(r).Name)
	return a.mfaStatus(w, r, reqID)
}

// otpAccount names this platform in the authenticator app: the admin
// API's host as the caller reached it, reduced to characters a host can
// have and bounded, since it comes from the request.
func otpAccount(host string) string {
	var b strings.Builder
	for i := 0; i < len(host) && b.Len() < 64; i++ {
		c := host[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-:[]", c) >= 0 {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "admin"
	}
	return "admin@" + b.String()
}
