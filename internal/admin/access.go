package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// OTPHeader carries the current TOTP code of the enrolled authenticator on
// a call that makes a dangerous change.
const OTPHeader = "Aegis-OTP"

// StepUpHeader marks a 403 that a current authenticator code would turn
// into a success ("required"), so clients need not read the message.
const StepUpHeader = "Aegis-Step-Up"

// access is what a route demands of its caller: a permission, and how the
// token's app set applies (rbac.Scope). Build one with public, onApp,
// listing, anyApp or platform; the zero value is refused by handle, so a
// route cannot be registered without saying who may call it.
type access struct {
	perm   rbac.Permission
	scope  rbac.Scope
	public bool
}

// public: no token at all (the health check only).
func public() access { return access{public: true} }

// onApp: perm on the app the path names ({app}).
func onApp(p rbac.Permission) access { return access{perm: p, scope: rbac.ScopeApp} }

// listing: perm over many apps; the handler shows only the token's apps.
func listing(p rbac.Permission) access { return access{perm: p, scope: rbac.ScopeList} }

// anyApp: perm on nothing app-specific; the app set does not narrow it.
func anyApp(p rbac.Permission) access { return access{perm: p, scope: rbac.ScopeAnyApp} }

// platform: perm on the whole platform; needs a token without an app set.
func platform(p rbac.Permission) access { return access{perm: p, scope: rbac.ScopePlatform} }

type handlerFunc func(w http.ResponseWriter, r *http.Request, reqID string) error

// handle registers h for pattern behind the request id, authentication,
// the authorization acc declares, and error mapping. A route that declares
// no permission, or an app scope without {app} in its pattern, is a
// programming error caught when the API is built.
func (a *API) handle(pattern string, acc access, h handlerFunc) {
	if !acc.public && (acc.perm == "" || acc.scope == 0) {
		panic("admin: route " + pattern + " declares no permission")
	}
	if acc.scope == rbac.ScopeApp && !strings.Contains(pattern, "{app}") {
		panic("admin: route " + pattern + " is scoped to an app but has no {app}")
	}
	action, audited := auditAction(pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		reqID := telemetry.NewRequestID()
		w.Header().Set("X-Request-Id", reqID)
		if !acc.public {
			who, ok := r.Context().Value(servedAsKey{}).(*rbac.Principal)
			if !ok {
				if who, ok = a.authenticate(w, r, reqID); !ok {
					return
				}
			}
			if err := who.Authorize(acc.perm, acc.scope, r.PathValue("app")); err != nil {
				a.refuse(w, r, reqID, who, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, who))
		}
		// A change is recorded before it is made, or not made (audit.go).
		if audited && a.cfg.Audit != nil {
			sw, rr, ok := a.auditIntent(w, r, reqID, action)
			if !ok {
				return
			}
			w, r = sw, rr
			defer a.auditOutcome(r, sw)
		}
		if err := h(w, r, reqID); err != nil {
			var d *rbac.Denied
			if errors.As(err, &d) {
				a.refuse(w, r, reqID, principal(r), d)
				return
			}
			status, msg := a.classify(err)
			if status >= 500 {
				a.log.Error("admin call failed", logkey.RequestID, reqID, logkey.Method, r.Method, logkey.Path, r.URL.Path, logkey.Error, err)
			}
			httperr.Write(w, status, msg, reqID)
		}
	})
}

// authScheme is the scheme OnAuthFailure names: the admin API's bearer
// token (the bootstrap one or a named one).
const authScheme = "admin_token"

