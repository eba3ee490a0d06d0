package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// pages are the parsed templates, one set per page: the layout, the
// pieces several pages share (partials.html) and the page's own
// "content".
type pages struct {
	byName map[string]*template.Template
}

func parsePages() (*pages, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", f)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"tsp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"ms": func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
	"join": func(s []string, sep string) string {
		return strings.Join(s, sep)
	},
	"bytes": humanBytes,
	"gbs":   func(v float64) string { return fmt.Sprintf("%.4f", v) },
	"pct": func(used, limit float64) string {
		if limit <= 0 {
			return "no limit"
		}
		return fmt.Sprintf("%.0f %%", 100*used/limit)
	},
	"f64": func(v int64) float64 { return float64(v) },
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// view is what every page template sees.
type view struct {
	Title string
	Nav   string // the navigation entry to mark current
	Who   *rbac.Principal
	CSRF  string
	Flash string
	Data  any
}

// Can reports whether the signed-in principal may do action, so a page
// shows only what its reader may use (the admin API decides anyway).
func (v *view) Can(action string) bool {
	if v.Who == nil {
		return false
	}
	perm, platform := actionNeeds(action)
	if perm == "" || (platform && v.Who.Restricted()) {
		return false
	}
	return v.Who.Role.Has(perm)
}

// actionNeeds maps the console's actions to the admin API's permissions;
// platform marks those that need a token without an app set.
func actionNeeds(action string) (perm rbac.Permission, platform bool) {
	switch action {
	case "platform":
		return rbac.Read, true
	case "lift":
		return rbac.LiftGuardBlocks, true
	case "keys":
		return rbac.ManageKeys, true
	case "tokens":
		return rbac.ManageTokens, true
	case "audit":
		return rbac.ReadAudit, true
	case "replay":
		return rbac.ReplayDeadLetters, false
	}
	return "", false
}

// render writes page name with data, or a 500 when it cannot be rendered
// (a template bug: logged, never shown).
func (c *Console) render(w http.ResponseWriter, r *http.Request, rq *request, status int, name, title, nav string, data any) {
	t := c.pages.byName[name]
	v := &view{Title: title, Nav: nav, Data: data, Flash: flashText(r.URL.Query().Get("done"))}
	if rq != nil {
		v.Who, v.CSRF = rq.who, rq.sess.CSRF
	}
	var buf bytes.Buffer
	if t == nil {
		c.log.Error("console page missing", logkey.Path, r.URL.Path, logkey.Error, "no template "+name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console page failed", logkey.Path, r.URL.Path, logkey.Error, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// flashText is the message a redirect after a change asks for: from a
// fixed list, so a link cannot put words on a console page.
func flashText(done string) string {
	return map[string]string{
		"lifted":        "The block was lifted on every server.",
		"revoked":       "The key was revoked.",
		"token-revoked": "The admin token was revoked; its sessions have ended.",
		"replayed":      "The dead letter was published again.",
	}[done]
}
