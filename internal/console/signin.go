package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// authScheme names console sign-ins to OnAuthFailure.
const authScheme = "console"

// maxTokenField bounds the token a sign-in form may send: an admin token
// is 80 characters, a hand-written bootstrap token rarely longer.
const maxTokenField = 512

type loginPage struct {
	Next    string
	Message string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, nil, http.StatusOK, "login", "Sign in", "", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a redirect after sign-in on the console: a path of it,
// never another site ("//evil.example" or "/\evil.example" included).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "/console//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/"
	}
	return next
}

// login checks the token of the sign-in form and starts a session. A
// failure is slowed (throttle), counted, logged as a security event and
// told to the guard, whose brute_force rule blocks a guessing address.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	addr := guard.AddressOf(r.RemoteAddr)
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	next := safeNext(r.PostFormValue("next"))
	if !c.sameOrigin(r) {
		c.fail(w, r, nil, http.StatusForbidden, "Sign in from the console's own sign-in page.")
		return
	}
	if c.cfg.Guard != nil && c.cfg.Guard.Blocked(addr) {
		c.log.Warn("console sign-in refused: address blocked by the guard", logkey.Security, true, logkey.Remote, r.RemoteAddr)
		c.render(w, r, nil, http.StatusForbidden, "login", "Sign in", "", loginPage{Next: next,
			Message: "Your address is blocked by the guard after repeated failures. An operator can lift the block."})
		return
	}
	if wait := c.throttle.wait(addr); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		c.render(w, r, nil, http.StatusTooManyRequests, "login", "Sign in", "", loginPage{Next: next,
			Message: "Too many failed sign-ins from your address: wait " + strconv.Itoa(secs) + " s before trying again."})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if len(token) > maxTokenField {
		token = ""
	}
	rec, reason, err := c.verify(r, token)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	if reason != "" {
		c.throttle.fail(addr)
		c.log.Warn("console sign-in failed", logkey.Security, true, logkey.Reason, reason, logkey.Remote, r.RemoteAddr)
		if c.cfg.OnAuthFailure != nil {
			c.cfg.OnAuthFailure(authScheme, reason)
		}
		if c.cfg.Guard != nil {
			c.cfg.Guard.Observe(guard.Event{Signal: guard.AuthFailure, Remote: addr})
		}
		c.render(w, r, nil, http.StatusUnauthorized, "login", "Sign in", "", loginPage{Next: next,
			Message: "That token was not accepted: it is wrong, revoked, or not an admin token."})
		return
	}
	c.throttle.succeed(addr)
	id, _, err := c.sessions.start(r.Context(), rec)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.log.Info("console sign-in", logkey.Security, true, logkey.TokenName, rec.Name, logkey.Remote, r.RemoteAddr)
	c.setCookie(w, id)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// verify checks a presented token as the admin API does: the bootstrap
// token first, then the named tokens. A refusal is a reason ("" when
// accepted); an error means the token store could not be read.
func (c *Console) verify(r *http.Request, token string) (session, string, error) {
	switch {
	case token == "":
		return session{}, auth.ReasonMalformed, nil
	case c.cfg.BootstrapToken != "" && auth.AdminTokenMatches(c.cfg.BootstrapToken, token):
		return session{Name: rbac.RootName, Proof: proofOf(token)}, "", nil
	case auth.IsAdminToken(token) && c.cfg.AdminTokens != nil:
		who, id, err := c.cfg.AdminTokens.VerifyID(r.Context(), token)
		if errors.Is(err, auth.ErrUnauthenticated) {
			return session{}, auth.Reason(err), nil
		}
		if err != nil {
			return session{}, "", err
		}
		return session{Name: who.Name, TokenID: id}, "", nil
	}
	return session{}, auth.ReasonWrongSecret, nil
}

// logout ends the session on every server.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, rq *request) {
	if err := c.sessions.end(r.Context(), rq.id); err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.clearCookie(w)
	c.log.Info("console sign-out", logkey.Security, true, logkey.TokenName, rq.who.Name, logkey.Remote, r.RemoteAddr)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
