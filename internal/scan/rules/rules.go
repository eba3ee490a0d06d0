// Package rules holds the deploy gate's manifest risk rules (docs/scan.md):
// settings a manifest may legally hold that invite abuse or Denial of
// Wallet, each with an id, a severity and the fix to write. It reads the
// manifest as written (defaults not applied), so that a limit the author
// chose is told apart from one Aegis filled in. Pure: no I/O.
package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/aegis-platform/aegis/manifest"
)

// The rules' ids.
const (
	PublicNoRate          = "public-route-no-rate"
	PublicNoSchema        = "public-route-no-schema"
	WildcardGrant         = "wildcard-grant"
	WildcardEgress        = "wildcard-egress"
	LongTimeoutConcurrent = "long-timeout-high-concurrency"
	JWTWithoutRule        = "jwt-route-without-rule"
	NoLimits              = "function-without-limits"
	EventNoSchema         = "event-without-schema"
)

// A long timeout with a high concurrency is what a Denial of Wallet
// multiplies: every request an attacker sends may hold an instance for
// the whole timeout, concurrency times over. Past 30 s and 10 at once the
// bill of a flood is 300 instance-seconds a second per server.
const (
	longTimeout     = 30 * time.Second
	highConcurrency = 10
)

var all = []scan.Rule{
	{ID: PublicNoRate, Severity: scan.Medium, Title: "a public route has no rate limit",
		Fix: "rate: { total: 100/s, per_address: 10/s } on the route's http trigger"},
	{ID: PublicNoSchema, Severity: scan.Medium, Title: "a public route taking a body has no schema",
		Fix: "schema: schemas/FILE.json on the route's http trigger, so the gateway refuses a bad body before the function runs"},
	{ID: WildcardGrant, Severity: scan.High, Title: "a grant covers every table, object, topic or function",
		Fix: "name the tables, object prefixes, topics or functions the function uses (aegis advise APP prints them)"},
	{ID: WildcardEgress, Severity: scan.High, Title: "egress to a wildcard host",
		Fix: "name the hosts the function calls: egress: { hosts: [api.example.com] }"},
	{ID: LongTimeoutConcurrent, Severity: scan.Medium, Title: "a long timeout with a high concurrency (Denial of Wallet)",
		Fix: "limits: { timeout: 30s, concurrency: 10 } or lower, and a budget (docs/budgets.md)"},
	{ID: JWTWithoutRule, Severity: scan.Medium, Title: "a route accepting JWTs has no rule",
		Fix: "rule: a CEL expression over the verified identity, such as identity.claims.scope.contains(\"orders:write\")"},
	{ID: NoLimits, Severity: scan.Low, Title: "a function with triggers sets no limits",
		Fix: "limits: { timeout: 5s, memory: 64MiB, concurrency: 10 }, chosen for what the function does"},
	{ID: EventNoSchema, Severity: scan.Medium, Title: "an event trigger has no schema",
		Fix: "schema: schemas/FILE.json on the event trigger, so a malformed or forged event is dead-lettered unread"},
}

// Rules lists the manifest rules.
func Rules() []scan.Rule { return append([]scan.Rule(nil), all...) }

func rule(id string) scan.Rule {
	for _, r := range all {
		if r.ID == id {
			return r
		}
	}
	return scan.Rule{ID: id}
}

// Check runs every rule over the app's manifest.
func Check(app *scan.App) []scan.Finding {
	if app == nil || app.Manifest == nil {
		return nil
	}
	c := &checker{app: app}
	for _, name := range app.Manifest.FunctionNames() {
		c.function(name, app.Manifest.Functions[name])
	}
	return c.found
}

type checker struct {
	app   *scan.App
	found []scan.Finding
}

// add records a finding of rule id about function fn, at the manifest
// field (a Positions path) it concerns; where names the finding's place
// in its id (a trigger's index, a grant).
func (c *checker) add(id, fn, field, where, msg string) {
	r := rule(id)
	c.found = append(c.found, scan.Finding{
		ID: id + ":" + fn + ":" + where, Rule: id, Severity: r.Severity, Function: fn,
		File: c.app.ManifestFile, Line: c.app.Positions.Line(field), Message: msg, Fix: r.Fix,
	})
}

func (c *checker) function(name string, f *manifest.Function) {
	base := "functions." + name
	for i, t := range f.Triggers {
		at := base + ".triggers[" + strconv.Itoa(i) + "]"
		idx := strconv.Itoa(i)
		switch {
		case t.HTTP != nil:
			h := t.HTTP
			route := h.Method + " " + h.Path
			if h.Public && h.Rate == nil {
				c.add(PublicNoRate, name, at+".http", idx, fmt.Sprintf("public route %s has no rate limit: anyone may call it as often as they like", route))
			}
			if h.Public && takesBody(h.Method) && (h.Schema == nil || h.Schema.Body == "") {
				c.add(PublicNoSchema, name, at+".http", idx, fmt.Sprintf("public route %s takes a body no schema checks", route))
			}
			if hasJWT(h.Auth) && strings.TrimSpace(h.Rule) == "" {
				c.add(JWTWithoutRule, name, at+".http", idx, fmt.Sprintf("route %s lets in any token its issuer signs for the audience: no rule narrows who", route))
			}
		case t.Event != nil:
			if t.Event.Schema == "" {
				c.add(EventNoSchema, name, at+".event", idx, fmt.Sprintf("events on %s reach the function unchecked", t.Event.Topic))
			}
		}
	}
	g := f.Grants
	grants := []struct {
		field, what string
		patterns    []string
	}{
		{"grants.kv.read", "kv read", g.KV.Read},
		{"grants.kv.write", "kv write", g.KV.Write},
		{"grants.objects.read", "objects read", g.Objects.Read},
		{"grants.objects.write", "objects write", g.Objects.Write},
		{"grants.events.publish", "events publish", g.Events.Publish},
		{"grants.invoke", "invoke", g.Invoke},
	}
	for _, gr := range grants {
		for _, p := range gr.patterns {
			if p == "*" {
				c.add(WildcardGrant, name, base+"."+gr.field, gr.field, fmt.Sprintf("%s %q covers everything of the app", gr.what, p))
			}
		}
	}
	for _, h := range g.Egress.Hosts {
		if wildcardHost(h) {
			c.add(WildcardEgress, name, base+".grants.egress.hosts", "egress:"+h, fmt.Sprintf("egress to %q reaches every host under it, wherever its DNS points", h))
		}
	}
	if len(f.Triggers) > 0 && f.Limits == (manifest.Limits{}) {
		c.add(NoLimits, name, base, "limits", "the function runs on the default limits only: nothing says what it needs")
	}
	timeout, concurrency := time.Duration(f.Limits.Timeout), f.Limits.Concurrency
	if timeout > longTimeout && concurrency > highConcurrency {
		c.add(LongTimeoutConcurrent, name, base+".limits", "limits", fmt.Sprintf("timeout %v with concurrency %d: a flood may hold %d instances for %v each", timeout, concurrency, concurrency, timeout))
	}
}

func takesBody(method string) bool {
	switch strings.ToUpper(method) {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

func hasJWT(auth []string) bool {
	for _, a := range auth {
		if a == manifest.AuthJWT {
			return true
		}
	}
	return false
}

// wildcardHost reports a host grant that names no one host: a "*."
// pattern (any name under a domain, which the domain's owner or anyone
// controlling its DNS can point anywhere).
func wildcardHost(h string) bool {
	return strings.HasPrefix(strings.TrimSpace(h), "*")
}
