package capability

import (
	"net"
	"strconv"
	"strings"

	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

// The call graph (callgraph): every host call a grant allows is counted
// on the edge from the calling function to the grant that allowed it
// (the table, object pattern, topic, host pattern or function as the
// manifest writes it), and every refusal (deny) on the edge to what the
// guest asked for. Each costs a map update in memory. Beside it, the name
// the call reached (usedName: the table, object folder, topic or host) is
// counted for least-privilege advice, which narrows a wildcard grant to
// the names used under it; a second map update.

// used counts one allowed call of c on the edge of kind to grant.
func (h *Host) used(c *sandbox.Caller, kind callgraph.Kind, grant string) {
	if h.cfg.Graph == nil || c == nil || grant == "" {
		return
	}
	h.cfg.Graph.Use(c.App, callgraph.Edge{Kind: kind, From: c.Function, To: grant})
}

// usedName counts one allowed call of c reaching name (callgraph.UseName).
func (h *Host) usedName(c *sandbox.Caller, kind callgraph.Kind, name string) {
	if h.cfg.Graph == nil || c == nil || name == "" {
		return
	}
	h.cfg.Graph.UseName(c.App, callgraph.Edge{Kind: kind, From: c.Function, To: name})
}

// objectName is what an object call under grant is recorded as reaching:
// the key's folder ("images/*" for images/a.jpg) when the grant covers
// it, the grant itself otherwise (an exact key, or a pattern narrower
// than the folder), so a name is never a key no grant names.
func objectName(grant, key string) string {
	if grant == "" {
		return ""
	}
	if f := objectFolder(key); manifest.MatchPattern(grant, f) {
		return f
	}
	return grant
}

// grantFor returns the first pattern of the lists that covers name, as
// matchAny decides.
func grantFor(name string, lists ...[]string) string {
	for _, list := range lists {
		for _, p := range list {
			if manifest.MatchPattern(p, name) {
				return p
			}
		}
	}
	return ""
}

// coveringGrant returns the first pattern that covers every name under
// prefix, as coversPrefix decides.
func coveringGrant(prefix string, lists ...[]string) string {
	for _, list := range lists {
		for _, p := range list {
			if pp, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(prefix, pp) {
				return p
			}
		}
	}
	return ""
}

// graphKV counts an allowed kv call on the grant that allowed it.
func (h *Host) graphKV(c *sandbox.Caller, table string, write bool) {
	if h.cfg.Graph == nil || c == nil || c.Grants == nil {
		return
	}
	g := c.Grants
	kind, grant := callgraph.KVRead, grantFor(table, g.KV.Read, g.KV.Write)
	if write {
		kind, grant = callgraph.KVWrite, grantFor(table, g.KV.Write)
	}
	if grant != "" {
		h.used(c, callgraph.KV, grant)
		h.usedName(c, kind, table)
	}
}

// graphObject counts an allowed object call on the grant that allowed it.
func (h *Host) graphObject(c *sandbox.Caller, key string, write bool) {
	if h.cfg.Graph == nil || c == nil || c.Grants == nil {
		return
	}
	g := c.Grants
	if write {
		grant := grantFor(key, g.Objects.Write)
		h.used(c, callgraph.Objects, grant)
		h.usedName(c, callgraph.ObjectsWrite, objectName(grant, key))
	} else {
		grant := grantFor(key, g.Objects.Read, g.Objects.Write)
		h.used(c, callgraph.Objects, grant)
		h.usedName(c, callgraph.ObjectsRead, objectName(grant, key))
	}
}

// graphHost counts an allowed fetch on the egress grant that allowed it.
func (h *Host) graphHost(c *sandbox.Caller, grants []manifest.HostPattern, t target) {
	if h.cfg.Graph == nil {
		return
	}
	for _, p := range grants {
		if p.Match(t.host, t.port) {
			h.used(c, callgraph.Fetch, p.String())
			name := t.host
			if !p.Match(t.host, 0) { // the grant names a port: so does the name
				name = net.JoinHostPort(t.host, strconv.Itoa(int(t.port)))
			}
			h.usedName(c, callgraph.Fetch, name)
			return
		}
	}
}

// graphDenied counts a refused call on the edge it tried: kv calls on the
// table, object calls on the key's folder ("secret/*", the key up to its
// last "/"), publish on the topic, fetch on the host, invoke on the
// function, a secret read on the secret's name (or "METHOD /path" when the caller holds no invoke grant at
// all and the route was never looked up).
func (h *Host) graphDenied(c *sandbox.Caller, d denial) {
	if h.cfg.Graph == nil || c == nil {
		return
	}
	var kind callgraph.Kind
	to := d.resource
	switch {
	case strings.HasPrefix(d.capability, "kv."):
		kind = callgraph.KV
		to, _, _ = strings.Cut(to, "/")
	case strings.HasPrefix(d.capability, "objects."):
		kind = callgraph.Objects
		to = objectFolder(to)
	case d.capability == "events.publish":
		kind = callgraph.Publish
	case d.capability == "fetch":
		kind = callgraph.Fetch
		if host, _, err := net.SplitHostPort(to); err == nil {
			to = host
		}
	case d.capability == "invoke":
		kind = callgraph.Invoke
	case d.capability == "secrets.get":
		kind = callgraph.Secret
	default:
		return
	}
	if to == "" {
		return
	}
	h.cfg.Graph.Refused(c.App, callgraph.Edge{Kind: kind, From: c.Function, To: to})
}

// objectFolder names a refused object key (or list prefix, "p*") by its
// folder: "secret/a.txt" → "secret/*"; a key without "/" stays itself.
func objectFolder(key string) string {
	k := strings.TrimSuffix(key, "*")
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		return k[:i+1] + "*"
	}
	return key
}

// graphList counts an allowed object listing on the grant that covers
// its prefix.
func (h *Host) graphList(c *sandbox.Caller, prefix string) {
	if h.cfg.Graph == nil || c == nil || c.Grants == nil {
		return
	}
	grant := coveringGrant(prefix, c.Grants.Objects.Read, c.Grants.Objects.Write)
	h.used(c, callgraph.Objects, grant)
	h.usedName(c, callgraph.ObjectsRead, objectName(grant, prefix+"*"))
}

// graphPublish counts an allowed publish on the grant that allowed it.
func (h *Host) graphPublish(c *sandbox.Caller, topic string) {
	if h.cfg.Graph == nil || c == nil || c.Grants == nil {
		return
	}
	if grant := grantFor(topic, c.Grants.Events.Publish); grant != "" {
		h.used(c, callgraph.Publish, grant)
		h.usedName(c, callgraph.Publish, topic)
	}
}

// graphInvoke counts an allowed invoke on the function called.
func (h *Host) graphInvoke(c *sandbox.Caller, function string) {
	h.used(c, callgraph.Invoke, function)
}
