package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/console/draw"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// sectionErr is what a part of a page says when its admin call failed:
// the page still renders, saying what could not be shown and why (a token
// that may not read the audit log still sees the rest).
func sectionErr(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Msg
	}
	if err != nil {
		return "could not be read: " + err.Error()
	}
	return ""
}

// --- overview ---

type overviewPage struct {
	Apps      []adminapi.App
	AppsErr   string
	Activity  template.HTML
	Invoked   int
	Errors    int
	LogsErr   string
	Budgets   []adminapi.BudgetState
	BudgetErr string
	Alerts    []adminapi.GuardAlert
	AlertsErr string
	ShowAlert bool
}

// activityWindow and activityRecords bound the overview's chart: the last
// hour, from at most the newest activityRecords invocation records (a
// busy platform's chart then covers less than the hour, and says so).
const (
	activityWindow  = time.Hour
	activityRecords = 5000
)

func (c *Console) overview(w http.ResponseWriter, r *http.Request, rq *request) {
	var p overviewPage
	ctx := r.Context()
	p.AppsErr = sectionErr(c.call(ctx, r, rq, "GET", "/v1/apps", nil, &p.Apps, ""))
	lines, err := c.readLogs(r, rq, url.Values{"limit": {fmt.Sprint(activityRecords)}, "since": {time.Now().Add(-activityWindow).UTC().Format(time.RFC3339Nano)}})
	p.LogsErr = sectionErr(err)
	p.Activity, p.Invoked, p.Errors = activityChart(lines, time.Now())
	p.BudgetErr = sectionErr(c.call(ctx, r, rq, "GET", "/v1/usage/budgets", nil, &p.Budgets, ""))
	if rq.can("platform") {
		p.ShowAlert = true
		var alerts []adminapi.GuardAlert
		p.AlertsErr = sectionErr(c.call(ctx, r, rq, "GET", "/v1/guard/alerts?limit=100", nil, &alerts, ""))
		// An incident stays open until its Until: the overview shows
		// those; the guard page has them all.
		for _, a := range alerts {
			if a.Until.After(time.Now()) {
				p.Alerts = append(p.Alerts, a)
			}
		}
	}
	c.render(w, r, rq, http.StatusOK, "overview", "Overview", "overview", p)
}

// activityChart draws invocations and errors per minute over the last
// hour from invocation records.
func activityChart(lines []logLine, now time.Time) (template.HTML, int, int) {
	start := now.Truncate(time.Minute).Add(-activityWindow + time.Minute)
	n := int(activityWindow / time.Minute)
	inv := make([]draw.Point, n)
	errs := make([]draw.Point, n)
	for i := range n {
		t := start.Add(time.Duration(i) * time.Minute)
		inv[i].T, errs[i].T = t, t
	}
	total, failed := 0, 0
	for _, l := range lines {
		if !isInvocation(&l) {
			continue
		}
		i := int(l.Time.Sub(start) / time.Minute)
		if i < 0 || i >= n {
			continue
		}
		inv[i].V++
		total++
		if invocationFailed(&l) {
			errs[i].V++
			failed++
		}
	}
	return draw.Lines("Invocations and errors per minute, last hour", []draw.Line{
		{Name: "invocations", Class: "invocations", Points: inv},
		{Name: "errors", Class: "errors", Points: errs},
	}, ""), total, failed
}

// --- app ---

type appPage struct {
	App       adminapi.App
	Versions  []adminapi.Version
	Functions []functionView
	Routes    []adminapi.Route
	Graph     template.HTML
	Edges     []adminapi.GraphEdge
	GraphErr  string
	Err       string
}

// functionView is a function as the app page shows it. Name repeats
// adminapi.Function's field, which the embedded type's own name hides
// from templates.
type functionView struct {
	adminapi.Function
	Name    string
	Schemas []string
}