// authenticate finds the principal of the call's bearer token: the
// bootstrap token (root) or a named admin token. It answers 401 (or 503
// when the token store cannot be read) and returns false otherwise.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request, reqID string) (*rbac.Principal, bool) {
	token, ok := auth.ParseBearer(r.Header.Get("Authorization"))
	reason := auth.ReasonMalformed
	switch {
	case !ok:
	case auth.AdminTokenMatches(a.cfg.Token, token):
		// Checked first, so a hand-written token file that happens to
		// start like a named token still works.
		return rbac.Root(), true
	case auth.IsAdminToken(token) && a.cfg.AdminTokens != nil:
		who, err := a.cfg.AdminTokens.Verify(r.Context(), token)
		if err == nil {
			return who, true
		}
		if !errors.Is(err, auth.ErrUnauthenticated) {
			a.log.Error("admin token check failed", logkey.RequestID, reqID, logkey.Error, err)
			httperr.Write(w, http.StatusServiceUnavailable, "service unavailable", reqID)
			return nil, false
		}
		reason = auth.Reason(err)
	default:
		reason = auth.ReasonWrongSecret
	}
	a.log.Warn("admin authentication failed", logkey.Security, true, logkey.RequestID, reqID, logkey.Reason, reason,
		logkey.Remote, r.RemoteAddr, logkey.Method, r.Method, logkey.Path, r.URL.Path)
	if a.cfg.OnAuthFailure != nil {
		a.cfg.OnAuthFailure(authScheme, reason)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="aegis-admin"`)
	httperr.Write(w, http.StatusUnauthorized, "unauthorized", reqID)
	return nil, false
}

// refuse answers 403 with the denial's message and writes the security log
// line every refusal gets.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, reqID string, who *rbac.Principal, err error) {
	var d *rbac.Denied
	if !errors.As(err, &d) {
		d = &rbac.Denied{Msg: "forbidden", Reason: "unknown"}
	}
	attrs := []slog.Attr{slog.Bool(logkey.Security, true), slog.String(logkey.RequestID, reqID), slog.String(logkey.Reason, d.Reason),
		slog.String(logkey.Remote, r.RemoteAddr), slog.String(logkey.Method, r.Method), slog.String(logkey.Path, r.URL.Path)}
	if who != nil {
		attrs = append(attrs, slog.String(logkey.TokenName, who.Name), slog.String(logkey.Role, string(who.Role)))
	}
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "admin call denied", attrs...)
	if d.CodeMissing {
		w.Header().Set(StepUpHeader, "required")
	}
	httperr.Write(w, http.StatusForbidden, d.Msg, reqID)
}

type principalKey struct{}

// servedAsKey carries the principal ServeAs was given. Only code in this
// process can put a value under it, so a request from the network can
// never claim one.
type servedAsKey struct{}

// ServeAs serves r as who without looking for a bearer token: for callers
// in this process that authenticated who themselves (the console, whose
// sessions stand for a token). Everything else a call goes through —
// authorization, step-up, audit, error mapping — is the same as for a
// call with who's token.
func (a *API) ServeAs(w http.ResponseWriter, r *http.Request, who *rbac.Principal) {
	if who == nil {
		httperr.Write(w, http.StatusUnauthorized, "unauthorized", telemetry.NewRequestID())
		return
	}
	a.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), servedAsKey{}, who)))
}

// principal is the caller of an authenticated call. A handler only runs
// after authentication, so nil means a public route.
func principal(r *http.Request) *rbac.Principal {
	p, _ := r.Context().Value(principalKey{}).(*rbac.Principal)
	return p
}

// canSee reports whether the caller may see app (listings filter with it).
func canSee(r *http.Request, app string) bool {
	p := principal(r)
	return p != nil && p.CanSee(app)
}

// maxReasons bounds how many reasons a step-up refusal lists; a deploy of
// a large manifest could otherwise make a message of any size.
const maxReasons = 8

// stepUp demands a current TOTP code for a change that reasons say is
// dangerous (none: it is not), according to the server's mode:
//
//   - off: never;
//   - auto: when an authenticator is enrolled;
//   - always: always, and without an authenticator the change is refused
//     until one is enrolled.
//
// The code comes in the Aegis-OTP header and is used up by this check, on
// every node, so a code seen on the wire cannot be replayed. A refusal is
// an *rbac.Denied (403 and a security log line); a store failure an error
// that fails the call closed.
func (a *API) stepUp(r *http.Request, reqID string, reasons []string) error {
	if len(reasons) == 0 || a.cfg.StepUp == rbac.StepUpOff {
		return nil
	}
	what := reasonList(reasons)
	enrolled, err := a.enrolled(r.Context())
	if err != nil {
		return err
	}
	if !enrolled {
		if a.cfg.StepUp != rbac.StepUpAlways {
			return nil
		}
		return &rbac.Denied{Reason: "step-up without authenticator",
			Msg: "forbidden: step-up required (" + what + "), but no authenticator is enrolled: enroll one with `aegis mfa enroll` first"}
	}
	code := r.Header.Get(OTPHeader)
	if code == "" {
		return &rbac.Denied{Reason: "step-up code missing", CodeMissing: true,
			Msg: "forbidden: step-up required (" + what + "): pass a current code of the enrolled authenticator with --otp CODE or AEGIS_OTP (header " + OTPHeader + ")"}
	}
	err = a.cfg.MFA.Verify(r.Context(), code)
	if errors.Is(err, auth.ErrUnauthenticated) {
		return &rbac.Denied{Reason: "step-up " + auth.Reason(err),
			Msg: "forbidden: step-up refused (" + what + "): the authenticator code is wrong, expired or already used; pass a fresh one"}
	}
	if err != nil {
		return fmt.Errorf("step-up: %w", err)
	}
	who := principal(r)
	noteAudit(r, "step_up", "accepted")
	a.log.Info("step-up accepted", logkey.Security, true, logkey.RequestID, reqID, logkey.TokenName, who.Name,
		logkey.Method, r.Method, logkey.Path, r.URL.Path, logkey.Changes, reasons)
	return nil
}

// enrolled reports whether an authenticator is enrolled.
func (a *API) enrolled(ctx context.Context) (bool, error) {
	if a.cfg.MFA == nil {
		return false, nil
	}
	st, err := a.cfg.MFA.Status(ctx)
	if err != nil {
		return false, err
	}
	return st.Enrolled, nil
}

// reasonList joins reasons for a message, at most maxReasons of them.
func reasonList(reasons []string) string {
	if len(reasons) > maxReasons {
		rest := len(reasons) - maxReasons
		reasons = append(reasons[:maxReasons:maxReasons], fmt.Sprintf("%d more change(s)", rest))
	}
	return strings.Join(reasons, "; ")
}
