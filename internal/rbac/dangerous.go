package rbac

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aegis-platform/aegis/manifest"
)

// DangerousChanges compares the manifest of an app's active version (old;
// nil for an app not deployed yet) with the manifest about to replace it
// (next) and says, one human-readable reason each, what the change opens
// up:
//
//   - a route becomes public: an HTTP trigger with public: true whose method
//     and path were not public before (a new public route counts);
//   - a route is exposed: one that was private is now served by the
//     gateway, or one that had an authorization rule has none;
//   - a route's rate limit is dropped or raised (total, per_caller or
//     per_address: unset, or more per second than before);
//   - a function gains a wildcard grant: a kv, objects, events or egress
//     pattern containing "*" that the same function did not hold before
//     (for reads, a write grant of the same pattern counts as held);
//   - a function gains a secret: a name in grants.secrets the same
//     function did not hold before;
//   - a limit is raised: a function's effective timeout, memory,
//     concurrency, max_body or max_response, or an event trigger's
//     max_attempts, above what it was.
//
// A function that did not exist before is compared with the platform's
// defaults rather than with nothing: otherwise renaming a function would
// be a way around the check.
//
// Routes come first, then each function's changes in name order, so
// messages are stable. Nil means nothing dangerous. Neither manifest is
// modified.
func DangerousChanges(old, next *manifest.Manifest) []string {
	if next == nil {
		return nil
	}
	next = next.WithDefaults()
	if old != nil {
		old = old.WithDefaults()
	}
	out := publicRoutes(old, next)
	out = append(out, exposedRoutes(old, next)...)
	out = append(out, loosenedRates(old, next)...)
	defaults := defaultLimits()
	for _, name := range next.FunctionNames() {
		fn := next.Functions[name]
		if fn == nil {
			continue
		}
		var prev *manifest.Function
		if old != nil {
			prev = old.Functions[name]
		}
		out = append(out, wildcardGrants(name, prev, fn)...)
		out = append(out, secretGrants(name, prev, fn)...)
		out = append(out, raisedLimits(name, prev, fn, defaults)...)
		out = append(out, raisedAttempts(name, prev, fn)...)
	}
	return out
}