func (c *Console) app(w http.ResponseWriter, r *http.Request, rq *request) {
	name := r.PathValue("app")
	ctx := r.Context()
	var p appPage
	var apps []adminapi.App
	if err := c.call(ctx, r, rq, "GET", "/v1/apps", nil, &apps, ""); err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	found := false
	for _, a := range apps {
		if a.App == name {
			p.App, found = a, true
		}
	}
	if !found {
		c.fail(w, r, rq, http.StatusNotFound, "No app named "+name+" is deployed, or your token may not see it.")
		return
	}
	q := "?app=" + url.QueryEscape(name)
	var fns []adminapi.Function
	if err := c.call(ctx, r, rq, "GET", "/v1/functions"+q, nil, &fns, ""); err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	for _, f := range fns {
		p.Functions = append(p.Functions, functionView{Function: f, Name: f.Function, Schemas: schemasOf(f.Triggers)})
	}
	p.Err = sectionErr(c.call(ctx, r, rq, "GET", "/v1/routes"+q, nil, &p.Routes, ""))
	_ = c.call(ctx, r, rq, "GET", "/v1/apps/"+url.PathEscape(name)+"/versions", nil, &p.Versions, "")
	var g adminapi.Graph
	if err := c.call(ctx, r, rq, "GET", "/v1/apps/"+url.PathEscape(name)+"/graph", nil, &g, ""); err != nil {
		p.GraphErr = sectionErr(err)
	} else {
		p.Graph = draw.CallGraph(g)
		p.Edges = g.Edges
	}
	c.render(w, r, rq, http.StatusOK, "app", "App "+name, "overview", p)
}

// schemasOf lists the schema files a function's triggers validate with.
func schemasOf(ts []manifest.Trigger) []string {
	var out []string
	for _, t := range ts {
		if t.HTTP != nil && t.HTTP.Schema != nil {
			out = append(out, t.HTTP.Schema.Files()...)
		}
		if t.Event != nil && t.Event.Schema != "" {
			out = append(out, t.Event.Schema)
		}
		if t.Object != nil && t.Object.Schema != "" {
			out = append(out, t.Object.Schema)
		}
	}
	sort.Strings(out)
	return out
}

// --- traces ---

type tracesPage struct {
	Query   string
	Route   string
	Recent  []logLine
	Err     string
	Routes  []adminapi.Route
	Message string
}

func (c *Console) traces(w http.ResponseWriter, r *http.Request, rq *request) {
	q := strings.TrimSpace(r.URL.Query().Get("id"))
	if q != "" {
		if !isTraceID(q) {
			var p tracesPage
			p.Query, p.Message = q, "A trace id is 32 lower-case hexadecimal characters (the traceparent's second field, or a log line's trace_id)."
			c.render(w, r, rq, http.StatusBadRequest, "traces", "Traces", "traces", p)
			return
		}
		http.Redirect(w, r, "/console/traces/"+q, http.StatusSeeOther)
		return
	}
	p := tracesPage{Route: r.URL.Query().Get("route")}
	_ = c.call(r.Context(), r, rq, "GET", "/v1/routes", nil, &p.Routes, "")
	vals := url.Values{"limit": {"500"}}
	if p.Route != "" {
		app, fn, ok := routeFunction(p.Routes, p.Route)
		if !ok {
			p.Message = "No route " + p.Route + " is deployed."
			c.render(w, r, rq, http.StatusNotFound, "traces", "Traces", "traces", p)
			return
		}
		vals.Set("app", app)
		vals.Set("function", fn)
	}
	lines, err := c.readLogs(r, rq, vals)
	p.Err = sectionErr(err)
	for i := len(lines) - 1; i >= 0 && len(p.Recent) < 50; i-- {
		l := lines[i]
		if !isInvocation(&l) || l.TraceID == "" {
			continue
		}
		// The record names its trigger's kind, not the route: a
		// function with two routes lists the requests of both.
		if p.Route != "" && l.Trigger != "http" {
			continue
		}
		p.Recent = append(p.Recent, l)
	}
	c.render(w, r, rq, http.StatusOK, "traces", "Traces", "traces", p)
}

// routeFunction finds the function behind "METHOD /path".
func routeFunction(routes []adminapi.Route, route string) (app, fn string, ok bool) {
	for _, rt := range routes {
		if rt.Method+" "+rt.Path == route {
			return rt.App, rt.Function, true
		}
	}
	return "", "", false
}

