// Package console serves the web console (docs/console.md) at /console/ on
// the admin listener: pages rendered on the server from Go templates and
// the admin API's own answers, charts and the call graph drawn as SVG on
// the server (package draw), a little script for what needs it (following
// logs), all embedded in the binary.
//
// The console is a client of the admin API in this process: every page
// and every action is an admin call made as the signed-in principal
// (admin.API.ServeAs), so authorization, step-up, audit and error mapping
// are the API's, unchanged. What the console adds is the browser's side of
// security: server-side sessions kept in JetStream (any server of a
// cluster accepts them), a cookie that scripts cannot read and other sites
// cannot send, a CSRF token on every change, a strict Content-Security-
// Policy, and failed sign-ins slowed and reported to the guard.
package console

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Admin is the admin API as the console calls it.
type Admin interface {
	ServeAs(w http.ResponseWriter, r *http.Request, who *rbac.Principal)
}

// Config wires the console.
type Config struct {
	Admin Admin
	// Sessions is the bucket sessions are kept in; its TTL should be at
	// least Lifetime.
	Sessions Store
	// BootstrapToken is the token in DATA/admin.token (principal root).
	BootstrapToken string
	// AdminTokens verifies the named admin tokens.
	AdminTokens *auth.AdminTokens
	// Guard hears of failed sign-ins and refuses blocked addresses; nil
	// does neither.
	Guard *guard.Guard
	// TLS marks the session cookie Secure (and names it __Host-).
	TLS    bool
	Logger *slog.Logger
	// OnAuthFailure, when set, is told of every failed sign-in (scheme
	// "console"), for the metric.
	OnAuthFailure func(scheme, reason string)
	// Idle and Lifetime end a session after that long without a request,
	// and that long after sign-in whatever happens. Defaults 30 minutes
	// and 12 hours.
	Idle, Lifetime time.Duration
	Now            func() time.Time
}

// Defaults of Config.
const (
	DefaultIdle     = 30 * time.Minute
	DefaultLifetime = 12 * time.Hour
)

// Console is the console's http.Handler.
type Console struct {
	cfg      Config
	mux      *http.ServeMux
	log      *slog.Logger
	sessions sessions
	throttle *throttle
	pages    *pages
}

// New builds the console. It fails only when its embedded templates do
// not parse, which a test catches.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, pages: p,
		sessions: sessions{store: cfg.Sessions, idle: cfg.Idle, lifetime: cfg.Lifetime, now: cfg.Now},
		throttle: newThrottle(cfg.Now)}
	c.routes()
	return c, nil
}

// Headers are the headers every console response carries. The policy
// allows the console's own script, style and images and nothing else: no
// inline script or style, no other origin, no framing.
func Headers(tlsOn bool) http.Header {
	h := http.Header{}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: a browser sends "Origin: null" on a
	// form post under no-referrer, and the console checks the origin.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if tlsOn {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	return h
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/console/static/") {
		w.Header().Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/", http.FileServerFS(staticFS)))
	c.mux.HandleFunc("GET /console/login", c.loginPage)
	c.mux.HandleFunc("POST /console/login", c.login)
	c.mux.HandleFunc("POST /console/logout", c.signedIn(c.logout))
	c.mux.HandleFunc("GET /console/{$}", c.signedIn(c.overview))
	c.mux.HandleFunc("GET /console/apps/{app}", c.signedIn(c.app))
	c.mux.HandleFunc("GET /console/traces", c.signedIn(c.traces))
	c.mux.HandleFunc("GET /console/traces/{id}", c.signedIn(c.trace))
	c.mux.HandleFunc("GET /console/logs", c.signedIn(c.logs))
	c.mux.HandleFunc("GET /console/logs/feed", c.signedIn(c.logFeed))
	c.mux.HandleFunc("GET /console/usage", c.signedIn(c.usage))
	c.mux.HandleFunc("GET /console/guard", c.signedIn(c.guard))
	c.mux.HandleFunc("POST /console/guard/blocks/{id}/lift", c.signedIn(c.liftBlock))
	c.mux.HandleFunc("GET /console/audit", c.signedIn(c.audit))
	c.mux.HandleFunc("GET /console/audit/export", c.signedIn(c.auditExport))
	c.mux.HandleFunc("GET /console/keys", c.signedIn(c.keys))
	c.mux.HandleFunc("POST /console/keys", c.signedIn(c.createKey))
	c.mux.HandleFunc("POST /console/keys/{name}/revoke", c.signedIn(c.revokeKey))
	c.mux.HandleFunc("POST /console/keys/{name}/rotate", c.signedIn(c.rotateKey))
	c.mux.HandleFunc("POST /console/tokens", c.signedIn(c.createToken))
	c.mux.HandleFunc("POST /console/tokens/{name}/revoke", c.signedIn(c.revokeToken))
	c.mux.HandleFunc("GET /console/dlq", c.signedIn(c.deadLetters))
	c.mux.HandleFunc("POST /console/dlq/{id}/replay", c.signedIn(c.replay))
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "There is no such page in the console.")
	})
}