// publicRoutes reports the public routes of next that old did not serve
// publicly.
func publicRoutes(old, next *manifest.Manifest) []string {
	before := map[string]bool{}
	if old != nil {
		for _, fn := range old.Functions {
			if fn == nil {
				continue
			}
			for _, t := range fn.Triggers {
				if t.HTTP != nil && t.HTTP.Public {
					before[routeKey(t.HTTP)] = true
				}
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, name := range next.FunctionNames() {
		fn := next.Functions[name]
		if fn == nil {
			continue
		}
		for _, t := range fn.Triggers {
			if t.HTTP == nil || !t.HTTP.Public {
				continue
			}
			k := routeKey(t.HTTP)
			if before[k] || seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, fmt.Sprintf("route %s %s becomes public", t.HTTP.Method, t.HTTP.Path))
		}
	}
	return out
}

// exposedRoutes reports routes of old that next serves with less
// protection, short of making them public (publicRoutes reports that): a
// private route now served by the gateway, a rule dropped.
func exposedRoutes(old, next *manifest.Manifest) []string {
	if old == nil {
		return nil
	}
	before := map[string]*manifest.HTTPTrigger{}
	for _, fn := range old.Functions {
		if fn == nil {
			continue
		}
		for _, t := range fn.Triggers {
			if t.HTTP != nil {
				before[routeKey(t.HTTP)] = t.HTTP
			}
		}
	}
	var out []string
	for _, name := range next.FunctionNames() {
		fn := next.Functions[name]
		if fn == nil {
			continue
		}
		for _, t := range fn.Triggers {
			h := t.HTTP
			if h == nil || h.Public {
				continue
			}
			was, ok := before[routeKey(h)]
			switch {
			case !ok:
			case was.Private && !h.Private:
				out = append(out, fmt.Sprintf("route %s %s is no longer private", h.Method, h.Path))
			case was.Rule != "" && h.Rule == "" && !h.Private:
				out = append(out, fmt.Sprintf("route %s %s loses its rule", h.Method, h.Path))
			}
		}
	}
	return out
}

// routeKey identifies a route the way the route table does: the method,
// and the path without a trailing slash and with parameter names dropped
// ("/a/{id}" and "/a/{key}/" are one route).
func routeKey(h *manifest.HTTPTrigger) string {
	segs := strings.Split(strings.Trim(h.Path, "/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.ToUpper(h.Method) + " /" + strings.Join(segs, "/")
}

// wildcardGrants reports the patterns with "*" that fn holds and prev did
// not.
func wildcardGrants(name string, prev, fn *manifest.Function) []string {
	var was manifest.Grants
	if prev != nil {
		was = prev.Grants
	}
	g := fn.Grants
	lists := []struct {
		field      string
		now, known []string
	}{
		{"kv.read", g.KV.Read, concat(was.KV.Read, was.KV.Write)},
		{"kv.write", g.KV.Write, was.KV.Write},
		{"objects.read", g.Objects.Read, concat(was.Objects.Read, was.Objects.Write)},
		{"objects.write", g.Objects.Write, was.Objects.Write},
		{"events.publish", g.Events.Publish, was.Events.Publish},
		{"egress.hosts", g.Egress.Hosts, was.Egress.Hosts},
	}
	var out []string
	for _, l := range lists {
		for _, p := range l.now {
			if strings.Contains(p, "*") && !slices.Contains(l.known, p) {
				out = append(out, fmt.Sprintf("function %s gains wildcard grant %s %q", name, l.field, p))
			}
		}
	}
	return out
}

// secretGrants reports the secrets fn may read that prev could not: each
// one hands the function a credential, so a reviewer with step-up sees it
// named.
func secretGrants(name string, prev, fn *manifest.Function) []string {
	var was []string
	if prev != nil {
		was = prev.Grants.Secrets
	}
	var out []string
	for _, s := range fn.Grants.Secrets {
		if !slices.Contains(was, s) {
			out = append(out, fmt.Sprintf("function %s gains secret %q", name, s))
		}
	}
	return out
}

func concat(a, b []string) []string {
	return append(slices.Clone(a), b...)
}

// defaultLimits are the limits a function gets when its manifest sets
// none, taken from manifest's own defaulting so the two cannot drift.
func defaultLimits() manifest.Limits {
	m := (&manifest.Manifest{Functions: map[string]*manifest.Function{"f": {}}}).WithDefaults()
	return m.Functions["f"].Limits
}

// raisedLimits reports fn's effective limits above prev's (or, for a new
// function, above the defaults).
func raisedLimits(name string, prev, fn *manifest.Function, defaults manifest.Limits) []string {
	was := defaults
	if prev != nil {
		was = prev.Limits
	}
	now := fn.Limits
	var out []string
	raised := func(limit string, from, to fmt.Stringer) {
		out = append(out, fmt.Sprintf("function %s raises limit %s from %s to %s", name, limit, from, to))
	}
	if now.Timeout > was.Timeout {
		raised("timeout", was.Timeout, now.Timeout)
	}
	if now.Memory > was.Memory {
		raised("memory", was.Memory, now.Memory)
	}
	if now.Concurrency > was.Concurrency {
		raised("concurrency", count(was.Concurrency), count(now.Concurrency))
	}
	if now.MaxBody > was.MaxBody {
		raised("max_body", was.MaxBody, now.MaxBody)
	}
	if now.MaxResponse > was.MaxResponse {
		raised("max_response", was.MaxResponse, now.MaxResponse)
	}
	return out
}

type count int

func (c count) String() string { return fmt.Sprint(int(c)) }

// raisedAttempts reports event triggers of fn whose max_attempts is above
// that of prev's trigger on the same topic (or the default for a new one).
func raisedAttempts(name string, prev, fn *manifest.Function) []string {
	was := map[string]int{}
	if prev != nil {
		for _, t := range prev.Triggers {
			if t.Event != nil {
				was[t.Event.Topic] = max(was[t.Event.Topic], t.Event.MaxAttempts)
			}
		}
	}
	var out []string
	for _, t := range fn.Triggers {
		if t.Event == nil {
			continue
		}
		before, ok := was[t.Event.Topic]
		if !ok {
			before = manifest.DefaultMaxAttempts
		}
		if t.Event.MaxAttempts > before {
			out = append(out, fmt.Sprintf("function %s raises max_attempts of event trigger %s from %d to %d",
				name, t.Event.Topic, before, t.Event.MaxAttempts))
		}
	}
	return out
}