func isTraceID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, ch := range s {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return false
		}
	}
	return true
}

type tracePage struct {
	Trace     adminapi.Trace
	Waterfall template.HTML
	Nodes     []traceRow
}

// traceRow is one hop of the tree, flattened in causal order with its
// depth, for the table under the waterfall.
type traceRow struct {
	*adminapi.TraceNode
	Depth  int
	Indent string
}

func (c *Console) trace(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	if !isTraceID(id) {
		c.fail(w, r, rq, http.StatusBadRequest, "A trace id is 32 lower-case hexadecimal characters.")
		return
	}
	var t adminapi.Trace
	if err := c.call(r.Context(), r, rq, "GET", "/v1/traces/"+id, nil, &t, ""); err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	p := tracePage{Trace: t, Waterfall: draw.Waterfall(t)}
	var walk func(ns []*adminapi.TraceNode, depth int)
	walk = func(ns []*adminapi.TraceNode, depth int) {
		for _, n := range ns {
			p.Nodes = append(p.Nodes, traceRow{TraceNode: n, Depth: depth, Indent: strings.Repeat("→ ", depth)})
			walk(n.Children, depth+1)
		}
	}
	walk(t.Children, 0)
	c.render(w, r, rq, http.StatusOK, "trace", "Trace "+id, "traces", p)
}

// --- usage ---

type usagePage struct {
	Since      string
	ByFunction template.HTML
	ByCaller   template.HTML
	GBs        template.HTML
	Rows       []adminapi.UsageRow
	Budgets    []adminapi.BudgetState
	Err        string
	BudgetErr  string
}

var usagePeriods = map[string]bool{"1h": true, "24h": true, "168h": true}

func (c *Console) usage(w http.ResponseWriter, r *http.Request, rq *request) {
	since := r.URL.Query().Get("since")
	if !usagePeriods[since] {
		since = "24h"
	}
	p := usagePage{Since: since}
	ctx := r.Context()
	var byFn, byCaller []adminapi.UsageRow
	p.Err = sectionErr(c.call(ctx, r, rq, "GET", "/v1/usage?by=function&since="+since, nil, &byFn, ""))
	_ = c.call(ctx, r, rq, "GET", "/v1/usage?by=caller&since="+since, nil, &byCaller, "")
	_ = c.call(ctx, r, rq, "GET", "/v1/usage?since="+since, nil, &p.Rows, "")
	p.BudgetErr = sectionErr(c.call(ctx, r, rq, "GET", "/v1/usage/budgets", nil, &p.Budgets, ""))
	var inv, gbs, callers []draw.Bar
	for _, u := range byFn {
		label := u.App + "/" + u.Function
		inv = append(inv, draw.Bar{Label: label, Value: float64(u.Invocations)})
		gbs = append(gbs, draw.Bar{Label: label, Value: u.GBSeconds})
	}
	for _, u := range byCaller {
		callers = append(callers, draw.Bar{Label: u.App + " · " + u.Caller, Value: float64(u.Invocations)})
	}
	p.ByFunction = draw.Bars("Invocations per function", inv, "")
	p.GBs = draw.Bars("GB-seconds per function", gbs, "GB·s")
	p.ByCaller = draw.Bars("Invocations per caller", callers, "")
	c.render(w, r, rq, http.StatusOK, "usage", "Usage and budgets", "usage", p)
}

// --- guard ---

type guardPage struct {
	Blocks    []adminapi.GuardBlock
	Alerts    []adminapi.GuardAlert
	Err       string
	AlertsErr string
	StepUp    bool
}

func (c *Console) guard(w http.ResponseWriter, r *http.Request, rq *request) {
	if !rq.can("platform") {
		c.fail(w, r, rq, http.StatusForbidden, "The guard's blocks and alerts name clients of every app: they need a token without an app set.")
		return
	}
	var p guardPage
	ctx := r.Context()
	p.Err = sectionErr(c.call(ctx, r, rq, "GET", "/v1/guard/blocks", nil, &p.Blocks, ""))
	p.AlertsErr = sectionErr(c.call(ctx, r, rq, "GET", "/v1/guard/alerts?limit=50", nil, &p.Alerts, ""))
	p.StepUp = c.stepUpRequired(r, rq)
	c.render(w, r, rq, http.StatusOK, "guard", "Guard", "guard", p)
}