// request is one signed-in request: who, their session, and the CSRF
// token their forms carry.
type request struct {
	who  *rbac.Principal
	sess *session
	id   string // the cookie value: sign-out ends it
}

// maxForm bounds a console form: a few names, a reason, a code.
const maxForm = 64 << 10

type signedInHandler func(w http.ResponseWriter, r *http.Request, rq *request)

// cookieName is the session cookie's name: __Host- under TLS, which a
// browser accepts only Secure, for Path=/ and without Domain, so no other
// host or path can plant or shadow it.
func (c *Console) cookieName() string {
	if c.cfg.TLS {
		return "__Host-aegis_console"
	}
	return "aegis_console"
}

// signedIn runs h for a request with a live session whose token still
// stands; others go to the sign-in page. A change must also come from the
// console's own page with its session's CSRF token.
func (c *Console) signedIn(h signedInHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq, err := c.sessionOf(r)
		if errors.Is(err, errNoSession) {
			// Only a cookie that was sent and is dead is cleared: a
			// request without one (another site's: SameSite keeps the
			// cookie off it) must not sign the browser out.
			if _, sent := r.Cookie(c.cookieName()); sent == nil {
				c.clearCookie(w)
			}
			c.toLogin(w, r)
			return
		}
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if !c.sameOrigin(r) || !sameSecret(r.PostFormValue("csrf"), rq.sess.CSRF) {
				c.log.Warn("console change refused: cross-site or without its CSRF token", logkey.Security, true,
					logkey.Remote, r.RemoteAddr, logkey.Method, r.Method, logkey.Path, r.URL.Path, logkey.TokenName, rq.who.Name)
				c.fail(w, r, rq, http.StatusForbidden, "This change did not come from a console page of this session, so it was not made. Reload the page and try again.")
				return
			}
		}
		h(w, r, rq)
	}
}

// sessionOf is the signed-in request r belongs to: errNoSession when it
// carries no live session, or its token no longer stands (the session is
// then ended); any other error when a store could not be read.
func (c *Console) sessionOf(r *http.Request) (*request, error) {
	ck, err := r.Cookie(c.cookieName())
	if err != nil {
		return nil, errNoSession
	}
	sess, err := c.sessions.get(r.Context(), ck.Value)
	if err != nil {
		return nil, err
	}
	who, err := c.principalOf(r.Context(), sess)
	if errors.Is(err, auth.ErrUnauthenticated) {
		_ = c.sessions.end(r.Context(), ck.Value)
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	return &request{who: who, sess: sess, id: ck.Value}, nil
}

// principalOf is who a session stands for now: a revoked token, or a
// bootstrap token replaced since sign-in, ends it (auth.ErrUnauthenticated).
func (c *Console) principalOf(ctx context.Context, s *session) (*rbac.Principal, error) {
	if s.TokenID == "" {
		if s.Name != rbac.RootName || c.cfg.BootstrapToken == "" || !sameSecret(s.Proof, proofOf(c.cfg.BootstrapToken)) {
			return nil, auth.ErrUnauthenticated
		}
		return rbac.Root(), nil
	}
	if c.cfg.AdminTokens == nil {
		return nil, auth.ErrUnauthenticated
	}
	return c.cfg.AdminTokens.Current(ctx, s.TokenID)
}

// sameOrigin reports whether a change comes from a page of this origin.
// Browsers send Sec-Fetch-Site (and Origin) with every form post; a
// client that sends neither is no browser another site could drive, and
// still needs the session's cookie and CSRF token.
func (c *Console) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path != "/console/logs/feed" {
		http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	c.fail(w, r, nil, http.StatusUnauthorized, "Your session has ended: sign in again.")
}

// setCookie sets the session cookie to value for the session's lifetime.
func (c *Console) setCookie(w http.ResponseWriter, value string) {
	c.writeCookie(w, value, int(c.cfg.Lifetime/time.Second))
}

// clearCookie tells the browser to drop the session cookie.
func (c *Console) clearCookie(w http.ResponseWriter) { c.writeCookie(w, "", -1) }

func (c *Console) writeCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: value, Path: "/", HttpOnly: true, Secure: c.cfg.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

// unavailable answers a store failure: the console fails closed.
func (c *Console) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	reqID := telemetry.NewRequestID()
	c.log.Error("console session check failed", logkey.RequestID, reqID, logkey.Error, err)
	c.fail(w, r, nil, http.StatusServiceUnavailable, "The session store cannot be read right now; try again in a moment (request "+reqID+").")
}

// fail renders the error page with status and msg.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, rq *request, status int, msg string) {
	if r.URL.Path == "/console/logs/feed" {
		httperr.Write(w, status, msg, "")
		return
	}
	c.render(w, r, rq, status, "error", "Error", "", errorPage{Status: status, Message: msg})
}

type errorPage struct {
	Status  int
	Message string
}