func (c *Console) liftBlock(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	err := c.call(r.Context(), r, rq, "DELETE", "/v1/guard/blocks/"+url.PathEscape(id), nil, nil, r.PostFormValue("code"))
	if err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	http.Redirect(w, r, "/console/guard?done=lifted", http.StatusSeeOther)
}

// stepUpRequired says whether dangerous changes need an authenticator
// code now, so forms show the field.
func (c *Console) stepUpRequired(r *http.Request, rq *request) bool {
	var st adminapi.MFAStatus
	if err := c.call(r.Context(), r, rq, "GET", "/v1/mfa", nil, &st, ""); err != nil {
		return true // when unsure, ask: a code the server does not need is ignored
	}
	return st.Required
}

// --- audit ---

type auditPage struct {
	Records      []adminapi.AuditRecord
	Verification *adminapi.AuditVerification
	Err          string
	VerifyErr    string
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, rq *request) {
	var p auditPage
	ctx := r.Context()
	if err := c.call(ctx, r, rq, "GET", "/v1/audit?limit=200", nil, &p.Records, ""); err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	var v adminapi.AuditVerification
	if err := c.call(ctx, r, rq, "GET", "/v1/audit/verify", nil, &v, ""); err != nil {
		p.VerifyErr = sectionErr(err)
	} else {
		p.Verification = &v
	}
	c.render(w, r, rq, http.StatusOK, "audit", "Audit log", "audit", p)
}

// auditExport streams the admin API's export to the browser as a file.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, rq *request) {
	if !rq.can("audit") {
		c.fail(w, r, rq, http.StatusForbidden, "Reading the audit log needs the operator role or above, on a token without an app set.")
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), "GET", "/v1/audit/export", http.NoBody)
	if err != nil {
		c.fail(w, r, rq, http.StatusInternalServerError, "internal error")
		return
	}
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	w.Header().Set("Content-Disposition", `attachment; filename="aegis-audit-`+time.Now().UTC().Format("20060102T150405Z")+`.ndjson"`)
	c.cfg.Admin.ServeAs(w, req, rq.who)
}

// --- keys and tokens ---

type keysPage struct {
	Keys     []adminapi.Key
	Tokens   []adminapi.AdminToken
	TokenErr string
	NewKey   *adminapi.NewKey
	NewToken *adminapi.NewAdminToken
	StepUp   bool
	Message  string
}

func (c *Console) keys(w http.ResponseWriter, r *http.Request, rq *request) {
	c.keysPage(w, r, rq, http.StatusOK, keysPage{})
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, rq *request, status int, p keysPage) {
	if !rq.can("platform") {
		c.fail(w, r, rq, http.StatusForbidden, "API keys are the platform's: listing them needs a token without an app set.")
		return
	}
	ctx := r.Context()
	if err := c.call(ctx, r, rq, "GET", "/v1/keys", nil, &p.Keys, ""); err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	if rq.can("tokens") {
		p.TokenErr = sectionErr(c.call(ctx, r, rq, "GET", "/v1/tokens", nil, &p.Tokens, ""))
	}
	p.StepUp = c.stepUpRequired(r, rq)
	c.render(w, r, rq, status, "keys", "Keys and tokens", "keys", p)
}

func (c *Console) createKey(w http.ResponseWriter, r *http.Request, rq *request) {
	req := adminapi.CreateKeyRequest{Name: strings.TrimSpace(r.PostFormValue("name")), ExpiresIn: strings.TrimSpace(r.PostFormValue("expires_in")),
		Rate: strings.TrimSpace(r.PostFormValue("rate")), Budget: strings.TrimSpace(r.PostFormValue("budget"))}
	req.Scopes = strings.FieldsFunc(r.PostFormValue("scopes"), listSeparator)
	var nk adminapi.NewKey
	if err := c.call(r.Context(), r, rq, "POST", "/v1/keys", req, &nk, r.PostFormValue("code")); err != nil {
		c.keysAfterError(w, r, rq, err)
		return
	}
	// Shown on this answer only (no-store): the server keeps its hash.
	c.keysPage(w, r, rq, http.StatusCreated, keysPage{NewKey: &nk})
}

func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, rq *request) {
	if err := c.call(r.Context(), r, rq, "DELETE", "/v1/keys/"+url.PathEscape(r.PathValue("name")), nil, nil, r.PostFormValue("code")); err != nil {
		c.keysAfterError(w, r, rq, err)
		return
	}
	http.Redirect(w, r, "/console/keys?done=revoked", http.StatusSeeOther)
}

func (c *Console) rotateKey(w http.ResponseWriter, r *http.Request, rq *request) {
	overlap := strings.TrimSpace(r.PostFormValue("overlap"))
	if overlap == "" {
		overlap = "24h"
	}
	var nk adminapi.NewKey
	if err := c.call(r.Context(), r, rq, "POST", "/v1/keys/"+url.PathEscape(r.PathValue("name"))+"/rotate",
		adminapi.RotateKeyRequest{Overlap: overlap}, &nk, r.PostFormValue("code")); err != nil {
		c.keysAfterError(w, r, rq, err)
		return
	}
	c.keysPage(w, r, rq, http.StatusOK, keysPage{NewKey: &nk, Message: "The key was rotated: the previous secret keeps working for " + overlap + "."})
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, rq *request) {
	req := adminapi.CreateAdminTokenRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role")}
	req.Apps = strings.FieldsFunc(r.PostFormValue("apps"), listSeparator)
	var nt adminapi.NewAdminToken
	if err := c.call(r.Context(), r, rq, "POST", "/v1/tokens", req, &nt, r.PostFormValue("code")); err != nil {
		c.keysAfterError(w, r, rq, err)
		return
	}
	c.keysPage(w, r, rq, http.StatusCreated, keysPage{NewToken: &nt})
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, rq *request) {
	if err := c.call(r.Context(), r, rq, "DELETE", "/v1/tokens/"+url.PathEscape(r.PathValue("name")), nil, nil, r.PostFormValue("code")); err != nil {
		c.keysAfterError(w, r, rq, err)
		return
	}
	http.Redirect(w, r, "/console/keys?done=token-revoked", http.StatusSeeOther)
}

// listSeparator splits a form's list of names: commas, spaces or both.
func listSeparator(r rune) bool { return r == ',' || r == ' ' }

// keysAfterError shows the keys page again with the API's refusal, so the
// form is at hand to correct it.
func (c *Console) keysAfterError(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || !rq.can("platform") {
		c.failCall(w, r, rq, err)
		return
	}
	c.keysPage(w, r, rq, ae.Status, keysPage{Message: ae.Msg})
}

// --- dead letters ---

type dlqPage struct {
	Letters []adminapi.DeadLetter
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request, rq *request) {
	var p dlqPage
	if err := c.call(r.Context(), r, rq, "GET", "/v1/dlq", nil, &p.Letters, ""); err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	c.render(w, r, rq, http.StatusOK, "dlq", "Dead letters", "dlq", p)
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, rq *request) {
	if err := c.call(r.Context(), r, rq, "POST", "/v1/dlq/"+url.PathEscape(r.PathValue("id"))+"/replay", nil, nil, r.PostFormValue("code")); err != nil {
		c.failCall(w, r, rq, err)
		return
	}
	http.Redirect(w, r, "/console/dlq?done=replayed", http.StatusSeeOther)
}

// failCall answers an admin call's refusal with its status and message.
func (c *Console) failCall(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		msg := ae.Msg
		if ae.StepUp {
			msg += " — enter the current code of the authenticator in the form's step-up field."
		}
		if ae.RequestID != "" {
			msg += " (request " + ae.RequestID + ")"
		}
		c.fail(w, r, rq, ae.Status, msg)
		return
	}
	c.log.Error("console admin call failed", logkey.Error, err)
	c.fail(w, r, rq, http.StatusInternalServerError, "The page could not be built; the server's log says why.")
}

func (rq *request) can(action string) bool {
	v := view{Who: rq.who}
	return v.Can(action)
}
